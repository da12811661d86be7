"""vm/guest-pytest.sh, the VM's test runner: the parallel part, then the
serial one, one report, and pytest's exit codes kept (5 only when neither
part found a test)."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLAIN = """
def test_a():
    pass

def test_b():
    pass
"""
SERIAL = """
import pytest
pytestmark = pytest.mark.serial

def test_alone():
    assert {ok}
"""


def run(tmp: Path, files: dict[str, str], workers: str = "1") -> tuple[int, list[str]]:
    d = tmp / "t"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    junit = tmp / "junit.xml"
    env = dict(os.environ, LVN_TESTS=str(d), LVN_VM_WORKERS=workers)
    p = subprocess.run([str(ROOT / "vm" / "guest-pytest.sh"), str(junit), "not long"],
                       capture_output=True, text=True, env=env, cwd=tmp, timeout=300)
    names = ([c.get("name", "") for c in ET.parse(junit).getroot().iter("testcase")]
             if junit.exists() else [])
    return p.returncode, sorted(names)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_both_parts_in_one_report(tmp_path: Path, workers: str) -> None:
    rc, names = run(tmp_path, {"test_plain.py": PLAIN,
                               "test_serial.py": SERIAL.format(ok=True)}, workers)
    assert (rc, names) == (0, ["test_a", "test_alone", "test_b"])


def test_a_failing_serial_test_fails_the_run(tmp_path: Path) -> None:
    rc, names = run(tmp_path, {"test_plain.py": PLAIN, "test_serial.py": SERIAL.format(ok=False)})
    assert rc == 1 and "test_alone" in names


def test_one_part_empty_is_fine(tmp_path: Path) -> None:
    assert run(tmp_path, {"test_plain.py": PLAIN}) == (0, ["test_a", "test_b"])


def test_no_test_at_all_is_pytests_exit_5(tmp_path: Path) -> None:
    rc, _ = run(tmp_path, {"test_none.py": "x = 1\n"})
    assert rc == 5
