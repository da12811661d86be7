"""A peer that resets its control connection ends that connection only:
TlsConn never raises out of a send or flush (issue 27: a timer's ERROR
reply to a client that gave up killed the whole server).  Real TLS on
loopback: the agent's TlsConn against Python's ssl client."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lvn import protocol
from lvn.agent import TlsConn, tls_context


@pytest.fixture
def certs(tls_certs: dict[str, Path]) -> dict[str, Path]:
    return tls_certs


def pump_until(conn: TlsConn, done: Callable[[], bool], ceiling: float = 30.0) -> None:
    deadline = time.monotonic() + ceiling
    while not done() and time.monotonic() < deadline:
        conn.pump()
        time.sleep(0.01)


def test_send_to_a_reset_peer_marks_the_connection_closed(certs: dict[str, Path]) -> None:
    ctx = tls_context(str(certs["ca"]), str(certs["server"]), str(certs["server_key"]),
                      None, server=True)
    a, b = socket.socketpair()
    a.setblocking(False)
    server = TlsConn(a, ctx, server=True)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(certs["ca"])
    client_ctx.load_cert_chain(certs["client"], certs["client_key"])
    b.setblocking(False)
    tls = client_ctx.wrap_socket(b, server_hostname="gw", do_handshake_on_connect=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            tls.do_handshake()
            break
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            server.pump()
            time.sleep(0.01)
    pump_until(server, lambda: server.ready)
    assert server.ready
    tls.close()  # the client gave up
    error = protocol.encode(protocol.ERROR, {"code": "timeout", "text": "too slow"})
    for _ in range(3):  # a timer's replies to the peer that is gone
        server.send(error * 200)
        server.flush()
    assert server.closed
    server.close()  # and closing it again raises nothing either
