"""The router's side alone: a node (the MicroPython agent) behind a
masquerading router joins the CPython server, gets its addresses and
passes traffic both ways, IPv4 and IPv6 inside.  It runs on the
MicroPython that ``upy.node()`` names: OpenWrt 24.10's for this host in
make test, the guest architecture's own static build in make test-cross
(mipsel: the MIPS family of most community routers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvn.netlink import Ipudp

from .netns import Netns, wait_for
from .test_agent import CLIENT_CONF, SERVER_CONF, Agents, agents, nat_site, overlay4, site_pki  # noqa: F401

pytestmark = pytest.mark.newest


def test_node_joins_through_nat_and_passes_traffic(netns: type[Netns], agents: Agents,  # noqa: F811
                                                   tmp_path: Path) -> None:
    s, _r, a, _b = nat_site(netns)
    ca = site_pki(tmp_path, "node-a")
    agents.start("srv", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca, extra=""))
    agents.start("a", a, CLIENT_CONF.format(
        server="10.99.0.1", ifname="lvn0", ca=ca / "ca.pem", cert=ca / "issued/node-a.pem",
        key=ca / "issued/node-a.key", state=tmp_path / "a" / "state", extra=""),
        micropython=True)

    def joined() -> bool:
        # an agent that exits fails the test at once, with its log (a wait
        # for the address took the 600 s ceiling times the cross guests' scale)
        for name in ("srv", "a"):
            proc = agents.procs[name][0]
            assert proc.poll() is None, f"{name} exited ({proc.returncode}):\n" \
                                        f"{agents.log(name)[-3000:]}"
        return overlay4(a) is not None
    wait_for(joined, 600, "the node to get its address")
    wait_for(lambda: "tunnel up" in agents.log("a"), 300, "the node's tunnel")
    a.run("ping", "-c", "3", "-i", "0.3", "-W", "5", "10.77.0.1")
    a.run("ping", "-6", "-c", "2", "-i", "0.3", "-W", "5", "fd77::1")
    s.run("ping", "-c", "2", "-i", "0.3", "-W", "5", str(overlay4(a)))
    # the server's tunnel points at the NAT's public side
    with Ipudp(netns=s.name) as k:
        (tunnel,) = k.tunnels("lvn0")
    assert tunnel.remote == "10.99.0.254", tunnel
    assert tunnel.stats.rx_packets >= 5 and tunnel.stats.tx_packets >= 2, tunnel.stats
    assert "Traceback" not in agents.log("a") + agents.log("srv")
