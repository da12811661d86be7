"""The node's control socket, for MicroPython: the ``lvn`` ubus object on a
node without the lvn-server package.

rpcd's ucode plugin (files/usr/share/rpcd/ucode/lvn.uc) forwards ubus calls
to /var/run/lvn/control.sock in the line format of lvn/controlwire.py,
whichever agent serves it; on a node the MicroPython agent (lvn/node.py)
listens there, and ``lvn-node status|reload`` are its callers.  The
methods that edit static tunnels need the CPython service and answer
UBUS_STATUS_NOT_SUPPORTED here, naming the package that has them.
"""

import os
import socket
import struct
import sys

from . import controlwire

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

DEFAULT_PATH = "/var/run/lvn/control.sock"
TIMEOUT = 5.0
# the methods of the lvn object (lvn/ubus_api.py SIGNATURES); a node serves
# the first five
METHODS = ("status", "tunnels", "peers", "reload", "validate", "tunnel_add", "tunnel_del")
SERVER_ONLY = ("tunnel_add", "tunnel_del")


def not_on_node(method: str) -> controlwire.CallError:
    return controlwire.CallError(controlwire.NOT_SUPPORTED, method + ": editing static "
                                 "tunnels needs the lvn-server package (this node runs the "
                                 "MicroPython client agent)")


def _sockaddr(path: str) -> "Any":
    """A Unix socket address: MicroPython takes the packed struct sockaddr_un."""
    if sys.implementation.name == "micropython":
        return struct.pack("H", socket.AF_UNIX) + path.encode() + b"\0"
    return path


def listen(path: str) -> socket.socket:
    """The listening socket at ``path`` (the init script made its directory
    0700: root's rpcd only); a stale socket of a killed run is replaced."""
    try:
        os.unlink(path)
    except OSError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(_sockaddr(path))
        s.listen(4)
    except OSError:
        s.close()
        raise
    return s


def send_all(sock: socket.socket, data: bytes) -> None:
    """``sock.sendall``, which no MicroPython release up to 1.28 has."""
    while data:
        n = sock.send(data)
        if not n:
            raise OSError(32, "connection closed while sending")  # EPIPE
        data = data[n:]


def serve_one(listener: socket.socket,
              call: "Callable[[str, dict[str, Any]], dict[str, Any]]") -> None:
    """Answer the caller waiting on ``listener`` (one line each way)."""
    conn, _ = listener.accept()
    try:
        conn.settimeout(TIMEOUT)
        send_all(conn, controlwire.answer(call, controlwire.read_line(conn), METHODS))
    except (OSError, ValueError) as e:
        sys.stderr.write("lvn-node warning: control socket: " + str(e) + "\n")
    finally:
        conn.close()


def call(path: str, method: str,
         args: "dict[str, Any] | None" = None) -> "tuple[int, dict[str, Any]]":
    """(ubus status, data) of one call to the agent at ``path``; OSError when
    no agent listens there."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(TIMEOUT)
        s.connect(_sockaddr(path))
        send_all(s, controlwire.request(method, args))
        return controlwire.parse_reply(controlwire.read_line(s))
    finally:
        s.close()
