"""The exact encapsulation on the underlay: outer IP | UDP | inner IP packet."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time

from .conftest import Pair
from .netns import scaled
from .packets import parse_outer, udp_checksum_ok

ETH_P_ALL = 0x0003


def capture_one_tunnel_packet(pair: Pair, send: object) -> dict[str, object]:
    # Checksums must be final on the wire, not left to (virtual) offload.
    pair.a.ns.run("ethtool", "-K", "ul0", "tx", "off")
    with pair.b.ns.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        raw.bind(("ul0", 0))
        raw.settimeout(scaled(5))
        send()  # type: ignore[operator]
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            frame = raw.recv(65535)
            pkt = parse_outer(frame)
            if pkt is None:
                continue
            udp = pkt["udp"]
            assert isinstance(udp, bytes)
            if struct.unpack("!H", udp[2:4])[0] == 50000 and udp[8] >> 4 == 4:
                return pkt
    finally:
        raw.close()
    raise AssertionError("no encapsulated IPv4 packet seen on the underlay")


def test_encapsulation_bytes(pair: Pair) -> None:
    pkt = capture_one_tunnel_packet(
        pair, lambda: pair.a.ping(pair.b.overlay4, count=1, size=32))
    version = 4 if pair.outer == "ipv4" else 6
    assert pkt["version"] == version
    assert pkt["header_ok"]
    src, dst = pkt["src"], pkt["dst"]
    assert isinstance(src, bytes) and isinstance(dst, bytes)
    assert ipaddress.ip_address(src) == ipaddress.ip_address(pair.a.underlay)
    assert ipaddress.ip_address(dst) == ipaddress.ip_address(pair.b.underlay)
    udp = pkt["udp"]
    assert isinstance(udp, bytes)
    sport, dport, ulen, csum = struct.unpack("!HHHH", udp[:8])
    assert (sport, dport) == (50000, 50000)
    assert ulen == len(udp)
    assert csum != 0 and udp_checksum_ok(version, src, dst, udp)
    inner = udp[8:]
    # No extra header: the UDP payload is the inner IPv4 packet itself.
    assert inner[0] == 0x45
    assert struct.unpack("!H", inner[2:4])[0] == len(inner) == 20 + 8 + 32
    assert inner[9] == 1  # ICMP
    assert inner[12:16] == ipaddress.IPv4Address(pair.a.overlay4).packed
    assert inner[16:20] == ipaddress.IPv4Address(pair.b.overlay4).packed
