#!/usr/bin/env python3
"""Counts individual TAP results in meson's test logs (one JSON object per
line, one file per configuration) and prints 'N passed, N failed'.  A suite
that crashed or printed no plan counts as a failure; a suite skipped as a
whole counts as neither."""
import json
import os
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    config = os.path.basename(path).removesuffix(".json").removeprefix("cfg-")
    with open(path) as f:
        for line in f:
            t = json.loads(line)
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
