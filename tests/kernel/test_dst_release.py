"""Encapsulation lets go of the inner route: the route that led a packet into
the ipudp device is released before the outer route takes its place (the
IPv6 underlay once leaked one reference per packet), so deleting the device
frees every route object it used."""

from __future__ import annotations

import socket

import pytest

from .conftest import build_pair
from .netns import Netns, wait_for

# serial: counts the kernel-wide IPv4 route objects
pytestmark = pytest.mark.serial

PACKETS = 100_000


def rt6_dst_entries(ns: Netns) -> int:
    """dst_entries of the namespace's IPv6 routes (6th field, hex)."""
    return int(ns.run("cat", "/proc/net/rt6_stats").split()[5], 16)


def rt4_dst_entries() -> int:
    """IPv4 route objects in the whole kernel (first column, hex, of any CPU's row)."""
    with open("/proc/net/stat/rt_cache") as f:
        return int(f.read().splitlines()[1].split()[0], 16)


def flood(ns: Netns, family: int, dst: str, count: int) -> None:
    with ns.entered():
        s = socket.socket(family, socket.SOCK_DGRAM)
    with s:
        for _ in range(count):
            s.sendto(b"x", (dst, 9))


@pytest.mark.parametrize("outer", ["ipv4", "ipv6"])
def test_inner_routes_freed_after_traffic(netns: type[Netns], outer: str) -> None:
    v4_before = rt4_dst_entries()
    pair = build_pair(netns, outer)
    a = pair.a.ns
    base6 = rt6_dst_entries(a)
    flood(a, socket.AF_INET6, pair.b.overlay6, PACKETS // 2)
    flood(a, socket.AF_INET, pair.b.overlay4, PACKETS // 2)
    with pair.a.lvn() as k:
        sent = k.device("lvn0").tunnels[0].stats.tx_packets
    assert sent >= PACKETS * 0.9, sent
    a.ip("link", "del", "lvn0")
    wait_for(lambda: rt6_dst_entries(a) <= base6, timeout=30,
             what=f"IPv6 dst_entries back to {base6} (now {rt6_dst_entries(a)})")
    pair.a.ns.delete()
    pair.b.ns.delete()
    wait_for(lambda: rt4_dst_entries() <= v4_before, timeout=60,
             what=f"IPv4 route objects back to {v4_before} (now {rt4_dst_entries()}) "
                  "after the namespaces went")
