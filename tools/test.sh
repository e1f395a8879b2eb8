#!/usr/bin/env bash
# The whole test suite: set up, build, run the Check suites through meson in
# every configuration below, and print 'N passed, N failed' counted over the
# individual tests of all of them.  Arguments are handed to 'meson test' for
# the default configuration only (e.g. tools/test.sh test_exec).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
cd "$root"
rm -f build*/meson-logs/cfg-*.json
logs=()

# run_config NAME [--build DIR] [VAR=VALUE ...] -- [TEST ...]: one
# configuration, run from build folder DIR (default build), its log in
# DIR/meson-logs/cfg-NAME.json.
run_config() {
  local name=$1 dir=build envs=()
  shift
  if [ "${1:-}" = --build ]; then dir=$2; shift 2; fi
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  echo "== configuration $name${envs[*]:+ (${envs[*]})}${dir:+ in $dir}" >&2
  local t0=$SECONDS
  env "${envs[@]}" meson test -C "$dir" --print-errorlogs --logbase "cfg-$name" "$@" || true
  echo "== configuration $name: $((SECONDS - t0)) s" >&2
  logs+=("$dir/meson-logs/cfg-$name.json")
}

# ASan + UBSan build (every UBSan report fatal) in build-asan.
setup_asan() {
  if [ ! -f build-asan/build.ninja ]; then
    meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
      -Dc_args=-fno-sanitize-recover=undefined >&2 || return 1
  fi
  ninja -C build-asan >&2
}

# test_onnx exists where the build has ONNX support (protobuf-c)
onnx_tests=""
[ -x build/tests/test_onnx ] && onnx_tests=test_onnx

if [ $# -gt 0 ]; then
  run_config default -- "$@"
else
  run_config default --
  # What a GPU runs, on the CPU: device-only mode (no host BLAS, host
  # convolutions, maps or CPU optimizer layout) on PoCL limited to 32
  # work-items per group (the tests read LAYCA_TEST_*, tests/lc_test_rt.h).
  run_config pocl-device-only-wg32 LAYCA_TEST_DEVICE_ONLY=1 POCL_MAX_WORK_GROUP_SIZE=32 -- \
    test_rt test_exec test_ops test_optim test_train
  # Mesa rusticl on llvmpipe (OpenCL C 1.2, no fp64), device-only.
  run_config rusticl-device-only RUSTICL_ENABLE=llvmpipe LAYCA_TEST_DEVICE=llvmpipe LAYCA_TEST_DEVICE_ONLY=1 -- \
    test_exec test_ops test_optim test_train $onnx_tests
  # rusticl's default path (host shortcuts, CPU-style executor kernels, the
  # optimizer's wide geometry): what a user of rusticl gets without flags.
  run_config rusticl-default RUSTICL_ENABLE=llvmpipe LAYCA_TEST_DEVICE=llvmpipe -- \
    test_exec test_ops test_optim
  # The unit suites under ASan + UBSan.  LeakSanitizer suppressions cover
  # third-party libraries only (tests/lsan.supp).  test_resume (it kills
  # and restarts whole training processes) runs in the default
  # configuration only.
  if setup_asan; then
    run_config asan --build build-asan \
      ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
      LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 -- \
      test_core test_ref test_model test_data test_fuzz_replay test_rt test_optim test_exec test_ops test_train test_cli test_study \
      $onnx_tests
    # LeakSanitizer's own tracer can crash at a process's exit while the
    # OpenCL runtime's threads end ("LeakSanitizer has encountered a fatal
    # error", every check passed): such a suite runs once more, and that
    # second result counts (tools/count_tests.py).
    crashed=$(python3 "$root/tools/count_tests.py" --lsan-crashes build-asan/meson-logs/cfg-asan.json)
    if [ -n "$crashed" ]; then
      run_config asan-rerun --build build-asan \
        ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
        LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 -- $crashed
    fi
  else
    echo "== configuration asan: the build failed" >&2
    echo '{"name": "asan-build", "result": "FAIL", "stdout": ""}' > build/meson-logs/cfg-asan-build.json
    logs+=(build/meson-logs/cfg-asan-build.json)
  fi
fi
# the counts decide (a suite run again after a LeakSanitizer crash replaces
# its first result; anything that crashed or did not run counts as failed)
python3 "$root/tools/count_tests.py" "${logs[@]}"
