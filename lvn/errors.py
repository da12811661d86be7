"""Exceptions of the lvn library; each carries a message fit for users.
(Imported on MicroPython too, by lvn.static: no annotations evaluated.)"""

import errno as _errno
import os


class LvnError(Exception):
    """An error with a message that can be shown to a user as is."""


class KernelError(LvnError):
    """The kernel refused a request; ``errno`` says why."""

    def __init__(self, what: str, code: int, detail: "str | None" = None) -> None:
        self.what = what
        self.errno = code
        self.detail = detail
        super().__init__(f"{what}: {explain(code, detail)}")


class ModuleNotLoaded(LvnError):
    """The ipudp kernel module is not loaded."""


_HINTS = {
    _errno.EPERM: "operation not permitted (needs root / CAP_NET_ADMIN)",
    _errno.EACCES: "permission denied (needs root / CAP_NET_ADMIN)",
    _errno.ENODEV: "no such device",
    _errno.EEXIST: "already exists",
    _errno.EOPNOTSUPP: "not supported",
}


def explain(code: int, detail: "str | None" = None) -> str:
    """Human text for a kernel errno, preferring the kernel's own message."""
    base = _HINTS.get(code) or os.strerror(code)
    if detail and detail.lower() not in base.lower():
        return f"{detail} ({base})"
    return base
