"""The node's TLS client (MicroPython's ssl, as lvn/node.py sets it up)
against the agent's server context on loopback: real handshakes with each
MicroPython the host tests run, OpenWrt's own builds included."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest
import upy
from OpenSSL import SSL

from lvn.agent import tls_context

ROOT = Path(__file__).resolve().parents[2]

# as Node.connect: a non-blocking connect and handshake, driven by poll;
# the bytes go once the handshake is done
CLIENT = """
import select, socket, sys
from lvn import node
ca, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
info = socket.getaddrinfo("127.0.0.1", port)[0]
raw, tls = node.open_tls(info[0], info[-1], node.pem_der(ca),
                         (node.pem_der(cert), node.pem_der(key), cert, key), "gw")
p = select.poll()
p.register(raw, select.POLLIN | select.POLLOUT)
out, got, wakes = b"hi", None, 0
while got is None and wakes < 200:
    p.poll(5000)
    wakes += 1
    if out and tls.write(out):
        out = b""
    got = tls.read(2)
    p.modify(raw, select.POLLIN)  # the connect is done: the server's answers drive it
print("read", got, "after", wakes, "wake-ups")
"""


@pytest.fixture
def certs(tls_certs: dict[str, Path]) -> dict[str, Path]:
    return tls_certs


# PyPI's build, OpenWrt 24.10's, and main's 1.28.0 without its
# MBEDTLS_CONFIG_FILE define: main's own build (the micropython fixture's
# 1.28.0) dies at the first handshake (docs/openwrt.md)
TLS_BUILDS = {"pypi": ("pypi", "mbedtls"), "1.23.0": ("1.23.0", "mbedtls"),
              "1.28.0-nocfgdefine": ("1.28.0", "mbedtls-nocfgdefine")}
# the TLS version each negotiates with the agent's server
VERSIONS = {"pypi": "TLSv1.2", "1.23.0": "TLSv1.3", "1.28.0-nocfgdefine": "TLSv1.3"}


@pytest.mark.parametrize("build", sorted(TLS_BUILDS))
def test_node_handshake_with_the_agent(build: str, certs: dict[str, Path]) -> None:
    release, variant = TLS_BUILDS[build]
    found = upy.pypi() if release == "pypi" else upy.openwrt(release, variant)
    if found is None or not found.exists():
        pytest.fail(f"MicroPython {build} is not built (scripts/setup-deps.sh)")
    micropython = str(found)
    ctx = tls_context(str(certs["ca"]), str(certs["server"]), str(certs["server_key"]),
                      None, server=True)
    listener = socket.create_server(("127.0.0.1", 0))
    seen: dict[str, str] = {}

    def serve() -> None:
        listener.settimeout(60)
        try:
            conn, _ = listener.accept()
        except OSError as e:
            seen["error"] = str(e)
            return
        tls = SSL.Connection(ctx, conn)
        tls.set_accept_state()
        try:
            tls.do_handshake()
            seen["version"] = tls.get_protocol_version_name()
            cert = tls.get_peer_certificate()
            seen["peer"] = str(cert.get_subject().CN) if cert else ""
            seen["got"] = tls.recv(2).decode()
            tls.sendall(b"ok")
        except SSL.Error as e:
            seen["error"] = str(e)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    res = subprocess.run([micropython, "-X", "heapsize=1M", "-c", CLIENT, str(certs["ca"]),
                          str(certs["client"]), str(certs["client_key"]),
                          str(listener.getsockname()[1])],
                         capture_output=True, text=True, timeout=120,
                         env={"MICROPYPATH": f".frozen:{ROOT}"})
    t.join(timeout=120)
    listener.close()
    assert res.returncode == 0 and "read b'ok'" in res.stdout, (res.stdout, res.stderr, seen)
    # woken by the server's answers only, not by a writable socket all along
    assert int(res.stdout.split()[-2]) <= 20, res.stdout
    assert seen.get("peer") == "node-1" and seen["got"] == "hi", seen
    # OpenWrt's libmbedtls has TLS 1.3 on; PyPI's build offers 1.2 only
    assert seen["version"] == VERSIONS[build], seen
