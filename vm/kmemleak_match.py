"""Print the kmemleak reports whose backtrace runs through given modules.

Usage: python3 kmemleak_match.py KMEMLEAK_FILE NAME:BASE:SIZE...
A module unloaded before the scan leaves raw addresses in the backtraces,
so frames are matched by the module's former address range (from
/proc/modules) as well as by a "[name]" symbol suffix. Exit 1 if any match.
"""

from __future__ import annotations

import re
import sys


def main(argv: list[str]) -> int:
    text = open(argv[1]).read()
    modules = []
    for spec in argv[2:]:
        name, base, size = spec.split(":")
        modules.append((name, int(base, 16), int(size)))
    bad = []
    for report in re.split(r"(?=^unreferenced object )", text, flags=re.M):
        if not report.startswith("unreferenced object"):
            continue
        for name, base, size in modules:
            hit = f"[{name}]" in report or any(
                base <= int(a, 16) < base + size
                for a in re.findall(r"\b0x([0-9a-f]{16})\b", report))
            if hit:
                bad.append(f"--- leak attributed to {name}\n{report.rstrip()}")
                break
    print("\n".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
