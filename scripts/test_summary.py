#!/usr/bin/env python3
"""Count the tests of each stage of `make test` by component (test file),
from the JUnit reports the stages wrote.

Usage: scripts/test_summary.py LABEL=REPORT.xml ...
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def counts(report: str) -> dict[str, Counter[str]]:
    """file -> Counter of passed / failed / skipped."""
    out: dict[str, Counter[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "?").split(".")
        name = next((x for x in parts if x.startswith("test_")), parts[-1])
        if case.find("skipped") is not None:
            result = "skipped"
        elif case.find("failure") is not None or case.find("error") is not None:
            result = "failed"
        else:
            result = "passed"
        out.setdefault(name, Counter())[result] += 1
    return out


def main(argv: list[str]) -> int:
    for arg in argv:
        label, _, report = arg.partition("=")
        try:
            table = counts(report)
        except (OSError, ET.ParseError) as e:
            print(f"{label}: no report ({e})")
            continue
        total: Counter[str] = sum(table.values(), Counter())
        print(f"{label}: {total['passed']} passed, {total['failed']} failed, "
              f"{total['skipped']} skipped")
        for name in sorted(table):
            c = table[name]
            extra = "".join(f", {c[k]} {k}" for k in ("failed", "skipped") if c[k])
            print(f"  {name:32} {c['passed']:4} passed{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
