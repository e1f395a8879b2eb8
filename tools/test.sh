#!/usr/bin/env bash
# The whole test suite: set up, build, run every Check suite through meson,
# and print 'N passed, N failed' counted over the individual tests.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh" || { echo "0 passed, 1 failed"; exit 1; }
cd "$root"
meson test -C build --print-errorlogs "$@"
rc=$?
python3 "$root/tools/count_tests.py" build/meson-logs/testlog.json || rc=1
exit $rc
