"""Building and checking raw IPv4/IPv6/UDP packets for the VM tests."""

from __future__ import annotations

import ipaddress
import struct


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4_udp(src: str, dst: str, sport: int, dport: int, payload: bytes,
             tos: int = 0) -> bytes:
    """A complete IPv4+UDP packet with valid checksums."""
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + ulen, 0, 0x4000, 64, 17, 0, s, d)
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + udp


def ipv6_udp(src: str, dst: str, sport: int, dport: int, payload: bytes,
             tclass: int = 0) -> bytes:
    """A complete IPv6+UDP packet with a valid UDP checksum."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    ulen = 8 + len(payload)
    pseudo = s + d + struct.pack("!IxxxB", ulen, 17)
    udp = struct.pack("!HHHH", sport, dport, ulen, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    first = (6 << 28) | (tclass << 20)
    return struct.pack("!IHBB16s16s", first, ulen, 17, 64, s, d) + udp


def udp_checksum_ok(version: int, src: bytes, dst: bytes, udp: bytes) -> bool:
    if version == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", len(udp), 17)
    return checksum(pseudo + udp) == 0


def parse_outer(frame: bytes) -> dict[str, object] | None:
    """Split an Ethernet frame carrying IP+UDP; None if it is something else."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ethertype == 0x0800:
        ihl = (ip[0] & 0xF) * 4
        if ip[9] != 17:
            return None
        total = struct.unpack("!H", ip[2:4])[0]
        return {"version": 4, "src": ip[12:16], "dst": ip[16:20],
                "header_ok": checksum(ip[:ihl]) == 0, "total": total,
                "udp": ip[ihl:total]}
    if ethertype == 0x86DD:
        if ip[6] != 17:
            return None
        plen = struct.unpack("!H", ip[4:6])[0]
        return {"version": 6, "src": ip[8:24], "dst": ip[24:40], "header_ok": True,
                "total": 40 + plen, "udp": ip[40:40 + plen]}
    return None
