"""The service's control socket: the methods of the ``lvn`` ubus object.

rpcd's ucode plugin (files/usr/share/rpcd/ucode/lvn.uc) owns the ubus
object, so rpcd checks the ACL and arguments, callers from uhttpd may add
``ubus_rpc_session``, and arguments may be optional.  It forwards each call
here over a Unix socket, one connection per call, in the line format of
lvn/controlwire.py.  :func:`answer` is pure; :class:`ControlServer` does
the I/O.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from . import LvnError, controlwire, ubus_api
from .controlwire import INVALID_ARGUMENT, METHOD_NOT_FOUND, OK, UNKNOWN_ERROR

__all__ = ["INVALID_ARGUMENT", "METHOD_NOT_FOUND", "OK", "UNKNOWN_ERROR", "ControlServer",
           "answer"]

log = logging.getLogger("lvn")

DEFAULT_PATH = "/var/run/lvn/control.sock"
REQUEST_TIMEOUT = 2.0  # s a caller has to send its request line

Call = Callable[[str, dict[str, Any]], dict[str, Any]]


def answer(call: Call, request: bytes) -> bytes:
    """The reply line to one request line."""
    def checked(method: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return call(method, args)
        except ubus_api.CallError as e:
            raise controlwire.CallError(INVALID_ARGUMENT, str(e)) from None
        except LvnError as e:
            raise controlwire.CallError(UNKNOWN_ERROR, str(e)) from None
        except Exception as e:  # a bug must not kill the service
            log.exception("control call %s failed", method)
            raise controlwire.CallError(UNKNOWN_ERROR, f"internal error: {e}") from None

    return controlwire.answer(checked, request, ubus_api.SIGNATURES)


class ControlServer:
    """The listening socket; :meth:`serve_one` answers one waiting caller."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # left by a killed run (procd respawn)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)  # root's rpcd only
        try:
            self.listener.bind(path)
        finally:
            os.umask(old)
        self.listener.listen(8)
        self.listener.setblocking(False)
        # a descriptor kept in reserve: a service out of them (a flood of
        # connections) still answers rpcd, closing this one to accept
        self.spare: int | None = os.open(os.devnull, os.O_RDONLY)

    def fileno(self) -> int:
        return self.listener.fileno()

    def serve_one(self, call: Call) -> None:
        conn = self._accept()
        if conn is None:
            return
        with conn:
            conn.settimeout(REQUEST_TIMEOUT)
            try:
                request = controlwire.read_line(conn)
                conn.sendall(answer(call, request))
            except (OSError, ValueError) as e:
                log.warning("control socket: %s", e)
        if self.spare is None:
            try:
                self.spare = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                pass  # still none free: the next caller waits for one

    def _accept(self) -> socket.socket | None:
        """The next caller, or None; out of descriptors, the reserve is used."""
        for _ in range(2):
            try:
                return self.listener.accept()[0]
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as e:
                if e.errno not in (errno.EMFILE, errno.ENFILE) or self.spare is None:
                    log.warning("control socket: accepting a caller: %s", e.strerror)
                    return None
                os.close(self.spare)
                self.spare = None
        return None

    def close(self) -> None:
        self.listener.close()
        if self.spare is not None:
            os.close(self.spare)
            self.spare = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
