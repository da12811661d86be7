"""Drop the node agent's capabilities: MicroPython's edge of
lvn/capabilities.py, through its ``ffi`` module (OpenWrt's micropython
package is built with libffi)."""

from . import capabilities

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from typing import Any

# musl (OpenWrt), then glibc
LIBC_NAMES = ("libc.so", "libc.so.6")


def _libc() -> "Any":
    try:
        import ffi
    except ImportError:
        raise OSError("this MicroPython has no ffi module") from None

    for name in LIBC_NAMES:
        try:
            return ffi.open(name)
        except OSError:
            pass
    raise OSError("no C library among " + ", ".join(LIBC_NAMES))


def _status() -> "dict[str, int]":
    with open("/proc/self/status") as f:
        return capabilities.from_status(f.read())


def drop(extra: "tuple[str, ...] | list[str]" = ()) -> int:
    """As lvn.privilege.drop: the bounding set first, then capset; the
    mask kept.  A process without other capabilities is left as it is."""
    keep = capabilities.keep_mask(extra)
    caps = _status()
    if not caps.get("CapPrm", 0) & ~keep:
        return caps.get("CapEff", 0)
    libc = _libc()
    prctl = libc.func("i", "prctl", "iiiii")
    capset = libc.func("i", "capset", "pp")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        if not keep >> cap & 1 and prctl(capabilities.PR_CAPBSET_DROP, cap, 0, 0, 0):
            raise OSError("cannot drop capability " + str(cap) + " from the bounding set")
    kept = keep & caps.get("CapPrm", 0)
    if capset(bytearray(capabilities.capset_header()), bytearray(capabilities.capset_data(kept))):
        raise OSError("cannot set the capabilities " + ", ".join(capabilities.names(kept)))
    return kept
