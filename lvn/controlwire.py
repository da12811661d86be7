"""The control socket's wire format: one request line, one reply line.

    {"method": "status", "args": {}}
    {"status": 0, "data": {...}}          (status: a ubus status code)

A failed call carries a ubus status and ``{"error": "message"}``.  Pure and
MicroPython-friendly: the CPython service (lvn/control.py), the node's
agent and its command (lvn/node.py, lvn/nodecontrol.py) all speak it, and
rpcd's ucode plugin (files/usr/share/rpcd/ucode/lvn.uc) forwards ubus
calls in it.  docs/ubus-api.md describes the methods.
"""

import json

from . import jsonlimit

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Protocol

    class Receiver(Protocol):
        def recv(self, size: int) -> bytes: ...

MAX_REQUEST = 1 << 16

# ubus status codes (libubus ubusmsg.h)
OK = 0
INVALID_ARGUMENT = 2
METHOD_NOT_FOUND = 3
NOT_SUPPORTED = 8
UNKNOWN_ERROR = 9


class CallError(Exception):
    """A call that fails with ubus status ``status``; the reply says why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def reply(status: int, data: "dict[str, object]") -> bytes:
    return json.dumps({"status": status, "data": data}).encode() + b"\n"


def request(method: str, args: "dict[str, object] | None" = None) -> bytes:
    return json.dumps({"method": method, "args": args or {}}).encode() + b"\n"


def parse_request(line: bytes) -> "tuple[str, dict[str, object]]":
    """(method, args) of a request line; CallError(INVALID_ARGUMENT) if malformed.
    rpcd's ``ubus_rpc_session`` argument goes no further than here."""
    try:
        req = jsonlimit.loads(line)
    except ValueError as e:
        raise CallError(INVALID_ARGUMENT, "request is not JSON: " + str(e)) from None
    if not isinstance(req, dict) or not isinstance(req.get("method"), str) \
            or not isinstance(req.get("args", {}), dict):
        raise CallError(INVALID_ARGUMENT, 'request must be {"method": NAME, "args": {...}}')
    args = dict(req.get("args", {}))
    args.pop("ubus_rpc_session", None)
    return req["method"], args


def parse_reply(line: bytes) -> "tuple[int, dict[str, object]]":
    """(status, data) of a reply line; ValueError if it is not one."""
    rep = jsonlimit.loads(line, 64)
    if not isinstance(rep, dict) or not isinstance(rep.get("status"), int) \
            or not isinstance(rep.get("data"), dict):
        raise ValueError("not a reply line: " + repr(line[:80]))
    return rep["status"], rep["data"]


def read_line(conn: "Receiver") -> bytes:
    """One line from a connected socket (anything with recv()); ValueError
    past MAX_REQUEST bytes."""
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise ValueError("request longer than " + str(MAX_REQUEST) + " bytes")
    return buf.split(b"\n", 1)[0]


def answer(call: "Callable[[str, dict[str, object]], dict[str, object]]", line: bytes,
           methods: "tuple[str, ...] | list[str] | Mapping[str, object]") -> bytes:
    """The reply line to one request line: ``call(method, args)``'s data,
    or the status and message of the CallError it raised."""
    try:
        method, args = parse_request(line)
        if method not in methods:
            raise CallError(METHOD_NOT_FOUND, "unknown method " + repr(method))
        return reply(OK, call(method, args))
    except CallError as e:
        return reply(e.status, {"error": e.text})
