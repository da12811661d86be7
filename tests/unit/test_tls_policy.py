"""The control channel's TLS policy (docs/protocol.md): 1.3, or 1.2 with
ECDHE and an AEAD suite, mutual certificates.  A real handshake on
loopback: the agent's pyOpenSSL server context against Python's ssl client."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from OpenSSL import SSL

from lvn.agent import tls_context


@pytest.fixture
def certs(tls_certs: dict[str, Path]) -> dict[str, Path]:
    return tls_certs


def handshake(certs: dict[str, Path], version: ssl.TLSVersion, ciphers: str | None) -> str:
    """The client's view: the negotiated "version cipher", or the error."""
    ctx = tls_context(str(certs["ca"]), str(certs["server"]), str(certs["server_key"]),
                      None, server=True)
    listener = socket.create_server(("127.0.0.1", 0))
    result: dict[str, str] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        tls = SSL.Connection(ctx, conn)
        tls.set_accept_state()
        try:
            tls.do_handshake()
        except SSL.Error as e:
            result["server"] = str(e)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(certs["ca"])
    client.load_cert_chain(certs["client"], certs["client_key"])
    client.minimum_version = client.maximum_version = version
    if ciphers:
        client.set_ciphers(ciphers)
    try:
        with socket.create_connection(listener.getsockname(), timeout=30) as raw, \
                client.wrap_socket(raw, server_hostname="gw") as tls:
            out = f"{tls.version()} {tls.cipher()[0]}"  # type: ignore[index]
            tls.recv(1)  # until the server has finished (1.3: client cert checked after)
    except (ssl.SSLError, OSError) as e:
        out = f"refused: {e}"
    t.join(30)
    listener.close()
    return f"refused by the server: {result['server']}" if "server" in result else out


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES256-GCM-SHA384",
                                    "ECDHE-ECDSA-AES128-GCM-SHA256",
                                    "ECDHE-ECDSA-CHACHA20-POLY1305"])
def test_tls12_with_ecdhe_and_aead_is_accepted(certs: dict[str, Path], cipher: str) -> None:
    assert handshake(certs, ssl.TLSVersion.TLSv1_2, cipher) == f"TLSv1.2 {cipher}"


@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                    "AES128-GCM-SHA256"])
def test_tls12_without_aead_or_forward_secrecy_is_refused(certs: dict[str, Path],
                                                          cipher: str) -> None:
    assert handshake(certs, ssl.TLSVersion.TLSv1_2, f"{cipher}:@SECLEVEL=0").startswith(
        "refused")


def test_tls13_is_accepted(certs: dict[str, Path]) -> None:
    assert handshake(certs, ssl.TLSVersion.TLSv1_3, None).startswith("TLSv1.3 ")


def test_renegotiation_is_off(certs: dict[str, Path]) -> None:
    for server in (True, False):
        ctx = tls_context(str(certs["ca"]), str(certs["server"]), str(certs["server_key"]),
                          None, server=server)
        assert ctx.set_options(0) & SSL.OP_NO_RENEGOTIATION
