"""NAT faults (issue 27's suite): a NAT that forgets its bindings and maps
the clients to new ports while they pass traffic, and a carrier-grade NAT
that gives a departed client's public port to a new identity while the
server restarts.  A CPython client and a MicroPython node behind one
masquerading router.  The times measured go to build/vm/KERNEL/nat.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lvn.netlink import Ipudp

from .netns import Netns, veth, wait_for
from .router import ROOT
from .test_agent import CLIENT_CONF, Agents, agents, nat_site, overlay4, site_pki  # noqa: F401
from .test_faults import SERVER_CONF, pings, server_tunnels_full

pytestmark = pytest.mark.newest

# below the kernel's ephemeral range (32768-60999), where the clients' own
# ports are, so neither can be a port the clients already had
NEW_PORTS = range(20000, 21000)
REUSED_PORT = 22000


def nat_rule(r: Netns, rule: str) -> None:
    """Replace the router's masquerading rule, then forget every binding
    (as a NAT does when its table overflows or it reboots)."""
    r.run("nft", f"flush chain ip nat post; add rule ip nat post oifname wan {rule}")
    r.run("conntrack", "-F", check=False)


def endpoints(s: Netns) -> set[tuple[str, int]]:
    return {(t.remote, t.remote_port) for t in server_tunnels_full(s)}


def test_nat_rebinding_and_port_reuse(netns: type[Netns], agents: Agents,  # noqa: F811
                                      tmp_path: Path) -> None:
    s, r, a, _direct = nat_site(netns)
    n = netns()
    veth(r, n, "lan2", "ul0")
    r.ip("addr", "add", "192.168.8.1/24", "dev", "lan2")
    n.ip("addr", "add", "192.168.8.2/24", "dev", "ul0")
    n.ip("route", "add", "default", "via", "192.168.8.1")
    ca = site_pki(tmp_path, "node-a", "node-n", "node-c")
    srv_conf = SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca)
    agents.start("srv", s, srv_conf)

    def client(name: str, ns: Netns, cert: str, micropython: bool, extra: str = "") -> None:
        agents.start(name, ns, CLIENT_CONF.format(
            server="10.99.0.1", ifname="lvn0", ca=ca / "ca.pem", cert=ca / f"issued/{cert}.pem",
            key=ca / f"issued/{cert}.key", state=tmp_path / name / "state", extra=extra),
            micropython=micropython)

    client("a", a, "node-a", False)
    client("n", n, "node-n", True)
    wait_for(lambda: overlay4(a) is not None and overlay4(n) is not None, 300,
             "both clients to join through the NAT")
    assert pings(a) and pings(n)
    figures: dict[str, object] = {"kernel": os.uname().release}

    # 1. the NAT forgets its bindings and maps to new ports (20000-20999),
    # with pings flowing: the server's tunnels follow the new endpoints
    # (path validation, or a rejoin where the NAT reset the TLS channel)
    before = endpoints(s)
    assert {p for _, p in before}.isdisjoint(NEW_PORTS), before
    flows = [ns.popen("ping", "-i", "0.2", "-w", "30", "-W", "1", "10.77.0.1",
                      stdout=subprocess.PIPE, text=True) for ns in (a, n)]
    t0 = time.monotonic()
    nat_rule(r, "meta l4proto { tcp, udp } masquerade to "
                f":{NEW_PORTS[0]}-{NEW_PORTS[-1]} random")
    wait_for(lambda: len(after := endpoints(s)) == 2 and all(
        p in NEW_PORTS for _, p in after), 240, "the tunnels to follow the new ports")
    figures["rebinding_followed_s"] = round(time.monotonic() - t0, 1)
    lost = []
    for p in flows:
        out, _ = p.communicate(timeout=120)
        sent, received = (int(line.split()[0]) for line in
                          [x for x in out.splitlines() if "transmitted" in x][0].split(", ")[:2])
        lost.append(sent - received)
    figures["rebinding_pings_lost"] = lost  # of about 150 each, 5 per second
    assert pings(a) and pings(n)

    # 2. a carrier-grade NAT gives node A's public port to a new identity
    # while the server restarts: the server adopts the tunnel it left for
    # that endpoint, and none of A's addresses may route to the newcomer
    nat_rule(r, f"ip saddr 192.168.7.2 meta l4proto udp snat to 10.99.0.254:{REUSED_PORT}; "
                "add rule ip nat post oifname wan masquerade")
    wait_for(lambda: ("10.99.0.254", REUSED_PORT) in endpoints(s), 240,
             f"A's tunnel to move to port {REUSED_PORT}")
    addr_a = overlay4(a)
    tid_a = next(t.id for t in server_tunnels_full(s) if t.remote_port == REUSED_PORT)
    with Ipudp(netns=s.name) as k:
        old = {rl.prefix for rl in k.rules("lvn0") if rl.tunnel_id == tid_a}
    assert f"{addr_a}/32" in old, old
    agents.stop("srv")  # the tunnels stay for the next run to adopt
    a.run("nft", "add table inet off; add chain inet off out { type filter hook output "
                 "priority -300 ; policy drop ; }")
    agents.stop("a", signal.SIGKILL)  # A is gone for good, without a word
    a.run("nft", "delete table inet off")
    r.run("conntrack", "-F", check=False)
    a.ip("link", "del", "lvn0")  # a new router behind the same CGNAT address
    seen = len(agents.log("srv"))
    agents.start("srv", s, srv_conf)
    client("c", a, "node-c", False)
    wait_for(lambda: "'node-c': tunnel up" in agents.log("srv")[seen:], 240,
             "the newcomer to join")
    addr_c = overlay4(a)
    assert addr_c is not None and addr_c != addr_a
    with Ipudp(netns=s.name) as k:
        tunnel = next(t for t in k.tunnels("lvn0") if t.remote_port == REUSED_PORT)
        rules = {rl.prefix: rl.tunnel_id for rl in k.rules("lvn0")}
    figures["adopted_tunnel"] = tunnel.id == tid_a
    # adopted or not, the newcomer's tunnel routes its own addresses and
    # none of A's (A's route nowhere: A has no session)
    own = {p for p, t in rules.items() if t == tunnel.id}
    assert f"{addr_c}/32" in own and own.isdisjoint(old), (own, old)
    assert not old & set(rules), (old, rules)
    # and from the server, nothing for A's old address reaches the newcomer
    a.run("nft", "add table inet seen; add chain inet seen pre { type filter hook "
                 f"prerouting priority -300 ; }}; add rule inet seen pre ip daddr {addr_a} counter")
    s.run("ping", "-c", "3", "-i", "0.3", "-W", "1", str(addr_a), check=False)
    counted = a.run("nft", "list table inet seen")
    assert "packets 0 " in counted, counted
    # (a node that gave the restarting server up joins again after its back-off)
    wait_for(lambda: pings(a) and pings(n), 120, "both old clients' traffic after the restart")
    assert "Traceback" not in agents.log("srv")
    out = ROOT / "build" / "vm" / os.uname().release / "nat.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))
