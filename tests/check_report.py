"""Check a `noc report --json` against the independent reference, from the simulator's record.

    noc simulate --record events.jsonl &  noc ingest --db noc.db ...  (then stop both)
    noc report --db noc.db --json > report.json
    python -m tests.check_report events.jsonl report.json

Prints every figure that differs and exits 1 if any does; the reference sees the recorded
events up to the report's last_seq, over the report's range.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.reference import reference_report


def differences(report: dict, events: list[dict]) -> list[str]:
    seen = [event for event in events if event["seq"] <= report["last_seq"]]
    time_from = report["from"] or None
    expected = reference_report(seen, time_from=time_from, time_to=report["to"])
    found = []
    for side in ("customers", "carriers"):
        for account in sorted(set(expected[side]) | set(report[side])):
            got, want = report[side].get(account), expected[side].get(account)
            if got != want:
                for field in sorted(set(got or {}) | set(want or {})):
                    a, b = (got or {}).get(field), (want or {}).get(field)
                    if a != b:
                        found.append(f"{side} {account} {field}: report {a!r}, reference {b!r}")
    return found


def main(record: str, report_path: str) -> int:
    events = [json.loads(line) for line in Path(record).read_text().splitlines() if line]
    report = json.loads(Path(report_path).read_text())
    found = differences(report, events)
    for line in found:
        print(line)
    figures = sum(len(v) for side in ("customers", "carriers") for v in report[side].values())
    print(f"{len(found)} differences in {figures} figures "
          f"({len(report['customers'])} customers, {len(report['carriers'])} carriers, "
          f"{report['last_seq']:,} events)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
