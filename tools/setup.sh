#!/usr/bin/env bash
# Installs what layca needs on Debian (idempotent) and builds it into build/.
# Used by tools/demo.sh, tools/test.sh and .ci/run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# mesa-opencl-icd: rusticl on llvmpipe (RUSTICL_ENABLE=llvmpipe), a second OpenCL implementation for tests;
# clblast-utils: CLBlast's tuners (layca tune);
# libprotobuf-c-dev, protobuf-c-compiler: ONNX import/export (optional at build time); python3-onnx: its
# onnx.proto, the ONNX node test cases and onnx.checker for tests/test_onnx.c (python3-numpy: the generator)
pkgs=(build-essential pkg-config meson ninja-build ocl-icd-opencl-dev opencl-headers pocl-opencl-icd mesa-opencl-icd clinfo
      libclblast-dev clblast-utils libcjson-dev check zlib1g-dev libopenblas-dev libopenblas0-pthread libjpeg-dev libpng-dev libplplot-dev plplot-driver-cairo
      dataset-fashion-mnist python3 libprotobuf-c-dev protobuf-c-compiler python3-onnx python3-numpy
      libopenmpi-dev openmpi-bin)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "layca setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
cd "$root"
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >&2
fi
ninja -C build >&2
