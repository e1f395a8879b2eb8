#!/usr/bin/env bash
# tools/fuzz.sh TARGET SECONDS [LIBFUZZER FLAG ...]
# Builds one libFuzzer target of tests/fuzz (model, safetensors, metrics, idx,
# cifar, image) in build-fuzz/ (clang, ASan + UBSan, every UBSan report
# fatal) and runs it for SECONDS seconds on one core.  New inputs go to
# build-fuzz/fuzz-corpus/TARGET (kept between runs; the committed seeds in
# tests/fuzz/corpus/TARGET are read, never written); a crash, sanitizer
# report or timeout is saved in build-fuzz/fuzz-artifacts/TARGET/.  Fix it,
# then copy the file into tests/fuzz/regress/TARGET/ so that the normal
# suites replay it (test_fuzz_replay).  tools/fuzz.sh list prints the targets.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
targets=$(sed -n "s/^  '\([a-z0-9_]*\)': \[.*/\1/p" "$root/tests/fuzz/meson.build")
if [ "${1:-}" = list ]; then echo "$targets"; exit 0; fi
if [ $# -lt 2 ]; then
  echo "usage: tools/fuzz.sh TARGET SECONDS [libFuzzer flags]   (targets: $(echo $targets))" >&2
  exit 2
fi
target=$1 seconds=$2
shift 2
echo "$targets" | grep -qx "$target" || { echo "fuzz.sh: unknown target '$target' (targets: $(echo $targets))" >&2; exit 2; }
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
command -v clang >/dev/null || { echo "fuzz.sh: needs clang with libFuzzer (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }

bdir="$root/build-fuzz"
if [ ! -f "$bdir/build.ninja" ]; then
  CC=clang meson setup "$bdir" "$root" --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dc_args=-fno-sanitize-recover=undefined >&2
fi
ninja -C "$bdir" "tests/fuzz/fuzz_$target" >&2

corpus="$bdir/fuzz-corpus/$target" artifacts="$bdir/fuzz-artifacts/$target"
mkdir -p "$corpus" "$artifacts"
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
dict="$root/tests/fuzz/dict/$target.dict"
[ -f "$dict" ] && flags+=(-dict="$dict")
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
echo "fuzz.sh: $target for ${seconds}s; corpus $corpus; findings in $artifacts" >&2
exec "$bdir/tests/fuzz/fuzz_$target" "${flags[@]}" "$@" "$corpus" "$root/tests/fuzz/corpus/$target"
