"""Shared pytest set-up: the ``kmod`` marker and OpenWrt's userland.

Tests marked ``kmod`` need the ipudp module, which this host kernel cannot
load: outside the VM stage they error out with a pointer to it, never skip.
The ``owrt`` fixture is OpenWrt's own userland (uci, ubusd, procd, rpcd,
opkg) built by scripts/owrt-userland.sh into build/owrt; where its sources
are absent, the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# tests/upy.py (the MicroPython interpreters) for every test directory
sys.path.insert(0, str(ROOT / "tests"))

KMOD_HINT = (
    "this test needs the ipudp kernel module, which only the VM stage loads: "
    "run `make test` (or `scripts/test-vm.sh`), not plain pytest on the host"
)


def module_available() -> bool:
    return os.path.isdir("/sys/module/ipudp") or bool(os.environ.get("LVN_KMOD"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.kmod)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("kmod") and not module_available():
        pytest.fail(KMOD_HINT, pytrace=False)


@pytest.fixture(scope="session")
def owrt() -> Path:
    """The prefix of OpenWrt's userland (bin/uci, bin/owrt-sandbox, root/...),
    built once; skipped (with the reason) only where its sources are absent."""
    prefix = ROOT / "build" / "owrt"
    res = subprocess.run([str(ROOT / "scripts" / "owrt-userland.sh")],
                         capture_output=True, text=True)
    if res.returncode == 3:
        pytest.skip(res.stderr.strip())
    if res.returncode != 0:
        pytest.fail("building OpenWrt's userland failed:\n" + res.stderr, pytrace=False)
    return prefix
