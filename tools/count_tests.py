#!/usr/bin/env python3
"""Counts individual TAP results in meson's test logs (one JSON object per
line, one file per configuration) and prints 'N passed, N failed'.  A suite
that crashed or printed no plan counts as a failure; a suite skipped as a
whole counts as neither."""
import json
import os
import re
import sys

LSAN_CRASH = "LeakSanitizer has encountered a fatal error"


def tool_crashes(path):
    """Suites of one log whose checks all passed but whose process failed
    because LeakSanitizer itself crashed at exit (its tracer thread, while
    the OpenCL runtime's threads end): not a finding about the code."""
    names = []
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            out = t.get("stdout", "") or ""
            if (t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL") and re.search(r"^ok \d+", out, re.M)
                    and not re.search(r"^not ok \d+", out, re.M) and LSAN_CRASH in (t.get("stderr", "") or "")):
                names.append(t["name"])
    return names


if len(sys.argv) == 3 and sys.argv[1] == "--lsan-crashes":
    print(" ".join(tool_crashes(sys.argv[2])))
    sys.exit(0)

# A configuration "NAME-rerun" holds suites of NAME run again after a
# LeakSanitizer crash (tools/test.sh, once): its result replaces the first.
results = {}
for path in sys.argv[1:]:
    config = os.path.basename(path).removesuffix(".json").removeprefix("cfg-")
    rerun = config.endswith("-rerun")
    config = config.removesuffix("-rerun")
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            if rerun:
                t["name"] += " (run again after a LeakSanitizer crash)"
                results.pop((config, t["name"].split(" ")[0]), None)
            results[(config, t["name"].split(" ")[0])] = (config, t)

passed = failed = skipped = 0
for config, t in results.values():
    out = t.get("stdout", "") or ""
    oks = len(re.findall(r"^ok \d+", out, re.M))
    bad = len(re.findall(r"^not ok \d+", out, re.M))
    passed += oks
    failed += bad
    if t.get("result") == "SKIP":
        skipped += 1
    elif t.get("result") not in ("OK", "EXPECTEDFAIL") and bad == 0:
        failed += 1  # crashed, timed out or errored without a TAP failure line
    print(f"  {config}/{t['name']}: {t.get('result')} ({oks} passed, {bad} failed)", file=sys.stderr)
    # the failing checks themselves, next to the totals (the full
    # output is in meson's log, far above in a long run)
    for m in re.findall(r"^not ok \d+.*$", out, re.M)[:10]:
        print(f"    {m[:400]}", file=sys.stderr)
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
