"""Several servers sharing their leases in etcd (docs/servers.md): a CPython
client and a MicroPython node list two servers; the first loses power (no
FIN: its namespace drops everything); both clients move to the second
within the liveness bound and keep their overlay addresses.  Server 1
answers again, and server 2 drains (``lvn server drain``): it sends
both clients back to server 1, one a second, keeping their addresses,
and refuses a new session meanwhile.  Undrained, and both servers
reloaded with a rebalancing margin of 1 client (the default, 4, keeps
two clients where they are), server 2 gets one of them back from server
1, and no client moves after that.  The two clients, on different
servers now, ping each other through the servers' mesh (IPv4 and IPv6,
both ways); the server of the CPython client loses power, it joins the
node's server, and the pings resume there.  Last, the node's
certificate is revoked by copying the new list to the server it is not
on: through etcd it reaches the other, which ends the node's session
there.

etcd (Debian's etcd-server) runs in a namespace of its own, reachable by
both servers.  The times measured are printed (pytest -s, and the log of a
failure)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lvn import pki
from lvn.config import DEFAULT_PORT
from lvn.etcd import Etcd, EtcdUnavailable

from .netns import Netns, scaled, veth, wait_for
from .router import ROOT
from .test_agent import (  # noqa: F401
    SERVER_CONF,
    Agents,
    agents,
    forwarding,
    overlay4,
    overlay6,
    site_pki,
)
from .test_faults import blackhole, pings

pytestmark = pytest.mark.oldest

KEEPALIVE, DEAD_AFTER = 2, 3  # test_agent's server asks for 2 s keepalives
NOBODY = "10.91.0.9"  # on the CPython client's link to server 1; no host there

# test_agent's server, its leases in etcd
ETCD_LEASES = "\toption lease_store 'etcd'\n\tlist etcd '{etcd}'\n"

CLIENT_CONF = f"""
config agent 'agent'
	option enabled '1'
	option role 'client'
	option state_dir '{{state}}'
config client 'client'
	list server '{{first}}'
	list server '{{second}}'
	option server_name 'srv'
	option ca '{{pki}}/ca.pem'
	option cert '{{pki}}/issued/{{name}}.pem'
	option key '{{pki}}/issued/{{name}}.key'
	option dead_after '{DEAD_AFTER}'
"""


class EtcdMember:
    """etcd in a namespace of its own: 10.93.0.1 towards server 1, 10.94.0.1
    towards server 2 (the servers' links are made by the test)."""

    def __init__(self, ns: Netns, data: Path) -> None:
        self.ns, self.data = ns, data
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Etcd(["http://10.93.0.1:2379"])

    def start(self) -> None:
        urls = "http://10.93.0.1:2379,http://10.94.0.1:2379"
        with open(self.data.with_suffix(".log"), "ab") as log:
            self.proc = self.ns.popen(
                shutil.which("etcd") or "etcd", "--name", "e", "--data-dir", str(self.data),
                "--listen-client-urls", urls, "--advertise-client-urls", urls,
                "--listen-peer-urls", "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--initial-cluster", "e=http://127.0.0.1:2380", stdout=log, stderr=log)
        with self.ns.entered():
            wait_for(self.answers, 120, "etcd to answer")

    def answers(self) -> bool:
        try:
            self.client.put("/ready", "1")
            return True
        except EtcdUnavailable:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=scaled(30))


@pytest.fixture
def etcd_member(netns: type[Netns], tmp_path: Path) -> Iterator[EtcdMember]:
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed (scripts/setup-deps.sh installs etcd-server)")
    m = EtcdMember(netns(), tmp_path / "etcd")
    try:
        yield m
    finally:
        m.stop()


def test_failover_to_the_second_server_keeps_the_addresses(
        netns: type[Netns], agents: Agents, etcd_member: EtcdMember,  # noqa: F811
        tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    e, (s1, s2), (c, n) = etcd_and_servers(netns, 2, etcd_member.ns)
    ss = {1: s1, 2: s2}
    etcd_member.start()
    etcd = etcd_member.client

    ca = site_pki(tmp_path, "node-c", "node-n")
    crls = {i: tmp_path / f"srv{i}-crl.pem" for i in (1, 2)}  # each server its own copy
    for i, s in ((1, s1), (2, s2)):
        shutil.copy(ca / "crl.pem", crls[i])
        agents.start(f"srv{i}", s, SERVER_CONF.format(
            state=tmp_path / f"srv{i}-state", pki=ca,
            extra=ETCD_LEASES.format(etcd=f"http://10.9{2 + i}.0.1:2379")
            + f"\toption name 'gw{i}'\n\toption mesh_address '10.9{2 + i}.0.2'\n"
        ).replace(f"'{ca}/crl.pem'", f"'{crls[i]}'"),
            args=("--control", str(tmp_path / f"srv{i}-control.sock")))
    # both listening before the clients start (a client refused by the
    # first moves on to the second: that is the failover itself)
    wait_for(lambda: all("lvn service running" in agents.log(f"srv{i}") for i in (1, 2)),
             300, "both servers to listen")
    # and in etcd: each has the overlay's load probe key by then (it reads
    # it before it publishes itself), and hands it out in every LEASE
    wait_for(lambda: servers(e, etcd) == {"gw1", "gw2"}, 60, "both servers in etcd", every=1)
    # the CPython client lists an address where nobody answers between its
    # two servers: taking its list in order, its failover would wait on it
    agents.start("c", c, CLIENT_CONF.format(state=tmp_path / "c" / "state", pki=ca,
                                            name="node-c", first="10.91.0.1",
                                            second="10.92.0.1").replace(
        "\tlist server '10.92.0.1'", f"\tlist server '{NOBODY}'\n\tlist server '10.92.0.1'"))
    agents.start("n", n, CLIENT_CONF.format(state=tmp_path / "n" / "state", pki=ca,
                                            name="node-n", first="10.95.0.1",
                                            second="10.96.0.1"), micropython=True)
    wait_for(lambda: overlay4(c) is not None and overlay4(n) is not None, 300,
             "both clients to join the first server")
    addr_c, addr_n = overlay4(c), overlay4(n)
    assert addr_c != addr_n
    # (a client has its address from LEASE, before its tunnel is up)
    wait_for(lambda: agents.log("srv1").count("tunnel up") == 2, 120,
             "both tunnels up on the first server")
    assert "tunnel up" not in agents.log("srv2")
    assert pings(c) and pings(n)
    # the servers know each other's mesh end from etcd: a tunnel each way
    wait_for(lambda: all("mesh: tunnel" in agents.log(f"srv{i}") for i in (1, 2)), 60,
             "the servers' mesh tunnels")
    # the leases are in etcd, one address each
    with e.entered():
        leases = {kv.key.rpartition("/")[2]: json.loads(kv.value)
                  for kv in etcd.get_prefix("/lvn/lease/")}
    assert {k: v[0].split("/")[0] for k, v in leases.items()} == {"node-c": addr_c,
                                                                  "node-n": addr_n}
    # and where each client is (the servers publish it every 5 s)
    wait_for(lambda: where(e, etcd) == {"node-c": "gw1", "node-n": "gw1"}, 60,
             "etcd to say both clients are on gw1", every=1)

    # server 1 loses power: no FIN, no RST, nothing answers
    blackhole(s1, True)
    lost = time.monotonic()
    moved: dict[str, float] = {}

    def on_second() -> bool:
        log = agents.log("srv2")
        for who in ("node-c", "node-n"):
            if who not in moved and f"authenticated as '{who}'" in log:
                moved[who] = time.monotonic() - lost
        return len(moved) == 2 and log.count("tunnel up") >= 2

    wait_for(on_second, 300, "both clients on the second server")
    wait_for(lambda: pings(c) and pings(n), 60, "traffic through the second server")
    print(f"failover after server 1 fell silent (keepalive {KEEPALIVE} s, dead_after "
          f"{DEAD_AFTER}): CPython client {moved['node-c']:.1f} s, node {moved['node-n']:.1f} s")
    for who, seconds in moved.items():  # in the JUnit report
        record_property(f"failover_s_{who}", round(seconds, 1))
    assert overlay4(c) == addr_c and overlay4(n) == addr_n
    assert "answered none of the last" in agents.log("c")
    # each chose the server that answered its load probe (the key came in
    # gw1's LEASE, from etcd): the client never tried the silent address
    for who in ("c", "n"):
        assert "choosing a server: server " in agents.log(who), agents.log(who)
    assert f"connecting to {NOBODY}" not in agents.log("c")
    # gw1 renews its keys no more: etcd drops them; the clients are on gw2
    wait_for(lambda: where(e, etcd) == {"node-c": "gw2", "node-n": "gw2"}
             and servers(e, etcd) == {"gw2"}, 60, "etcd to say both clients are on gw2",
             every=1)

    # server 1 answers again; server 2 drains at one client a second: both
    # go back to server 1 (the next of their lists) with their addresses
    blackhole(s1, False)
    back_before = agents.log("srv1").count("tunnel up")
    out = lvn_cli("server", "drain", "--rate", "1",
                  "--control", str(tmp_path / "srv2-control.sock"))
    assert "draining: yes; 2 client(s) connected, 0 sent away at 1/s" in out, out
    sent: dict[str, float] = {}

    def back_on_first() -> bool:
        log = agents.log("srv2")
        for who in ("node-c", "node-n"):
            if who not in sent and f"'{who}': draining: sent to another server" in log:
                sent[who] = time.monotonic()
        return len(sent) == 2 and agents.log("srv1").count("tunnel up") >= back_before + 2

    wait_for(back_on_first, 300, "both clients back on server 1")
    # the draining server said so when asked for its load
    assert "choosing a server: server 3 answered in" in agents.log("c")
    assert "ms: draining" in agents.log("c") and "ms: draining" in agents.log("n")
    assert f"connecting to {NOBODY}" not in agents.log("c")
    gap = abs(sent["node-c"] - sent["node-n"])
    print(f"server 2 drained at 1/s: the two clients left {gap:.1f} s apart")
    record_property("drain_gap_s", round(gap, 1))
    assert gap > 0.5, sent  # one a second (a busy host only spreads them more)
    wait_for(lambda: pings(c) and pings(n), 60, "traffic through server 1 again")
    assert overlay4(c) == addr_c and overlay4(n) == addr_n
    wait_for(lambda: where(e, etcd) == {"node-c": "gw1", "node-n": "gw1"}
             and servers(e, etcd) == {"gw1", "gw2"}, 60, "etcd to say both are back on gw1",
             every=1)
    # a new session on the draining server is refused, with the reason
    with c.entered():
        answer = tls_first_bytes("10.92.0.1", ca, "node-c")
    assert b"draining" in answer and b"join another" in answer, answer
    out = lvn_cli("server", "undrain", "--control", str(tmp_path / "srv2-control.sock"))
    assert out.startswith("draining: no; 0 client(s) connected, 2 sent away"), out
    assert "drain ended: 2 client(s) sent away" in agents.log("srv2")

    # gw2 takes clients again: with a margin of 1 client, gw1 (2 against
    # 0) sends it one, and then nobody moves (1 against 1)
    for i in (1, 2):
        conf = agents.tmp / f"srv{i}" / "lvn"
        conf.write_text(conf.read_text() + "\toption rebalance_margin '1'\n")
        agents.procs[f"srv{i}"][0].send_signal(signal.SIGHUP)
    wait_for(lambda: all("reloaded in place: rebalance_margin" in agents.log(f"srv{i}")
                         for i in (1, 2)), 60, "both servers to reload")
    undrained = time.monotonic()
    wait_for(lambda: sorted(where(e, etcd).values()) == ["gw1", "gw2"]
             and loads(e, etcd) == {"gw1": 1, "gw2": 1}, 120,
             "one client sent back to gw2", every=1)
    split_at = time.monotonic()
    print(f"after undrain, one client was back on gw2 in {time.monotonic() - undrained:.1f} s")
    assert agents.log("srv1").count("rebalance: sent") == 1
    split = where(e, etcd)
    # no flapping: both servers publish four more times (20 s: longer than
    # the time a sent client counts as on its way, lvn/balance.py)
    published = revisions(e, etcd)
    wait_for(lambda: all(r >= published[k] + 4 for k, r in revisions(e, etcd).items()),
             120, "both servers to publish their load four more times", every=1)
    assert where(e, etcd) == split
    moves = {i: agents.log(f"srv{i}").count("rebalance: sent") for i in (1, 2)}
    assert moves == {1: 1, 2: 0}, moves
    wait_for(lambda: pings(c) and pings(n), 60, "traffic through both servers")
    assert overlay4(c) == addr_c and overlay4(n) == addr_n
    # the clients, on different servers now, reach each other through the
    # servers' mesh, both families, both ways: the client that moved took
    # its route with it (docs/servers.md, "Mesh")
    cross_pings(c, n, record_property, "mesh_after_move_s", split_at)

    # both servers stop rebalancing (the kill below leaves one with both
    # clients), and c's server loses power: c joins n's server, and the
    # two reach each other there again
    for i in (1, 2):
        conf = agents.tmp / f"srv{i}" / "lvn"
        conf.write_text(conf.read_text().replace("rebalance_margin '1'", "rebalance_margin '0'"))
        agents.procs[f"srv{i}"][0].send_signal(signal.SIGHUP)
    wait_for(lambda: all(agents.log(f"srv{i}").count("reloaded in place: rebalance_margin") == 2
                         for i in (1, 2)), 60, "both servers to reload")
    on_c, on_n = (int(split[who][-1]) for who in ("node-c", "node-n"))
    blackhole(ss[on_c], True)
    cut = time.monotonic()
    wait_for(lambda: where(e, etcd) == {"node-c": f"gw{on_n}", "node-n": f"gw{on_n}"}, 120,
             "c on n's server", every=1)
    cross_pings(c, n, record_property, "pings_after_kill_s", cut)
    assert f"connecting to {NOBODY}" not in agents.log("c")
    blackhole(ss[on_c], False)
    split = where(e, etcd)

    # the node's certificate is revoked, and the new list copied to the
    # server the node is not on only: the other gets it through etcd and
    # ends the node's session; the CPython client goes on
    on = int(split["node-n"][-1])
    other = 3 - on
    pki.revoke(ca, "node-n")
    shutil.copy(ca / "crl.pem", crls[other])
    copied = time.monotonic()
    wait_for(lambda: "'node-n': certificate revoked" in agents.log(f"srv{on}"), 120,
             "the node's server to end its session")
    revoked_s = time.monotonic() - copied
    print(f"a revocation copied to server {other} ended the session on server {on} "
          f"in {revoked_s:.1f} s")
    record_property("revocation_other_server_s", round(revoked_s, 1))
    assert crls[1].read_bytes() == crls[2].read_bytes()
    assert "published to etcd" in agents.log(f"srv{other}")
    assert pings(c)


def etcd_and_servers(netns: type[Netns], clients: int, e: Netns | None = None
                     ) -> tuple[Netns, tuple[Netns, Netns], tuple[Netns, ...]]:
    """etcd's namespace (``e`` or a new one), two servers' and ``clients``
    clients' namespaces: etcd is 10.9{2+i}.0.1 towards server i
    (10.9{2+i}.0.2), and routes between the servers (their backbone);
    client k reaches server i at 10.9{4k+i}.0.1 from 10.9{4k+i}.0.2 (the
    first client 10.91/10.92, the second 10.95/10.96).  The servers
    forward, as /etc/init.d/lvn makes them."""
    e = e or netns()
    servers = (netns(), netns())
    sites = tuple(netns() for _ in range(clients))
    e.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    for i, s in enumerate(servers, 1):
        veth(s, e, "ul9", f"e{i}")
        e.ip("addr", "add", f"10.9{2 + i}.0.1/24", "dev", f"e{i}")
        s.ip("addr", "add", f"10.9{2 + i}.0.2/24", "dev", "ul9")
        s.ip("route", "add", f"10.9{5 - i}.0.0/24", "via", f"10.9{2 + i}.0.1")
        forwarding(s)
        for k, c in enumerate(sites):
            veth(s, c, f"ul{k}", f"u{i}")
            s.ip("addr", "add", f"10.9{4 * k + i}.0.1/24", "dev", f"ul{k}")
            c.ip("addr", "add", f"10.9{4 * k + i}.0.2/24", "dev", f"u{i}")
    return e, servers, sites


def cross_pings(c: Netns, n: Netns, record_property: Callable[[str, object], None],
                name: str, since: float) -> None:
    """Wait until ``c`` and ``n`` ping each other's overlay addresses, IPv4
    and IPv6, both ways; record how long that took from ``since``."""
    def all_answer() -> bool:
        a4, a6, b4, b6 = overlay4(c), overlay6(c), overlay4(n), overlay6(n)
        assert None not in (a4, a6, b4, b6)
        return all(pings(src, str(dst)) for src, dst in ((c, b4), (c, b6), (n, a4), (n, a6)))

    wait_for(all_answer, 120, f"the clients to ping each other ({name})", every=1)
    took = time.monotonic() - since
    print(f"{name}: the clients ping each other after {took:.1f} s")
    record_property(name, round(took, 1))


def where(ns: Netns, etcd: Etcd) -> dict[str, str]:
    """Which server etcd says each client is on."""
    with ns.entered():
        return {kv.key.rpartition("/")[2]: kv.value for kv in etcd.get_prefix("/lvn/at/")}


def loads(ns: Netns, etcd: Etcd) -> dict[str, int]:
    """Each live server's clients, as it last published them."""
    with ns.entered():
        return {kv.key.rpartition("/")[2]: json.loads(kv.value)["clients"]
                for kv in etcd.get_prefix("/lvn/server/")}


def revisions(ns: Netns, etcd: Etcd) -> dict[str, int]:
    """The etcd revision of each server's last publication."""
    with ns.entered():
        return {kv.key: kv.mod_revision for kv in etcd.get_prefix("/lvn/server/")}


def servers(ns: Netns, etcd: Etcd) -> set[str]:
    """The servers etcd holds for alive."""
    with ns.entered():
        return {kv.key.rpartition("/")[2] for kv in etcd.get_prefix("/lvn/server/")}


def lvn_cli(*args: str) -> str:
    """``lvn ARGS`` (no kernel needed): its output; fails on an error."""
    res = subprocess.run([sys.executable, "-m", "lvn", *args], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=scaled(30))
    assert res.returncode == 0, res.stderr
    return res.stdout


def tls_first_bytes(server: str, ca: Path, name: str) -> bytes:
    """Join ``server`` as ``name`` as far as TLS: what the server says first."""
    ctx = ssl.create_default_context(cafile=str(ca / "ca.pem"))
    ctx.load_cert_chain(ca / "issued" / f"{name}.pem", ca / "issued" / f"{name}.key")
    with socket.create_connection((server, DEFAULT_PORT), timeout=scaled(30)) as raw, \
            ctx.wrap_socket(raw, server_hostname="srv") as tls:
        data = b""
        while b"join another" not in data:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
        return data
