"""The service's control socket: the methods of the ``lvn`` ubus object.

rpcd's ucode plugin (files/usr/share/rpcd/ucode/lvn.uc) owns the ubus
object, so rpcd checks the ACL and arguments, callers from uhttpd may add
``ubus_rpc_session``, and arguments may be optional.  It forwards each call
here over a Unix socket: one connection, one request line, one reply line,

    {"method": "status", "args": {}}
    {"status": 0, "data": {...}}          (status: a ubus status code)

A failed call carries a ubus status and ``{"error": "message"}``.  The
protocol needs nothing but a Unix socket and JSON, so any agent can serve
it.  :func:`answer` is pure; :class:`ControlServer` does the I/O.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from . import ubus_api
from .errors import LvnError

log = logging.getLogger("lvn")

DEFAULT_PATH = "/var/run/lvn/control.sock"
MAX_REQUEST = 1 << 16
REQUEST_TIMEOUT = 2.0  # s a caller has to send its request line

# ubus status codes (libubus ubusmsg.h)
OK = 0
INVALID_ARGUMENT = 2
METHOD_NOT_FOUND = 3
UNKNOWN_ERROR = 9

Call = Callable[[str, dict[str, Any]], dict[str, Any]]


def _reply(status: int, data: dict[str, Any]) -> bytes:
    return json.dumps({"status": status, "data": data}).encode() + b"\n"


def answer(call: Call, request: bytes) -> bytes:
    """The reply line to one request line."""
    try:
        req = json.loads(request)
    except ValueError as e:
        return _reply(INVALID_ARGUMENT, {"error": f"request is not JSON: {e}"})
    if not isinstance(req, dict) or not isinstance(req.get("method"), str) \
            or not isinstance(req.get("args", {}), dict):
        return _reply(INVALID_ARGUMENT,
                      {"error": "request must be {\"method\": NAME, \"args\": {...}}"})
    method, args = req["method"], dict(req.get("args", {}))
    args.pop("ubus_rpc_session", None)
    if method not in ubus_api.SIGNATURES:
        return _reply(METHOD_NOT_FOUND, {"error": f"unknown method {method!r}"})
    try:
        return _reply(OK, call(method, args))
    except ubus_api.CallError as e:
        return _reply(INVALID_ARGUMENT, {"error": str(e)})
    except LvnError as e:
        return _reply(UNKNOWN_ERROR, {"error": str(e)})
    except Exception as e:  # a bug must not kill the service
        log.exception("control call %s failed", method)
        return _reply(UNKNOWN_ERROR, {"error": f"internal error: {e}"})


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

    def fileno(self) -> int:
        return self.listener.fileno()

    def serve_one(self, call: Call) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            conn.settimeout(REQUEST_TIMEOUT)
            try:
                request = self._read_line(conn)
                conn.sendall(answer(call, request))
            except (OSError, ValueError) as e:
                log.warning("control socket: %s", e)

    @staticmethod
    def _read_line(conn: socket.socket) -> bytes:
        buf = b""
        while b"\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_REQUEST:
                raise ValueError(f"request longer than {MAX_REQUEST} bytes")
        return buf.split(b"\n", 1)[0]

    def close(self) -> None:
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
