#!/usr/bin/env python3
"""Merge JUnit reports into one: the test suites of each, side by side
(the VM's parallel and serial parts of one kernel's tests).

Usage: scripts/junit_merge.py OUT.xml IN.xml...
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def suites(report: str) -> list[ET.Element]:
    root = ET.parse(report).getroot()
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def merge(out: str, reports: list[str]) -> int:
    """Write OUT; the number of test cases in it."""
    merged = ET.Element("testsuites")
    for report in reports:
        merged.extend(suites(report))
    ET.ElementTree(merged).write(out, encoding="utf-8", xml_declaration=True)
    return sum(1 for _ in merged.iter("testcase"))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        merge(argv[0], argv[1:])
    except (OSError, ET.ParseError) as e:
        print(f"junit_merge: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
