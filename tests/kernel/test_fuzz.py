"""Malformed input never crashes the module: 10,000+ garbage generic netlink
requests, 100,000 malformed UDP payloads, every datagram accounted for.

(The VM harness fails the run on any WARN/BUG/Oops/KASAN line in dmesg.)
"""

from __future__ import annotations

import json
import os
import random
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from lvn.model import Rule, Tunnel
from lvn.netlink import Ipudp, made_in
from lvn.rawnl import NETLINK_GENERIC, Channel

from .netns import Netns, veth

# serial: counts the kernel-wide receive-backlog drops
pytestmark = pytest.mark.serial

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300


def nla(atype: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), atype) + payload + b"\0" * (-len(payload) % 4)


def mutate(rnd: random.Random, blob: bytes) -> bytes:
    """Flip bytes, truncate or extend a valid attribute stream."""
    b = bytearray(blob)
    for _ in range(rnd.randrange(0, 4)):
        if b and rnd.random() < 0.6:
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif b:
            del b[rnd.randrange(len(b)):]
        else:
            b += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
    return bytes(b)


def garbage_attrs(rnd: random.Random) -> bytes:
    """Attribute streams from almost valid to pure noise."""
    ifname = nla(2, rnd.choice([b"lvn0\0", b"lvm\0", b"lo\0", b"", b"x" * 20]))
    tunnel = nla(0x8008, nla(1, struct.pack("=I", rnd.randrange(4))) +
                 nla(4, bytes([192, 0, 2, rnd.randrange(256)])) +
                 nla(6, struct.pack("=H", rnd.randrange(65536))))
    rule = nla(0x800a, nla(1, struct.pack("=I", rnd.randrange(4))) +
               nla(rnd.choice([2, 3]), bytes(rnd.randrange(256) for _ in range(
                   rnd.choice([4, 16, 3, 0])))) +
               nla(4, bytes([rnd.randrange(140)])) + nla(5, bytes([rnd.randrange(3)])))
    noise = b"".join(nla(rnd.randrange(0, 20) | rnd.choice([0, 0x8000]),
                         bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 24))))
                     for _ in range(rnd.randrange(0, 4)))
    parts = [ifname, tunnel, rule, noise, nla(3, bytes([rnd.randrange(4)])),
             nla(5, struct.pack("=I", rnd.randrange(-1, 1 << 16) & 0xFFFFFFFF)),
             nla(9, struct.pack("=I", rnd.randrange(4)))]
    rnd.shuffle(parts)
    blob = b"".join(parts[:rnd.randrange(0, len(parts) + 1)])
    return mutate(rnd, blob) if rnd.random() < 0.7 else blob


def request(family: int, seq: int, rnd: random.Random) -> bytes:
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if rnd.random() < 0.2 else 0)
    body = struct.pack("=BBH", rnd.randrange(0, 14), rnd.choice([1, 1, 1, 0, 2]),
                       rnd.randrange(2)) + garbage_attrs(rnd)
    if rnd.random() < 0.05:
        body = body[:rnd.randrange(0, 4)]  # genl header itself truncated
    msg = struct.pack("=IHHII", 16 + len(body), family, flags, seq, 0) + body
    return msg + b"\0" * (-len(msg) % 4)  # the next message starts aligned


def run_requests(sock: socket.socket, family: int, rnd: random.Random,
                 count: int) -> dict[int, int]:
    """Send ``count`` requests in batches; errno histogram of the answers."""
    errors: dict[int, int] = {}
    seq = 0
    while seq < count:
        batch, pending = b"", set()
        for _ in range(min(64, count - seq)):
            seq += 1
            batch += request(family, seq, rnd)
            pending.add(seq)
        sock.sendall(batch)
        while pending:
            buf = sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(buf):
                length, mtype, _, mseq, _ = struct.unpack_from("=IHHII", buf, off)
                if mtype in (NLMSG_ERROR, NLMSG_DONE) and mseq in pending:
                    pending.discard(mseq)
                    err = -struct.unpack_from("=i", buf, off + 16)[0] \
                        if mtype == NLMSG_ERROR else 0
                    errors[err] = errors.get(err, 0) + 1
                off += max((length + 3) & ~3, 16)
    return errors


def test_ten_thousand_garbage_genetlink_requests(netns: type[Netns]) -> None:
    ns = netns()
    ns.ip("link", "add", "lvn0", "type", "ipudp")
    ns.ip("link", "add", "lvm", "type", "ipudp")
    with Ipudp(netns=ns.name) as k:
        k.set_tunnel("lvn0", "192.0.2.1")
        k.set_mode("lvm", "multi")
        k.set_device("lvm", port=50001)
        k.add_tunnels("lvm", [Tunnel(f"192.0.2.{i}", id=i) for i in range(1, 4)])
        family = k.family_id
    rnd = random.Random(20261126)
    channel = made_in(ns.name, lambda: Channel(NETLINK_GENERIC))  # bound, acks capped
    sock = channel.sock
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        errors = run_requests(sock, family, rnd, 10_000)
        # badly framed messages: the kernel drops them without an answer
        for _ in range(300):
            msg = request(family, 0, rnd)
            cut = rnd.randrange(1, len(msg))
            sock.send(msg[:cut] if rnd.random() < 0.5 else
                      struct.pack("=I", rnd.randrange(1 << 16)) + msg[4:])
    finally:
        sock.close()
    out = Path(__file__).resolve().parents[2] / "build" / "vm" / f"genl-{os.uname().release}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({str(k): v for k, v in sorted(errors.items())}) + "\n")
    assert sum(errors.values()) == 10_000
    assert errors.get(22, 0) > 1000, errors  # EINVAL: most of it is refused
    assert len(errors) >= 4, errors          # and for several different reasons
    with Ipudp(netns=ns.name) as k:  # the module still answers, devices intact
        assert {d.ifname for d in k.devices()} == {"lvn0", "lvm"}


# -- malformed UDP payloads -------------------------------------------------

def ipv4_header(rnd: random.Random, length: int) -> bytes:
    ihl = rnd.choice([5, 5, 5, 0, 1, 4, 6, 15])
    total = rnd.choice([length, length, 0, 19, length + 1, 65535, rnd.randrange(65536)])
    frag = rnd.choice([0, 0x4000, 0x2000, 0x1fff, rnd.randrange(65536)])
    src = bytes([10, 200, rnd.randrange(256), rnd.randrange(1, 255)])
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 0, frag, rnd.randrange(256),
                       rnd.choice([1, 6, 17, 58, 0, 255]), 0, src, bytes([10, 200, 0, 1]))


def ipv6_header(rnd: random.Random, payload_len: int) -> bytes:
    plen = rnd.choice([payload_len, 0, payload_len + 8, 65535])
    src = bytes([0xfd, 0xc8] + [rnd.randrange(256) for _ in range(14)])
    return struct.pack("!IHBB16s16s", 0x60000000 | rnd.randrange(1 << 20), plen,
                       rnd.choice([58, 6, 17, 0, 44, 59]), 64, src,
                       bytes([0xfd, 0xc8] + [0] * 13 + [1]))


def payload(rnd: random.Random) -> bytes:
    kind = rnd.randrange(7)
    body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
    if kind == 0:
        return b""                                          # nothing at all
    if kind == 1:                                           # random, IP-looking nibble
        return bytes([rnd.choice([0x40, 0x45, 0x60, 0x4f]) | rnd.randrange(16)]) + body[:39]
    if kind == 2:                                           # IPv4 header, odd fields
        pkt = ipv4_header(rnd, 20 + len(body)) + body
        return pkt[:rnd.randrange(1, len(pkt) + 1)]
    if kind == 3:                                           # IPv6 header, odd fields
        pkt = ipv6_header(rnd, len(body)) + body
        return pkt[:rnd.randrange(1, len(pkt) + 1)]
    if kind == 4:                                           # not IP: control, or junk
        return rnd.choice([b"\xff\xff\xff\xff", b"\x00", b"\x10", b"\xff", b"\x7f"]) + body
    if kind == 5:                                           # whole IPv4 header
        return ipv4_header(rnd, 20 + len(body)) + body
    return ipv6_header(rnd, len(body)) + body               # whole IPv6 header


@pytest.mark.parametrize("gro", ["off", "on"])
def test_hundred_thousand_malformed_udp_payloads(netns: type[Netns], gro: str) -> None:
    """Every datagram from the tunnel's endpoint is counted exactly once:
    delivered, malformed, spoofed or control; strangers as unknown endpoint.
    gro on: the datagrams pass the underlay's GRO, and so the module's GRO
    hooks, first (the sender's veth without TSO, as test_gro sets it up)."""
    a, b = netns(), netns()
    veth(a, b)
    if gro == "on":
        b.run("ethtool", "-K", "ul0", "tso", "off")
        a.run("ethtool", "-K", "ul0", "gro", "on")
    a.ip("addr", "add", "10.99.0.1/24", "dev", "ul0")
    a.ip("addr", "add", "fd99::1/64", "dev", "ul0", "nodad")
    b.ip("addr", "add", "10.99.0.2/24", "dev", "ul0")
    b.ip("addr", "add", "fd99::2/64", "dev", "ul0", "nodad")
    a.ip("link", "add", "lvm", "type", "ipudp")
    a.ip("link", "set", "lvm", "up")
    with Ipudp(netns=a.name) as k:
        k.set_mode("lvm", "multi")
        k.add_tunnels("lvm", [Tunnel("10.99.0.2", id=1), Tunnel("fd99::2", id=2)])
        k.add_rules("lvm", [Rule("0.0.0.0/0", 1), Rule("::/0", 2)])
        before = k.device("lvm")
    rnd = random.Random(7)
    pool = [payload(rnd) for _ in range(4000)]
    drops_before = softnet_drops()
    with b.entered():
        s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s4.bind(("10.99.0.2", 50000))
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s6.bind(("fd99::2", 50000))
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.bind(("10.99.0.2", 40000))
    sent = {"v4": 0, "v6": 0, "stranger": 0}
    try:
        for i in range(100_000):
            data = pool[i % len(pool)]
            if i % 10 == 9:
                stranger.sendto(data, ("10.99.0.1", 50000))
                sent["stranger"] += 1
            elif i % 2:
                s6.sendto(data, ("fd99::1", 50000))
                sent["v6"] += 1
            else:
                s4.sendto(data, ("10.99.0.1", 50000))
                sent["v4"] += 1
    finally:
        for s in (s4, s6, stranger):
            s.close()
    with Ipudp(netns=a.name) as k:
        after = k.device("lvm")
    d0, d1 = before.drops, after.drops

    def delta(name: str) -> int:
        return int(getattr(d1, name)) - int(getattr(d0, name))

    t0 = {t.id: t.stats for t in before.tunnels}
    t1 = {t.id: t.stats for t in after.tunnels}
    delivered = sum(t1[i].rx_packets - t0[i].rx_packets for i in (1, 2))
    accounted = (delivered + delta("rx_malformed") + delta("rx_spoofed")
                 + delta("rx_control_dropped"))
    lost = softnet_drops() - drops_before
    report: dict[str, Any] = {"sent": sent, "delivered": delivered,
                              "malformed": delta("rx_malformed"),
                              "spoofed": delta("rx_spoofed"),
                              "control": delta("rx_control_dropped"),
                              "unknown": delta("rx_unknown_endpoint"), "backlog_drops": lost}
    name = f"fuzz-{os.uname().release}.json" if gro == "off" else \
        f"fuzz-gro-{os.uname().release}.json"
    out = Path(__file__).resolve().parents[2] / "build" / "vm" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report) + "\n")
    assert accounted + delta("rx_unknown_endpoint") + lost == 100_000, report
    assert delta("rx_unknown_endpoint") <= sent["stranger"], report
    for key in ("malformed", "spoofed", "control", "delivered"):
        assert report[key] > 1000, report


def softnet_drops() -> int:
    """Packets the receive backlog dropped (all CPUs; the VM runs nothing else)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f)
