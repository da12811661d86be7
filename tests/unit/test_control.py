"""The control socket's protocol (lvn/control.py) and its server, on the host."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from lvn import LvnError, control, controlwire, nodecontrol, ubus_api

ROOT = Path(__file__).resolve().parents[2]


def call(method: str, args: dict[str, Any]) -> dict[str, Any]:
    if method == "tunnel_del":
        raise ubus_api.CallError("no tunnel section named 'x'")
    if method == "reload":
        raise LvnError("the kernel said no")
    if method == "peers":
        raise RuntimeError("a bug")
    return {"method": method, "args": args}


def reply(request: bytes) -> dict[str, Any]:
    out = control.answer(call, request)
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    decoded: dict[str, Any] = json.loads(out)
    return decoded


def test_call_and_session_argument_dropped() -> None:
    assert reply(b'{"method": "tunnels", "args": {"ifname": "lvn0", "ubus_rpc_session": "s"}}') \
        == {"status": 0, "data": {"method": "tunnels", "args": {"ifname": "lvn0"}}}
    assert reply(b'{"method": "status"}')["data"]["args"] == {}


@pytest.mark.parametrize("request_, status, message", [
    (b"{", control.INVALID_ARGUMENT, "request is not JSON"),
    (b"[]", control.INVALID_ARGUMENT, "request must be"),
    (b'{"method": 1}', control.INVALID_ARGUMENT, "request must be"),
    (b'{"method": "status", "args": []}', control.INVALID_ARGUMENT, "request must be"),
    (b'{"method": "zap"}', control.METHOD_NOT_FOUND, "unknown method 'zap'"),
    (b'{"method": "tunnel_del"}', control.INVALID_ARGUMENT, "no tunnel section"),
    (b'{"method": "reload"}', control.UNKNOWN_ERROR, "the kernel said no"),
    (b'{"method": "peers"}', control.UNKNOWN_ERROR, "internal error: a bug"),
])
def test_errors_carry_status_and_message(request_: bytes, status: int, message: str) -> None:
    out = reply(request_)
    assert out["status"] == status and message in out["data"]["error"]


def test_server_answers_one_caller(tmp_path: Path) -> None:
    path = str(tmp_path / "run" / "control.sock")
    server = control.ControlServer(path)
    try:
        assert Path(path).stat().st_mode & 0o077 == 0  # root (rpcd) only
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(path)
            c.sendall(b'{"method": "status", "args": {}}\n')
            t = threading.Thread(target=server.serve_one, args=(call,))
            t.start()
            t.join(30)
            assert json.loads(c.makefile("rb").readline()) == {
                "status": 0, "data": {"method": "status", "args": {}}}
        # a caller that sends nothing is given up after REQUEST_TIMEOUT
        # and the server goes on
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.connect(path)
            server.serve_one(call)
        server.serve_one(call)  # nobody waiting: returns at once
    finally:
        server.close()
    assert not Path(path).exists()


OUT_OF_FDS = """
import os, resource, select, sys
from lvn import control
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
server = control.ControlServer(sys.argv[1])
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass  # EMFILE: every descriptor is taken
print("full", flush=True)
select.select([server.fileno()], [], [], 30)  # as the service does: a caller waits
server.serve_one(lambda method, args: {"method": method, "fds": len(held)})
print("answered", flush=True)
"""


def test_server_answers_when_out_of_descriptors(tmp_path: Path) -> None:
    """A service out of file descriptors (a flood) still answers rpcd: the
    control server keeps one in reserve for that (issue 27)."""
    path = str(tmp_path / "control.sock")
    child = subprocess.Popen([sys.executable, "-c", OUT_OF_FDS, path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "full\n", child.stderr.read() if child.stderr else ""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(30)
            c.connect(path)
            c.sendall(b'{"method": "status", "args": {}}\n')
            answer = json.loads(c.makefile("rb").readline())
        assert answer["status"] == 0 and answer["data"]["method"] == "status", answer
        assert child.stdout.readline() == "answered\n"
    finally:
        child.kill()
        child.wait()


NODE_SERVER = """
import sys
from lvn import controlwire, nodecontrol
listener = nodecontrol.listen(sys.argv[1])
print("listening")
def call(method, args):
    if method in nodecontrol.SERVER_ONLY:
        raise nodecontrol.not_on_node(method)
    return {"method": method, "args": args}
for _ in range(3):
    nodecontrol.serve_one(listener, call)
"""


def test_node_control_socket_under_micropython(micropython: str, tmp_path: Path) -> None:
    """The node's listening side (MicroPython's packed Unix address) answers
    the CPython caller the ucode plugin stands for, in the same line format."""
    root = Path(__file__).resolve().parents[2]
    path = str(tmp_path / "control.sock")
    proc = subprocess.Popen([micropython, "-c", NODE_SERVER, path], stdout=subprocess.PIPE,
                            text=True, env={"MICROPYPATH": f".frozen:{root}"})
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "listening\n"
        assert nodecontrol.call(path, "status", {"ubus_rpc_session": "s"}) == (
            controlwire.OK, {"method": "status", "args": {}})
        status, data = nodecontrol.call(path, "tunnel_add", {"name": "x"})
        assert status == controlwire.NOT_SUPPORTED and "needs the lvn-server package" in data[
            "error"]
        assert nodecontrol.call(path, "zap") == (controlwire.METHOD_NOT_FOUND,
                                                  {"error": "unknown method 'zap'"})
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
