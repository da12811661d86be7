"""ECN across decapsulation (RFC 6040, as ip_tunnel_rcv and vxlan do): a
congestion mark (CE) on the outer header reaches the inner packet when the
inner one is ECN-capable; a CE mark on a packet whose sender cannot
understand it is dropped and counted as a frame error."""

from __future__ import annotations

import socket
import sys

import pytest

from .conftest import OVERLAY4, OVERLAY6
from .netns import Netns, scaled, wait_for
from .packets import ipv4_udp, ipv6_udp
from .test_receive_filter import fd_pair

NOT_ECT, ECT0, CE = 0, 2, 3


def mark_outer(s: socket.socket, ecn: int) -> None:
    if s.family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, ecn)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, ecn)


def listener(ns: Netns, inner: str) -> socket.socket:
    family = socket.AF_INET if inner == "ipv4" else socket.AF_INET6
    with ns.entered():
        s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        s.bind((OVERLAY4[0], 7777))
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        s.bind((OVERLAY6[0], 7777))
    s.settimeout(scaled(5))
    return s


def inner_packet(inner: str, ecn: int, payload: bytes) -> bytes:
    if inner == "ipv4":
        return ipv4_udp(OVERLAY4[1], OVERLAY4[0], 9999, 7777, payload, tos=ecn)
    return ipv6_udp(OVERLAY6[1], OVERLAY6[0], 9999, 7777, payload, tclass=ecn)


def received_ecn(s: socket.socket) -> tuple[bytes, int]:
    data, cmsgs, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
    for level, kind, value in cmsgs:
        if (level, kind) in ((socket.IPPROTO_IP, socket.IP_TOS),
                             (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)):
            # IP_TOS: one byte; IPV6_TCLASS: an int in host byte order
            tclass = value[0] if len(value) == 1 else int.from_bytes(value, sys.byteorder)
            return data, tclass & 3
    raise AssertionError(f"no TOS/TCLASS ancillary data: {cmsgs!r}")


def frame_errors(ns: Netns) -> int:
    return int(ns.run("cat", "/sys/class/net/lvn0/statistics/rx_frame_errors"))


@pytest.mark.parametrize("outer", ["ipv4", "ipv6"])
@pytest.mark.parametrize("inner", ["ipv4", "ipv6"])
def test_outer_ce_mark_reaches_inner(netns: type[Netns], outer: str, inner: str) -> None:
    a, b, sa, sb = fd_pair(netns, outer)
    dst = ("10.99.0.1", 50000) if outer == "ipv4" else ("fd99::1", 50000)
    lis = listener(a, inner)
    try:
        # unmarked: delivered as sent
        sb.sendto(inner_packet(inner, ECT0, b"plain"), dst)
        assert received_ecn(lis) == (b"plain", ECT0)
        # congestion on the underlay: the inner packet carries it on
        mark_outer(sb, CE)
        sb.sendto(inner_packet(inner, ECT0, b"marked"), dst)
        assert received_ecn(lis) == (b"marked", CE)
        # a sender that cannot take the mark: dropped, counted
        before = frame_errors(a)
        sb.sendto(inner_packet(inner, NOT_ECT, b"not-ect"), dst)
        wait_for(lambda: frame_errors(a) == before + 1, what="rx_frame_errors to count it")
        # the next good packet is the next one delivered
        mark_outer(sb, NOT_ECT)
        sb.sendto(inner_packet(inner, ECT0, b"after"), dst)
        assert received_ecn(lis) == (b"after", ECT0)
    finally:
        for s in (lis, sa, sb):
            s.close()
