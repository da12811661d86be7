"""scripts/junit_merge.py: the VM's parallel and serial parts become one
report that scripts/test_summary.py counts whole."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import junit_merge  # noqa: E402
import test_summary  # noqa: E402

PARALLEL = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="2">
<testcase classname="tests.kernel.test_agent" name="a"/>
<testcase classname="tests.kernel.test_mtu" name="m"><failure message="x"/></testcase>
</testsuite></testsuites>"""
SERIAL = """<?xml version="1.0" encoding="utf-8"?><testsuite name="pytest" tests="1">
<testcase classname="tests.kernel.test_lifecycle" name="l"><skipped/></testcase>
</testsuite>"""


def test_merged_report_counts_every_part(tmp_path: Path) -> None:
    (tmp_path / "p.xml").write_text(PARALLEL)
    (tmp_path / "s.xml").write_text(SERIAL)
    out = tmp_path / "junit.xml"
    assert junit_merge.merge(str(out), [str(tmp_path / "p.xml"), str(tmp_path / "s.xml")]) == 3
    table = test_summary.counts(str(out))
    assert table["test_agent"]["passed"] == 1
    assert table["test_mtu"]["failed"] == 1
    assert table["test_lifecycle"]["skipped"] == 1


def test_unreadable_part_fails_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<testsuites>")
    p = subprocess.run([sys.executable, str(ROOT / "scripts/junit_merge.py"),
                        str(tmp_path / "out.xml"), str(tmp_path / "bad.xml")],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "junit_merge:" in p.stderr
    assert not (tmp_path / "out.xml").exists()
