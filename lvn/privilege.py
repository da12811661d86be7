"""Drop the service's capabilities (CPython's edge of lvn/capabilities.py)."""

import ctypes
import logging
import os

from . import LvnError, capabilities

log = logging.getLogger("lvn.privilege")


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def current() -> "dict[str, int]":
    with open("/proc/self/status") as f:
        return capabilities.from_status(f.read())


def drop(extra: "tuple[str, ...]" = ()) -> int:
    """Keep only capabilities.NEEDED and ``extra``: in the bounding set first
    (this needs CAP_SETPCAP, which capset then drops), then in the
    effective, permitted and inheritable sets.  Returns the mask kept.
    A process that holds no other capability (not started as root) is left
    as it is."""
    keep = capabilities.keep_mask(extra)
    caps = current()
    if not caps.get("CapPrm", 0) & ~keep:
        return caps.get("CapEff", 0)
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(last_cap() + 1):
        if not keep >> cap & 1 and libc.prctl(capabilities.PR_CAPBSET_DROP, cap, 0, 0, 0):
            err = ctypes.get_errno()
            raise LvnError(f"cannot drop capability {cap} from the bounding set: "
                           f"{os.strerror(err)}")
    kept = keep & caps.get("CapPrm", 0)
    header = ctypes.create_string_buffer(capabilities.capset_header())
    data = ctypes.create_string_buffer(capabilities.capset_data(kept))
    if libc.capset(header, data):
        err = ctypes.get_errno()
        raise LvnError(f"cannot set the capabilities {capabilities.names(kept)}: "
                       f"{os.strerror(err)}")
    log.info("capabilities kept: %s", ", ".join(capabilities.names(kept)) or "none")
    return kept
