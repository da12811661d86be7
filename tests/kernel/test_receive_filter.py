"""Receive accepts data only from the tunnel's remote endpoint; control
datagrams (the 0xFFFFFFFF prefix) go to a userspace socket on the same
port, other payloads that are not IP nowhere."""

from __future__ import annotations

import socket

from lvn.model import Device

from .conftest import OVERLAY4, UNDERLAY, Pair, add_overlay, add_underlay
from .netns import Netns, scaled, veth, wait_for
from .packets import ipv4_udp

CONTROL = b"\xff\xff\xff\xff" + b"lvn-control-test"


def drops(side_lvn: object) -> Device:
    with side_lvn() as k:  # type: ignore[operator]
        return k.device("lvn0")  # type: ignore[no-any-return]


def udp_sock(ns: Netns, family: int, bind: tuple[str, int]) -> socket.socket:
    with ns.entered():
        s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(bind)
    s.settimeout(scaled(1.0))
    return s


def expect_nothing(s: socket.socket) -> None:
    try:
        data = s.recv(2048)
    except TimeoutError:
        return
    raise AssertionError(f"a spoofed packet was delivered: {data!r}")


def fd_pair(netns: type[Netns], outer: str = "ipv4"
            ) -> tuple[Netns, Netns, socket.socket, socket.socket]:
    """a and b joined over ``outer``, both devices on userspace-owned sockets."""
    a, b = netns(), netns()
    veth(a, b)
    add_underlay(a, "10.99.0.1", "fd99::1")
    add_underlay(b, "10.99.0.2", "fd99::2")
    family = socket.AF_INET if outer == "ipv4" else socket.AF_INET6
    socks = []
    for ns, me, peer, o4, o6 in ((a, 0, 1, OVERLAY4[0], "fd98::1"),
                                 (b, 1, 0, OVERLAY4[1], "fd98::2")):
        ns.ip("link", "add", "lvn0", "type", "ipudp")
        s = udp_sock(ns, family, (UNDERLAY[outer][me], 50000))
        from lvn.netlink import Ipudp
        with Ipudp(netns=ns.name) as k:
            k.set_device("lvn0", fd=s.fileno())
            k.set_tunnel("lvn0", UNDERLAY[outer][peer])
        add_overlay(ns, "lvn0", o4, o6)
        socks.append(s)
    return a, b, socks[0], socks[1]


def test_spoofed_endpoint_dropped_and_counted(netns: type[Netns]) -> None:
    a, b, sa, sb = fd_pair(netns)
    try:
        listener = udp_sock(a, socket.AF_INET, (OVERLAY4[0], 7777))
        inner = ipv4_udp(OVERLAY4[1], OVERLAY4[0], 9999, 7777, b"hello")
        from lvn.netlink import Ipudp
        with Ipudp(netns=a.name) as k:
            base = k.device("lvn0").drops.rx_unknown_endpoint

            # Right address, wrong port.
            stranger = udp_sock(b, socket.AF_INET, ("10.99.0.2", 40000))
            stranger.sendto(inner, ("10.99.0.1", 50000))
            expect_nothing(listener)
            assert k.device("lvn0").drops.rx_unknown_endpoint == base + 1

            # Right port, wrong address.
            b.ip("addr", "add", "10.99.0.3/24", "dev", "ul0")
            s3 = udp_sock(b, socket.AF_INET, ("10.99.0.3", 50000))
            s3.sendto(inner, ("10.99.0.1", 50000))
            expect_nothing(listener)
            assert k.device("lvn0").drops.rx_unknown_endpoint == base + 2

            # The genuine endpoint's socket: the same bytes are delivered.
            sb.sendto(inner, ("10.99.0.1", 50000))
            assert listener.recv(2048) == b"hello"
            assert k.device("lvn0").drops.rx_unknown_endpoint == base + 2
            assert k.device("lvn0").tunnels[0].stats.rx_packets >= 1
    finally:
        sa.close()
        sb.close()


def test_control_datagram_reaches_userspace_socket(netns: type[Netns]) -> None:
    a, b, sa, sb = fd_pair(netns)
    try:
        b.run("ping", "-c", "2", "-i", "0.2", "-W", "3", OVERLAY4[0])  # data flows
        anyone = udp_sock(b, socket.AF_INET, ("10.99.0.2", 41000))
        anyone.sendto(CONTROL, ("10.99.0.1", 50000))
        data, addr = sa.recvfrom(2048)
        assert data == CONTROL and addr == ("10.99.0.2", 41000)
        sb.sendto(CONTROL + b"2", ("10.99.0.1", 50000))
        assert sa.recvfrom(2048) == (CONTROL + b"2", ("10.99.0.2", 50000))
        # Control traffic is not tunnel data.
        from lvn.netlink import Ipudp
        with Ipudp(netns=a.name) as k:
            dev = k.device("lvn0")
        assert dev.sockets == ("ipv4/user",)
        assert dev.drops.rx_unknown_endpoint == 0
    finally:
        sa.close()
        sb.close()


def test_junk_never_reaches_the_userspace_socket(netns: type[Netns]) -> None:
    """Only control datagrams (the prefix, at most 512 bytes) reach the
    agent's socket; other payloads that are not IP are malformed: dropped
    and counted, so a junk flood costs the agent nothing (issue 27)."""
    a, b, sa, sb = fd_pair(netns)
    try:
        from lvn.netlink import Ipudp
        with Ipudp(netns=a.name) as k:
            before = k.device("lvn0").drops
        anyone = udp_sock(b, socket.AF_INET, ("10.99.0.2", 41000))
        junk = [b"", b"\x00", b"\xff\xff\xff", b"\x10" * 40, b"\xff\xff\xfe\xff" + b"x" * 33,
                b"\xff\xff\xff\xff" + b"x" * 509]
        for data in junk:
            anyone.sendto(data, ("10.99.0.1", 50000))
        largest = b"\xff\xff\xff\xff" + b"y" * 508  # 512 bytes: still control
        anyone.sendto(largest, ("10.99.0.1", 50000))
        assert sa.recvfrom(2048) == (largest, ("10.99.0.2", 41000))
        expect_nothing(sa)
        with Ipudp(netns=a.name) as k:
            after = k.device("lvn0").drops
        assert after.rx_malformed - before.rx_malformed == len(junk)
        assert after.rx_unknown_endpoint == before.rx_unknown_endpoint
        anyone.close()
    finally:
        sa.close()
        sb.close()


def test_control_datagram_without_listener_is_counted(pair: Pair) -> None:
    # Module-owned socket: nobody reads control traffic, so it is dropped.
    before = drops(pair.a.lvn).drops.rx_control_dropped
    family = socket.AF_INET if pair.outer == "ipv4" else socket.AF_INET6
    s = udp_sock(pair.b.ns, family, (pair.b.underlay, 41000))
    s.sendto(CONTROL, (pair.a.underlay, 50000))
    wait_for(lambda: drops(pair.a.lvn).drops.rx_control_dropped == before + 1,
             what="rx_control_dropped to count the datagram")
    s.close()


def test_user_socket_close_then_delete(netns: type[Netns]) -> None:
    a, b, sa, sb = fd_pair(netns)
    sa.close()
    from lvn.netlink import Ipudp
    with Ipudp(netns=a.name) as k:
        wait_for(lambda: k.device("lvn0").sockets == (), what="socket to detach")
        # Sending now has no socket: dropped and counted, no crash.
        a.run("ping", "-c", "1", "-W", "1", OVERLAY4[1], check=False)
        assert k.device("lvn0").drops.tx_no_route >= 1
        k.del_device("lvn0")
    sb.close()


def test_user_socket_survives_device_delete(netns: type[Netns]) -> None:
    a, b, sa, sb = fd_pair(netns)
    from lvn.netlink import Ipudp
    with Ipudp(netns=a.name) as k:
        k.del_device("lvn0")
    # Back to a plain UDP socket: even an IP-looking payload is delivered.
    inner = ipv4_udp(OVERLAY4[1], OVERLAY4[0], 9999, 7777, b"x")
    sb.sendto(inner, ("10.99.0.1", 50000))
    assert sa.recv(2048) == inner
    # And it can be handed to a new device.
    a.ip("link", "add", "lvn1", "type", "ipudp")
    with Ipudp(netns=a.name) as k:
        k.set_device("lvn1", fd=sa.fileno())
        assert k.device("lvn1").sockets == ("ipv4/user",)
    sa.close()
    sb.close()
