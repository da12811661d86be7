"""IPv4 and IPv6 inner traffic through a FIXED tunnel, IPv4 and IPv6 outer."""

from __future__ import annotations

import json

from .conftest import Pair


def netdev_stats(pair_side_ns: object, dev: str = "lvn0") -> dict[str, int]:
    out = pair_side_ns.ip("-s", "-j", "link", "show", dev)  # type: ignore[attr-defined]
    st = json.loads(out)[0]["stats64"]
    return {"rx_packets": st["rx"]["packets"], "tx_packets": st["tx"]["packets"],
            "rx_bytes": st["rx"]["bytes"], "tx_bytes": st["tx"]["bytes"]}


def test_ping_inner_ipv4_and_ipv6(pair: Pair) -> None:
    pair.a.ping(pair.b.overlay4, count=3)
    pair.a.ping(pair.b.overlay6, count=3)
    pair.b.ping(pair.a.overlay4, count=2)


def test_counters_match_traffic(pair: Pair) -> None:
    with pair.a.lvn() as k:
        before = k.device("lvn0").tunnels[0].stats
    nd_before = netdev_stats(pair.a.ns)
    pair.a.ping(pair.b.overlay4, count=4, size=100)
    with pair.a.lvn() as k:
        dev = k.device("lvn0")
    t = dev.tunnels[0]
    # 4 echo requests out, 4 replies in; inner IPv4 packet = 20 + 8 + 100.
    assert t.stats.tx_packets - before.tx_packets == 4
    assert t.stats.rx_packets - before.rx_packets == 4
    assert t.stats.tx_bytes - before.tx_bytes == 4 * 128
    assert t.stats.rx_bytes - before.rx_bytes == 4 * 128
    assert t.last_rx_ms is not None and t.last_rx_ms < 10_000
    nd = netdev_stats(pair.a.ns)
    assert nd["tx_packets"] - nd_before["tx_packets"] == 4
    assert nd["rx_packets"] - nd_before["rx_packets"] == 4
    assert nd["rx_bytes"] - nd_before["rx_bytes"] == 4 * 128


def test_show_reports_the_tunnel(pair: Pair) -> None:
    with pair.a.lvn() as k:
        devs = k.devices()
    assert [d.ifname for d in devs] == ["lvn0"]
    d = devs[0]
    assert d.mode == "fixed" and d.port == 50000
    assert d.sockets == (pair.outer,)
    (t,) = d.tunnels
    assert (t.remote, t.remote_port, t.local) == (pair.b.underlay, 50000, pair.a.underlay)


def test_full_mtu_packets_cross(pair: Pair) -> None:
    # The device MTU follows the underlay: 1500 minus outer IP + UDP.
    with pair.a.lvn() as k:
        mtu = k.link("lvn0")[0]
    assert mtu == (1472 if pair.outer == "ipv4" else 1452)
    pair.a.ping(pair.b.overlay4, count=2, size=mtu - 28)
    pair.a.ping(pair.b.overlay6, count=2, size=mtu - 48)
