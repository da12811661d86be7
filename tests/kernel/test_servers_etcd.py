"""Two servers on a three-member etcd cluster (docs/servers.md): clients
join both servers at once, half listing each first, while one etcd
member is killed (SIGKILL) and started again; every client ends up with
a lease of its own, no address is handed out twice and none is lost
(50 clients in make test, in the newest kernel's VM beside test_servers
in the oldest one's; 500 in make test-long).

The clients are make bench's (scripts/bench_servers.py: TLS, the
protocol and keepalives, no device of their own; a refused or failed
join goes to the next server of the list after 1-1.5 s, as lvn/clientpolicy.py
does)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from etcdcluster import Cluster

from lvn import pki
from lvn.agent import tls_context
from lvn.config import DEFAULT_PORT
from lvn.etcd import Etcd, EtcdUnavailable

from .netns import Netns, scaled, wait_for
from .router import ROOT
from .test_agent import Agents, agents  # noqa: F401
from .test_servers import etcd_and_servers

sys.path.insert(0, str(ROOT / "scripts"))

import bench_join  # noqa: E402
import bench_servers  # noqa: E402

pytestmark = pytest.mark.newest

ETCD_CONF = """	option lease_store 'etcd'
	option name 'gw{i}'
	option rebalance_margin '0'
{endpoints}"""


@pytest.mark.parametrize("clients", [pytest.param(50), pytest.param(500, marks=pytest.mark.long)])
def test_joins_on_two_servers_while_an_etcd_member_dies(
        netns: type[Netns], agents: Agents, tmp_path: Path, clients: int,  # noqa: F811
        record_property: Callable[[str, object], None]) -> None:
    e, (s1, s2), (c,) = etcd_and_servers(netns, 1)
    cluster = Cluster(tmp_path / "etcd", 3, listen="0.0.0.0")
    (tmp_path / "etcd").mkdir()
    with e.entered():
        cluster.start()
    try:
        for key, value in run(e, s1, s2, c, cluster, agents, tmp_path, clients).items():
            record_property(key, value)  # in the JUnit report
    finally:
        cluster.stop()


def run(e: Netns, s1: Netns, s2: Netns, c: Netns, cluster: Cluster, agents: Agents,  # noqa: F811
        tmp_path: Path, n: int) -> dict[str, object]:
    ca = tmp_path / "pki"
    pki.init(ca)
    pki.issue(ca, "srv", role="server")
    certs = bench_join.issue_clients(ca, n)
    for i, s in ((1, s1), (2, s2)):
        endpoints = "".join(f"\tlist etcd 'http://10.9{2 + i}.0.1:{m.client}'\n"
                            for m in cluster.members)
        agents.start(f"srv{i}", s, bench_join.SERVER_CONF.format(
            d=tmp_path, state=tmp_path / f"srv{i}-state", keepalive=5,
            extra=ETCD_CONF.format(i=i, endpoints=endpoints)))
    wait_for(lambda: all("lvn service running" in agents.log(f"srv{i}") for i in (1, 2)),
             300, "both servers to listen")

    etcd = Etcd(cluster.endpoints, timeout=2)

    def leases() -> dict[str, list[str]]:
        with e.entered():
            return {kv.key.rpartition("/")[2]: json.loads(kv.value)
                    for kv in etcd.get_prefix("/lvn/lease/")}

    # a member dies (SIGKILL) once a third of the clients have their lease,
    # and comes back once the other two have taken writes without it
    fault: dict[str, object] = {}

    def kill_and_restart() -> None:
        try:
            wait_for(lambda: len(leases()) >= n // 3, scaled(600), "a third of the leases")
            victim = cluster.members[0]
            victim.stop(signal.SIGKILL)
            fault["killed_at"] = len(leases())
            with e.entered():
                Etcd([m.url for m in cluster.members[1:]], timeout=2).put("/after-kill", "1")
                cluster.restart(victim)
            fault["restarted_at"] = len(leases())
        except (AssertionError, EtcdUnavailable) as err:
            fault["error"] = err

    killer = threading.Thread(target=kill_and_restart, daemon=True)
    killer.start()
    ctxs = [tls_context(str(ca / "ca.pem"), str(cert), str(key), None, server=False)
            for cert, key in certs]
    servers = ["10.91.0.1", "10.92.0.1"]
    with c.entered():
        joined = bench_servers.run_clients(
            ctxs, [servers[i % 2:] + servers[:i % 2] for i in range(n)], cut=None,
            timeout=scaled(900), port=DEFAULT_PORT, handshake_timeout=scaled(30))
    killer.join(scaled(120))
    print(f"{n} clients joined two servers in {joined['all_joined_s']} s "
          f"({joined['rejoins']} rejoins); etcd member killed at {fault.get('killed_at')} "
          f"leases, back at {fault.get('restarted_at')}")
    assert "error" not in fault and "restarted_at" in fault, fault
    killed_at = fault["killed_at"]
    assert isinstance(killed_at, int) and killed_at < n, fault  # during the joins

    # one lease each, no address twice, and each address key names its holder
    held = leases()
    assert sorted(held) == sorted(f"load-{i}" for i in range(n))
    addresses = [a.split("/")[0] for v in held.values() for a in v]
    assert len(addresses) == 2 * n and len(set(addresses)) == 2 * n
    with e.entered():
        owners = {kv.key.rpartition("/")[2]: kv.value for kv in etcd.get_prefix("/lvn/addr/")}
    assert owners == {a.split("/")[0]: name for name, v in held.items() for a in v}
    for i in (1, 2):
        assert "Traceback" not in agents.log(f"srv{i}")
    return {"all_joined_s": joined["all_joined_s"], "rejoins": joined["rejoins"],
            "etcd_killed_at_leases": killed_at, "etcd_back_at_leases": fault["restarted_at"]}
