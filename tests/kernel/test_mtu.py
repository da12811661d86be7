"""MTU, PMTU discovery and GSO: no black holes, no needless segmentation."""

from __future__ import annotations

import socket
import threading

import pytest

from .conftest import Pair, Side, build_pair
from .netns import Netns, scaled

OVERHEAD = {"ipv4": 28, "ipv6": 48}


def mtu_of(side: Side, dev: str = "lvn0") -> int:
    with side.lvn() as k:
        return k.link(dev)[0]


def test_default_mtu_follows_underlay_unless_set(netns: type[Netns]) -> None:
    pair = build_pair(netns, "ipv6")
    assert mtu_of(pair.a) == 1500 - 48
    ns = pair.a.ns
    ns.ip("link", "set", "ul0", "mtu", "1400")
    with pair.a.lvn() as k:
        k.set_tunnel("lvn0", "fd99::2", replace=True)
    assert mtu_of(pair.a) == 1400 - 48
    # given at creation, or set by hand: kept
    ns.ip("link", "add", "lvx", "mtu", "1300", "type", "ipudp")
    ns.ip("link", "set", "lvn0", "mtu", "1350")
    with pair.a.lvn() as k:
        k.set_device("lvx", port=50011)
        k.set_tunnel("lvx", "fd99::2")
        k.set_tunnel("lvn0", "10.99.0.2", replace=True)
    assert mtu_of(pair.a, "lvx") == 1300 and mtu_of(pair.a) == 1350


def test_gso_reaches_the_tunnel_and_tcp_works(pair: Pair) -> None:
    """TSO super-packets are encapsulated whole (one tunnel packet > MTU)."""
    features = pair.a.ns.run("ethtool", "-k", "lvn0")
    assert "tcp-segmentation-offload: on" in features
    assert "generic-segmentation-offload: on" in features
    with pair.a.lvn() as k:
        before = k.device("lvn0").tunnels[0].stats
    moved = tcp_transfer(pair.a, pair.b, 4 << 20)
    assert moved == 4 << 20
    with pair.a.lvn() as k:
        st = k.device("lvn0").tunnels[0].stats
    packets = st.tx_packets - before.tx_packets
    assert (st.tx_bytes - before.tx_bytes) / packets > mtu_of(pair.a)


def tcp_transfer(src: Side, dst: Side, nbytes: int, timeout: float = 60) -> int:
    """Send ``nbytes`` over TCP from src to dst's overlay address; bytes received."""
    with dst.ns.entered():
        srv = socket.create_server((dst.overlay4, 5201))
    got = 0

    def receive() -> None:
        nonlocal got
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(1 << 16):
                got += len(chunk)

    th = threading.Thread(target=receive)
    th.start()
    try:
        with src.ns.entered():
            cli = socket.create_connection((dst.overlay4, 5201), timeout=scaled(timeout))
        with cli:
            cli.sendall(b"\0" * nbytes)
    finally:
        th.join(scaled(timeout))
        srv.close()
    return got


def lower_underlay(pair: Pair, mtu: int) -> None:
    for side in (pair.a, pair.b):
        side.ns.ip("link", "set", "ul0", "mtu", str(mtu))


@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
def test_too_big_df_packet_gets_icmp(pair: Pair, inner: str) -> None:
    # (a path below 1280 would make IPv6 inner packets fragment outside instead)
    lower_underlay(pair, 1400)
    path = 1400 - OVERHEAD[pair.outer]
    dst = pair.b.overlay4 if inner == "ipv4" else pair.b.overlay6
    size = 1450 - (28 if inner == "ipv4" else 48)
    out = pair.a.ns.run("ping", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", str(size),
                        dst, check=False)
    assert f"mtu={path}" in out.replace(" ", "").replace(":", "="), out
    with pair.a.lvn() as k:
        assert k.device("lvn0").drops.tx_too_big >= 1
    # a packet that fits the path still goes through
    pair.a.ping(dst, count=1, size=path - (28 if inner == "ipv4" else 48))


def test_ipv4_without_df_is_fragmented_outside(pair: Pair) -> None:
    lower_underlay(pair, 1280)
    out = pair.a.ns.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "-M", "dont", "-s", "1400",
                        pair.b.overlay4)
    assert " 0% packet loss" in out


def test_tcp_completes_over_a_lowered_underlay(pair: Pair) -> None:
    """The device MTU stays 1472/1452; PMTU discovery shrinks TCP's segments."""
    lower_underlay(pair, 1280)
    assert tcp_transfer(pair.a, pair.b, 2 << 20) == 2 << 20
    with pair.a.lvn() as k:
        assert k.device("lvn0").drops.tx_too_big >= 1
