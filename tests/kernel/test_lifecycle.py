"""Device, module and netns lifetimes: nothing leaks, nothing WARNs."""

from __future__ import annotations

import json
import re
import select
import subprocess
import time

import pytest

from lvn.netlink import Ipudp

from .conftest import Pair, build_pair, load_module, module_loaded, run_bg
from .netns import Netns, scaled, sh, wait_for

# serial: unloads the module and counts its prints in the kernel-wide log
pytestmark = pytest.mark.serial


def mark() -> str:
    """A line in the kernel log that debug_counts() starts counting after:
    objects of earlier tests (whose prints may have been off, see
    test_bench.py, or pushed out of the ring buffer) do not count."""
    token = f"lvn-test: mark {time.monotonic_ns()}"
    with open("/dev/kmsg", "w") as f:
        f.write(token + "\n")
    return token


def debug_counts(since: str) -> tuple[int, int]:
    log = sh("dmesg")
    assert since in log, "the mark left the kernel log"
    log = log.rsplit(since, 1)[1]
    created = len(re.findall(r"ipudp: \S+: (?:device|tunnel \d+) created", log))
    destroyed = len(re.findall(r"ipudp: \S+: (?:device|tunnel \d+) destroyed", log))
    return created, destroyed


def test_ip_link_add_and_delete(netns: type[Netns]) -> None:
    ns = netns()
    ns.ip("link", "add", "lvn0", "type", "ipudp")
    out = ns.ip("-d", "link", "show", "lvn0")
    assert "ipudp" in out and "mtu 1472" in out and "NOARP" in out
    ns.ip("link", "del", "lvn0")
    assert "lvn0" not in ns.ip("link", "show")


def test_rmmod_with_live_devices_and_traffic(netns: type[Netns]) -> None:
    pair = build_pair(netns, "ipv4")
    flood = run_bg(pair.a.ns, "ping", "-f", "-q", "-w", "30", pair.b.overlay4)
    flood6 = run_bg(pair.b.ns, "ping", "-f", "-q", "-w", "30", pair.a.overlay6)
    try:
        time.sleep(1.5)
        # listeners hear every tunnel go, the module's own unload included
        with Ipudp(netns=pair.a.ns.name) as k, k.event_source() as events:
            sh("rmmod", "ipudp")
            gone = []
            while not gone and select.select([events], [], [], scaled(10))[0]:
                gone = [(e.ifname, e.tunnel_id, e.reason) for e in events.read()
                        if e.kind == "tunnel-del"]
        assert gone == [("lvn0", 0, "device")]
        assert not module_loaded()
        assert "lvn0" not in pair.a.ns.ip("link", "show")
        assert "lvn0" not in pair.b.ns.ip("link", "show")
    finally:
        for p in (flood, flood6):
            p.kill()
            p.wait()
        load_module()


def test_netns_deletion_with_devices_inside(netns: type[Netns]) -> None:
    since = mark()
    pair = build_pair(netns, "ipv6")
    pair.a.ping(pair.b.overlay4, count=1)
    flood = run_bg(pair.a.ns, "ping", "-f", "-q", "-w", "30", pair.b.overlay4)
    time.sleep(1)
    pair.a.ns.delete()
    pair.b.ns.delete()
    flood.kill()
    flood.wait()
    created, _ = debug_counts(since)
    assert created >= 4  # two devices, a tunnel each
    wait_for(lambda: debug_counts(since)[1] >= created, what="every device/tunnel destroyed")


def test_device_outlives_its_socket_netns(netns: type[Netns]) -> None:
    home, away = netns(), netns()
    home.ip("link", "add", "lvn0", "type", "ipudp")
    with Ipudp(netns=home.name) as k:
        k.set_tunnel("lvn0", "10.99.0.2")
        assert k.device("lvn0").sockets == ("ipv4",)
    home.ip("link", "set", "lvn0", "netns", away.name)
    away.ip("addr", "add", "192.168.99.1/30", "dev", "lvn0")
    away.ip("link", "set", "lvn0", "up")
    home.delete()  # the sockets' netns goes away, the device lives on
    with Ipudp(netns=away.name) as k:
        wait_for(lambda: k.device("lvn0").sockets == (), what="sockets closed")
        # and it says so to routing daemons, as WireGuard does: no carrier
        # (at once), and the operational state follows (linkwatch, later)
        def link() -> dict[str, object]:
            return dict(json.loads(away.ip("-j", "link", "show", "lvn0"))[0])
        assert "LOWER_UP" not in link()["flags"], link()  # type: ignore[operator]
        wait_for(lambda: link()["operstate"] == "DOWN", what="operstate DOWN")
        away.run("ping", "-c", "1", "-W", "1", "192.168.99.2", check=False)
        assert k.device("lvn0").drops.tx_no_route >= 1
        k.del_device("lvn0")


def test_connections_at_once_all_stay_in_their_netns(netns: type[Netns]) -> None:
    """Several connections of one process into one netns: each generic
    netlink socket is made and bound there.  (Under pyroute2 0.7.9 a bind
    whose port id was taken made a new socket in the thread's own netns,
    which has no lvn0: ENODEV.)"""
    ns = netns()
    ns.ip("link", "add", "lvn0", "type", "ipudp")
    conns = [Ipudp(netns=ns.name) for _ in range(3)]
    try:
        for k in conns:
            assert k.device("lvn0").ifname == "lvn0"
        conns[1].set_tunnel("lvn0", "10.99.0.2")
        assert [t.remote for t in conns[2].tunnels("lvn0")] == ["10.99.0.2"]
    finally:
        for k in conns:
            k.close()


def test_leak_check_after_unload(netns: type[Netns]) -> None:
    # Earlier tests' netns may still be in cleanup_net; unloading waits for
    # it (rtnl_link_unregister), so their "destroyed" lines precede the mark.
    sh("rmmod", "ipudp")
    load_module()
    since = mark()
    pair: Pair = build_pair(netns, "ipv4")
    pair.a.ping(pair.b.overlay4, count=1)
    sh("rmmod", "ipudp")  # a tunnel left over would also make kmem_cache_destroy() say BUG
    created, destroyed = debug_counts(since)
    assert created > 0 and created == destroyed, (created, destroyed)
    load_module()
    subprocess.run(["true"], check=True)
