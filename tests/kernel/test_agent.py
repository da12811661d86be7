"""The agents end to end: a server, client A behind a masquerading NAT,
client B direct, certificates refused, forged datagrams, idle removal."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvn import pki
from lvn.netlink import Ipudp

from .netns import Netns, scaled, veth, wait_for

ROOT = Path(__file__).resolve().parents[2]

SERVER_CONF = """
config agent 'agent'
	option enabled '1'
	option role 'server'
	option state_dir '{state}'
config server 'server'
	option ca '{pki}/ca.pem'
	option cert '{pki}/issued/srv.pem'
	option key '{pki}/issued/srv.key'
	option crl '{pki}/crl.pem'
	option pool4 '10.77.0.0/24'
	option pool6 'fd77::/64'
	option mtu '1400'
	option keepalive '2'
	option idle_timeout '8'
"""

CLIENT_CONF = """
config agent 'agent'
	option enabled '1'
	option role 'client'
	option state_dir '{state}'
config client 'client'
	option server '{server}'
	option ifname '{ifname}'
	option ca '{ca}'
	option cert '{cert}'
	option key '{key}'
"""


def lvn(ns: Netns, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "lvn", "-n", ns.name, *args],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stderr
    return res.stdout


class Agents:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, name: str, ns: Netns, conf: str) -> None:
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        (d / "lvn").write_text(conf)
        log = d / "log"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(log, "ab") as out:
            proc = ns.popen(sys.executable, "-m", "lvn", "agent", "-c", str(d), "--state",
                            str(d / "static.json"), stdout=out, stderr=out, env=env)
        self.procs[name] = (proc, log)

    def log(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc, _ = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=scaled(20))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in self.procs:
            self.stop(name, signal.SIGKILL)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    a = Agents(tmp_path)
    yield a
    a.stop_all()


def overlay4(ns: Netns, ifname: str = "lvn0") -> str | None:
    with Ipudp(netns=ns.name) as k:
        if ifname not in {d.ifname for d in k.devices()}:
            return None
        addrs = [a for a in k.addresses(ifname) if a.startswith("10.77.")]
    return addrs[0].split("/")[0] if addrs else None


def test_server_and_clients_join_through_nat(netns: type[Netns], agents: Agents,
                                             tmp_path: Path) -> None:
    s, r, a, b = netns(), netns(), netns(), netns()
    veth(s, r, "ul0", "wan")
    veth(r, a, "lan", "ul0")
    veth(s, b, "ul1", "ul0")
    s.ip("addr", "add", "10.99.0.1/24", "dev", "ul0")
    s.ip("addr", "add", "10.98.0.1/24", "dev", "ul1")
    r.ip("addr", "add", "10.99.0.254/24", "dev", "wan")
    r.ip("addr", "add", "192.168.7.1/24", "dev", "lan")
    a.ip("addr", "add", "192.168.7.2/24", "dev", "ul0")
    a.ip("route", "add", "default", "via", "192.168.7.1")
    b.ip("addr", "add", "10.98.0.2/24", "dev", "ul0")
    r.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    r.run("nft", "add table ip nat; add chain ip nat post { type nat hook postrouting "
                 "priority 100 ; } ; add rule ip nat post oifname wan masquerade")

    ca = tmp_path / "pki"
    pki.init(ca)
    for name in ("srv", "node-a", "node-b"):
        pki.issue(ca, name)
    cert, key = pki.issue(ca, "evil")
    evil, evil_key = tmp_path / "evil.pem", tmp_path / "evil.key"
    evil.write_bytes(cert.read_bytes())
    evil_key.write_bytes(key.read_bytes())
    pki.revoke(ca, "evil")
    other = tmp_path / "other"
    pki.init(other)
    alien, alien_key = pki.issue(other, "node-x")
    old, old_key = pki.issue(ca, "old", days=1,
                             not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))

    agents.start("srv", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca))

    def client(name: str, ns: Netns, server: str, cert: Path, key: Path,
               ifname: str = "lvn0", cafile: Path = ca / "ca.pem") -> None:
        agents.start(name, ns, CLIENT_CONF.format(server=server, ifname=ifname, ca=cafile,
                                                  cert=cert, key=key,
                                                  state=tmp_path / name / "state"))

    client("a", a, "10.99.0.1", ca / "issued/node-a.pem", ca / "issued/node-a.key")
    client("b", b, "10.98.0.1", ca / "issued/node-b.pem", ca / "issued/node-b.key")
    wait_for(lambda: overlay4(a) is not None and overlay4(b) is not None, 90,
             "both clients to get their addresses")
    addr_a, addr_b = overlay4(a), overlay4(b)
    assert addr_a != addr_b
    # traffic: each client to the server, and A to B through the server
    a.run("ping", "-c", "3", "-i", "0.3", "-W", "3", "10.77.0.1")
    b.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    a.run("ping", "-c", "2", "-i", "0.3", "-W", "3", str(addr_b))
    a.run("ping", "-6", "-c", "2", "-i", "0.3", "-W", "3", "fd77::1")
    # the server's tunnel for A points at the NAT's public side
    with Ipudp(netns=s.name) as k:
        remotes = {t.remote for t in k.tunnels("lvn0")}
    assert remotes == {"10.99.0.254", "10.98.0.2"}, remotes
    # lvn status on both sides
    status = json.loads(lvn(s, "-j", "status", "-c", str(tmp_path / "srv")))
    peers = {p["name"]: p for p in status["peers"]}
    assert status["role"] == "server" and set(peers) == {"node-a", "node-b"}
    assert peers["node-a"]["state"] == "up" and peers["node-a"]["endpoint"][0] == "10.99.0.254"
    assert peers["node-a"]["rx_packets"] >= 3
    text = lvn(a, "status", "-c", str(tmp_path / "a"))
    assert "role client" in text and f"{addr_a}/24" in text and ": up," in text

    # certificates that must be refused: revoked, wrong CA, expired
    client("evil", b, "10.98.0.1", evil, evil_key, ifname="lve")
    client("alien", b, "10.98.0.1", alien, alien_key, ifname="lvx")
    client("old", b, "10.98.0.1", old, old_key, ifname="lvo")
    wait_for(lambda: all(w in agents.log("srv") for w in ("revoked", "unknown issuer",
                                                          "expired")), 60,
             "the server to refuse three certificates")
    for name, ifname in (("evil", "lve"), ("alien", "lvx"), ("old", "lvo")):
        assert overlay4(b, ifname) is None, name
    with Ipudp(netns=s.name) as k:
        assert len(k.tunnels("lvn0")) == 2

    # forged keepalives from the underlay move nothing
    with b.entered():
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with attacker:
        for i in range(50):
            attacker.sendto(b"\xff\xff\xff\xff\x02" + os.urandom(8) + i.to_bytes(8, "big")
                            + os.urandom(16), ("10.98.0.1", 50000))
    a.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    with Ipudp(netns=s.name) as k:
        assert {t.remote for t in k.tunnels("lvn0")} == remotes

    # NAT rebinding: new public port for A; an authenticated keepalive moves the tunnel
    # (UDP only: the NAT keeps the TLS connection's TCP mapping)
    r.run("nft", "insert rule ip nat post oifname wan meta l4proto udp masquerade "
                 "to :61000-61099")
    r.run("conntrack", "-D", "-p", "udp", check=False)

    def a_port() -> int:
        with Ipudp(netns=s.name) as k:
            return next(t.remote_port for t in k.tunnels("lvn0") if t.remote == "10.99.0.254")

    wait_for(lambda: 61000 <= a_port() <= 61099, 2 * 2 + 5,
             "the server to follow A's new NAT port within two keepalives")
    a.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    assert "authenticated as 'node-a'" in agents.log("srv")
    assert agents.log("srv").count("authenticated as 'node-a'") == 1  # no reconnect

    # server restart: clients come back by themselves, same addresses, tunnels adopted
    agents.stop("srv")
    agents.start("srv2", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca))
    wait_for(lambda: agents.log("srv2").count("tunnel up") >= 2, 60,
             "A and B to rejoin the restarted server")
    assert "authenticated as 'node-a'" in agents.log("srv2")
    a.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    assert overlay4(a) == addr_a
    agents.procs["srv"] = agents.procs["srv2"]

    # B gone: its tunnel is removed after the idle timeout; a rejoin gets the same address
    agents.stop("b", signal.SIGKILL)
    wait_for(lambda: len(Ipudp(netns=s.name).tunnels("lvn0")) == 1, 60,
             "the idle tunnel of B to be removed")
    assert "idle, tunnel" in agents.log("srv")
    client("b2", b, "10.98.0.1", ca / "issued/node-b.pem", ca / "issued/node-b.key")
    wait_for(lambda: len(Ipudp(netns=s.name).tunnels("lvn0")) == 2, 60, "B to rejoin")
    assert overlay4(b) == addr_b
