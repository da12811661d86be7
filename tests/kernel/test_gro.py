"""GRO of the outer datagrams. A TCP stream through the tunnel that crosses
the underlay as MTU-sized datagrams, as from a router's NIC without UDP
tunnel offload, is merged by the receiver's GRO before it is decapsulated:
one decapsulation per train of segments, not per datagram."""

from __future__ import annotations

import json

import pytest

from .conftest import build_pair, tcp_stream
from .netns import Netns, wait_for


def rx_packets(ns: Netns, dev: str) -> int:
    return int(json.loads(ns.ip("-s", "-j", "link", "show", dev))[0]["stats64"]["rx"]["packets"])


def nic_like_underlay(sender: Netns, receiver: Netns) -> None:
    """The sender's veth segments in software (no TSO, no UDP tunnel
    segmentation); the receiver's runs GRO in NAPI, as a NIC driver does."""
    sender.run("ethtool", "-K", "ul0", "tso", "off", "tx-udp_tnl-segmentation", "off",
               "tx-udp_tnl-csum-segmentation", "off")
    receiver.run("ethtool", "-K", "ul0", "gro", "on")


@pytest.mark.parametrize(("outer", "inner"), [("ipv4", "ipv4"), ("ipv6", "ipv6"),
                                              ("ipv4", "ipv6")])
def test_outer_datagrams_of_a_tcp_stream_are_merged(netns: type[Netns], outer: str,
                                                    inner: str) -> None:
    pair = build_pair(netns, outer)
    nic_like_underlay(pair.a.ns, pair.b.ns)
    wire0, decap0 = rx_packets(pair.b.ns, "ul0"), rx_packets(pair.b.ns, "lvn0")
    dst = pair.b.overlay4 if inner == "ipv4" else pair.b.overlay6
    tcp_stream(pair.b.ns, pair.a.ns, dst, 4 << 20)   # the bytes arrive whole, in order
    wire = rx_packets(pair.b.ns, "ul0") - wire0
    decap = rx_packets(pair.b.ns, "lvn0") - decap0
    # 4 MiB in datagrams of at most 1500 bytes: the wire saw them one by one
    assert wire > 2800, (wire, decap)
    # ... and the tunnel decapsulated trains of them
    assert decap * 4 < wire, (wire, decap)


def test_control_datagrams_are_not_merged(netns: type[Netns]) -> None:
    """With GRO on the underlay, control datagrams (the 0xFFFFFFFF prefix,
    no inner IP packet) are still each dropped as control traffic on the
    kernel's socket, counted."""
    pair = build_pair(netns, "ipv4")
    nic_like_underlay(pair.a.ns, pair.b.ns)
    with pair.b.lvn() as k:
        before = k.device("lvn0").drops.rx_control_dropped
    # from the tunnel's own endpoint, so only the payload tells them apart
    pair.a.ns.run("python3", "-c", (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('10.99.0.1', 50001))\n"
        "for i in range(20):\n"
        "    s.sendto(b'\\xff\\xff\\xff\\xff' + bytes([i]) * 100, ('10.99.0.2', 50000))\n"))

    def dropped() -> int:
        with pair.b.lvn() as k:
            return int(k.device("lvn0").drops.rx_control_dropped) - before

    wait_for(lambda: dropped() >= 20, what="20 control datagrams dropped")
    assert dropped() == 20
