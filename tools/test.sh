#!/usr/bin/env bash
# The whole test suite: set up, build, run the Check suites through meson in
# every configuration below, and print 'N passed, N failed' counted over the
# individual tests of all of them.  Arguments are handed to 'meson test' for
# the default configuration only (e.g. tools/test.sh test_exec).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
cd "$root"
logs=build/meson-logs
rm -f "$logs"/cfg-*.json
rc=0

# run_config NAME [VAR=VALUE ...] -- [TEST ...]: one configuration, its log
# in build/meson-logs/cfg-NAME.json.
run_config() {
  local name=$1 envs=()
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  echo "== configuration $name${envs[*]:+ (${envs[*]})}" >&2
  env "${envs[@]}" meson test -C build --print-errorlogs --logbase "cfg-$name" "$@" || rc=1
}

if [ $# -gt 0 ]; then
  run_config default -- "$@"
else
  run_config default --
  # What a GPU runs, on the CPU: device-only mode (no host BLAS, host
  # convolutions, maps or CPU optimizer layout) on PoCL limited to 32
  # work-items per group (the tests read LAYCA_TEST_*, tests/lc_test_rt.h).
  run_config pocl-device-only-wg32 LAYCA_TEST_DEVICE_ONLY=1 POCL_MAX_WORK_GROUP_SIZE=32 -- \
    test_rt test_exec test_optim test_train
  # Mesa rusticl on llvmpipe (OpenCL C 1.2, no fp64), device-only.
  run_config rusticl-device-only RUSTICL_ENABLE=llvmpipe LAYCA_TEST_DEVICE=llvmpipe LAYCA_TEST_DEVICE_ONLY=1 -- \
    test_exec test_optim test_train
fi
python3 "$root/tools/count_tests.py" "$logs"/cfg-*.json || rc=1
exit $rc
