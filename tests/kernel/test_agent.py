"""The agents end to end: a server, client A behind a masquerading NAT,
client B direct, certificates refused, forged datagrams, idle removal."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import upy

from lvn import capabilities, config, controlwire, nodecontrol, pki, ubus_api
from lvn.netlink import Ipudp

from .netns import Netns, scaled, veth, wait_for

# userspace scenarios with both clients: the newest kernel's VM runs them
# (docs/testing.md); the node's raw netlink meets the older kernel's module
# in test_apply.py, which both VMs run
pytestmark = pytest.mark.newest

# Waits that include an agent's start (CPython importing pyOpenSSL, cryptography
# and pyroute2 over 9p under TCG) have ceilings of minutes: they end as soon as
# the event is seen, and a host busy with other VMs must not fail them.

ROOT = Path(__file__).resolve().parents[2]
# the node runs on OpenWrt 24.10's own MicroPython (1.23.0, built by scripts/setup-deps.sh)
MICROPYTHON = str(upy.node())
CLIENTS = ["cpython", "micropython"]


def node_code() -> tuple[str, str]:
    """Where the node's code comes from, and its heap: the byte code of the
    lvn package that the router tests install (LVN_IPK_DIR, built before the
    boot) in the heap its ``lvn-node`` gives it, as a router runs it; else
    the sources, which MicroPython compiles at import (a larger heap)."""
    ipk = Path(os.environ.get("LVN_IPK_DIR", "/nonexistent")) / "lvn_0.1.0-1_all.ipk"
    if not ipk.exists():
        return str(ROOT), "1M"
    dest = Path(tempfile.mkdtemp(prefix="lvn-node-code-"))
    with tarfile.open(ipk) as outer:
        data = outer.extractfile("./data.tar.gz")
        assert data is not None
        with tarfile.open(fileobj=io.BytesIO(data.read())) as files:
            files.extractall(dest)  # noqa: S202 (our own package)
    wrapper = (ROOT / "files/usr/sbin/lvn-node").read_text()
    heap = re.search(r"heapsize=(\w+)", wrapper)
    assert heap is not None, "files/usr/sbin/lvn-node gives no heap size"
    return str(dest / "usr/lib/lvn/mpy"), heap.group(1)


NODE_CODE, NODE_HEAP = node_code()

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
{extra}"""

CLIENT_CONF = """
config agent 'agent'
	option enabled '1'
	option role 'client'
	option state_dir '{state}'
config client 'client'
	option server '{server}'
	option server_name 'srv'
	option ifname '{ifname}'
	option ca '{ca}'
	option cert '{cert}'
	option key '{key}'
{extra}"""


def lvn(ns: Netns, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "lvn", "-n", ns.name, *args],
                         capture_output=True, text=True, timeout=scaled(300),
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stderr
    return res.stdout


class Agents:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
        # MicroPython agents (netns, environment): stopped with --release first
        self.nodes: dict[str, tuple[Netns, dict[str, str]]] = {}

    def start(self, name: str, ns: Netns, conf: str,
              env: dict[str, str] | None = None, micropython: bool = False,
              args: tuple[str, ...] = (), prefix: tuple[str, ...] = ()) -> None:
        """An agent with config ``conf``; ``micropython``: the node's client
        agent (lvn.node) under MicroPython instead of CPython's lvn agent;
        ``args`` after the CPython agent's, ``prefix`` before the command
        (e.g. prlimit)."""
        d = self.tmp / name
        d.mkdir(exist_ok=True)
        (d / "lvn").write_text(conf)
        log = d / "log"
        env = dict(os.environ, PYTHONPATH=str(ROOT), MICROPYPATH=f".frozen:{NODE_CODE}",
                   **(env or {}))
        if micropython:
            # the package's byte code in the package's heap (node_code())
            cmd = [MICROPYTHON, "-X", f"heapsize={NODE_HEAP}", "-m", "lvn.node", "--control",
                   str(d / "control.sock"), str(d / "lvn")]
        else:
            cmd = [sys.executable, "-m", "lvn", "agent", "-c", str(d), "--state",
                   str(d / "static.json"), *args]
        with open(log, "ab") as out:
            proc = ns.popen(*prefix, *cmd, stdout=out, stderr=out, env=env)
        self.procs[name] = (proc, log)
        if micropython:
            self.nodes[name] = (ns, env)

    def log(self, name: str) -> str:
        return self.procs[name][1].read_text(errors="replace")

    def node_cli(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``lvn-node ARGS`` for the MicroPython node ``name`` (its control socket)."""
        ns, env = self.nodes[name]
        return subprocess.run(["ip", "netns", "exec", ns.name, MICROPYTHON, "-m", "lvn.node",
                               *args, "--control", str(self.tmp / name / "control.sock")],
                              capture_output=True, text=True, env=env, timeout=scaled(60))

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop an agent as its init script does: a MicroPython node hands its
        data port back first (``--release``), a CPython agent on SIGTERM."""
        proc, log = self.procs[name]
        if sig == signal.SIGTERM and name in self.nodes and proc.poll() is None:
            ns, env = self.nodes[name]
            with open(log, "ab") as out:
                ns.popen(MICROPYTHON, "-m", "lvn.node", "--release", str(self.tmp / name / "lvn"),
                         stdout=out, stderr=out, env=env).wait(timeout=scaled(60))
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



def check_node_control(agents: Agents, name: str, ns: Netns, ifname: str, server: str) -> None:
    """The lvn ubus object of a MicroPython node (what rpcd's plugin forwards to):
    status with the tunnel's counters, a refused reload that keeps the tunnel,
    validate as the CPython service answers it, the methods that edit static
    tunnels answered NOT_SUPPORTED with the package named."""
    conf = agents.tmp / name / "lvn"
    res = agents.node_cli(name, "status")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["role"] == "client" and st["config"]["valid"] and st["devices"] == 1
    (tunnel,) = st["tunnels"]
    assert tunnel["ifname"] == ifname and tunnel["remote"] == server and tunnel["id"] == 0
    assert tunnel["stats"]["tx_packets"] >= 3 and tunnel["stats"]["rx_packets"] >= 3
    assert st["peers"][0]["state"] == "up"
    good = conf.read_text()
    conf.write_text(good.replace("\toption server_name", "\toption server_port 'x'\n"
                                 "\toption server_name"))
    res = agents.node_cli(name, "reload")
    assert res.returncode == 1, res
    assert "lvn.client.server_port: expected an integer 1-65535, got 'x'" in res.stderr, res
    ns.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    st = json.loads(agents.node_cli(name, "status").stdout)
    assert st["config"]["valid"] is False and "server_port" in st["config"]["errors"][0]
    conf.write_text(good)
    res = agents.node_cli(name, "reload")
    assert res.returncode == 0 and json.loads(res.stdout) == {"ok": True, "changes": []}
    control = str(conf.parent / "control.sock")
    status, data = nodecontrol.call(control, "tunnel_add", {"name": "x", "tunnel": {}})
    assert status == controlwire.NOT_SUPPORTED and "lvn-server" in data["error"]
    # LuCI's Save asks first: the node checks with the CPython service's schema
    status, data = nodecontrol.call(control, "validate", {"sections": [
        {".type": "tunnel", ".name": "t", "ifname": "lvn7", "remote": "10.0.0.300"}]})
    assert (status, data) == (controlwire.OK, {"valid": False, "errors": [
        "lvn.t.remote: '10.0.0.300' is not an IPv4 or IPv6 address"]})
    check_node_answers_as_the_service(agents, name, ns, conf, good)


VOLATILE = ("stats", "last_rx_ms", "last_tx_ms")


def check_node_answers_as_the_service(agents: Agents, name: str, ns: Netns, conf: Path,
                                      good: str) -> None:
    """For the same kernel state and file, the node's status and tunnels
    replies are the CPython service's (lvn.ubus_api from the same devices):
    every ipudp device counted and listed, a static tunnel with its section
    (the node once listed its agent's device only, as FIXED, unnamed)."""
    conf.write_text(good + "\nconfig tunnel 'side'\n\toption ifname 'lvm9'\n"
                    "\toption mode 'multi'\n\toption port '50019'\n"
                    "\toption remote '192.0.2.9'\n\toption remote_port '50019'\n")
    try:
        node_env = agents.nodes[name][1]
        res = subprocess.run(["ip", "netns", "exec", ns.name, MICROPYTHON, "-m", "lvn.node",
                              "apply", "--state", str(conf.parent / "static.json"), str(conf)],
                             capture_output=True, text=True, env=node_env, timeout=scaled(60))
        assert res.returncode == 0 and "set tunnel lvm9 1 192.0.2.9" in res.stdout, res
        assert agents.node_cli(name, "reload").returncode == 0
        control = str(conf.parent / "control.sock")
        _, node_status = nodecontrol.call(control, "status", {})
        _, node_tunnels = nodecontrol.call(control, "tunnels", {})
        _, node_peers = nodecontrol.call(control, "peers", {})
        with Ipudp(netns=ns.name) as k:
            snap = ubus_api.Snapshot(
                confdir=str(conf.parent), role="client", agent_enabled=True,
                last_reload=node_status["last_reload"], devices=tuple(k.devices()),
                static=ubus_api.static_names(config.build(config.load(str(conf.parent)),
                                                          check_files=False)),
                peers=tuple(node_peers["peers"]))
        assert node_status == ubus_api.status(snap)
        assert node_status["devices"] == 2 and node_status["tunnels"] == 2

        def steady(reply: dict[str, Any]) -> list[dict[str, Any]]:
            return [{k: v for k, v in t.items() if k not in VOLATILE} for t in reply["tunnels"]]
        assert steady(node_tunnels) == steady(ubus_api.tunnels(snap))
        side = [t for t in node_tunnels["tunnels"] if t["ifname"] == "lvm9"]
        assert [(t["mode"], t["static"], t["id"]) for t in side] == [("multi", "side", 1)]
        _, only = nodecontrol.call(control, "tunnels", {"ifname": "lvm9"})
        assert steady(only) == steady({"tunnels": side})
    finally:
        conf.write_text(good)
        subprocess.run(["ip", "netns", "exec", ns.name, MICROPYTHON, "-m", "lvn.node",
                        "apply", "--state", str(conf.parent / "static.json"), str(conf)],
                       capture_output=True, env=agents.nodes[name][1], timeout=scaled(60))
        agents.node_cli(name, "reload")


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    a = Agents(tmp_path)
    yield a
    a.stop_all()
    for name in a.procs:  # pytest shows this output of a failed test
        print(f"--- log of {name}:\n{a.log(name)}")


def forwarding(ns: Netns) -> None:
    """What /etc/init.d/lvn does for a server: it routes between clients."""
    ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")


def overlay4(ns: Netns, ifname: str = "lvn0", pool: str = "10.77.") -> str | None:
    """The client's leased address in the pool (None before it has one)."""
    with Ipudp(netns=ns.name) as k:
        if ifname not in {d.ifname for d in k.devices()}:
            return None
        addrs = [a for a in k.addresses(ifname) if a.startswith(pool)]
    return addrs[0].split("/")[0] if addrs else None


def overlay6(ns: Netns, ifname: str = "lvn0") -> str | None:
    return overlay4(ns, ifname, pool="fd77:")


def nat_site(netns: type[Netns]) -> tuple[Netns, Netns, Netns, Netns]:
    """Server S (10.99.0.1 towards the NAT, 10.98.0.1 towards B), router R
    masquerading client A's LAN (192.168.7.0/24) as 10.99.0.254, client B
    direct (10.98.0.2)."""
    s, r, a, b = netns(), netns(), netns(), netns()
    veth(s, r, "ul0", "wan")
    veth(r, a, "lan", "ul0")
    veth(s, b, "ul1", "ul0")
    forwarding(s)
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
    return s, r, a, b


@pytest.mark.parametrize("kind", CLIENTS)
def test_server_and_clients_join_through_nat(netns: type[Netns], agents: Agents,
                                             tmp_path: Path, kind: str) -> None:
    """Against the CPython server, with CPython clients or MicroPython nodes."""
    s, r, a, b = nat_site(netns)

    ca = site_pki(tmp_path, "node-a", "node-b")
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

    agents.start("srv", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca, extra=""))

    def client(name: str, ns: Netns, server: str, cert: Path, key: Path,
               ifname: str = "lvn0", cafile: Path = ca / "ca.pem") -> None:
        agents.start(name, ns, CLIENT_CONF.format(server=server, ifname=ifname, ca=cafile,
                                                  cert=cert, key=key, extra="",
                                                  state=tmp_path / name / "state"),
                     micropython=kind == "micropython")

    client("a", a, "10.99.0.1", ca / "issued/node-a.pem", ca / "issued/node-a.key")
    client("b", b, "10.98.0.1", ca / "issued/node-b.pem", ca / "issued/node-b.key")
    wait_for(lambda: overlay4(a) is not None and overlay4(b) is not None, 300,
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

    if kind == "micropython":
        check_node_control(agents, "a", a, ifname="lvn0", server="10.99.0.1")

    # certificates that must be refused: revoked, wrong CA, expired
    client("evil", b, "10.98.0.1", evil, evil_key, ifname="lve")
    client("alien", b, "10.98.0.1", alien, alien_key, ifname="lvx")
    client("old", b, "10.98.0.1", old, old_key, ifname="lvo")
    wait_for(lambda: all(w in agents.log("srv") for w in ("revoked", "unknown issuer",
                                                          "expired")), 600,
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
    agents.start("srv2", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca, extra=""))
    wait_for(lambda: agents.log("srv2").count("tunnel up") >= 2, 240,
             "A and B to rejoin the restarted server")
    assert "authenticated as 'node-a'" in agents.log("srv2")
    a.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    assert overlay4(a) == addr_a
    agents.procs["srv"] = agents.procs["srv2"]

    # B gone: its tunnel is removed after the idle timeout; a rejoin gets the same address
    agents.stop("b", signal.SIGKILL)
    wait_for(lambda: len(Ipudp(netns=s.name).tunnels("lvn0")) == 1, 240,
             "the idle tunnel of B to be removed")
    assert "idle, tunnel" in agents.log("srv")
    client("b2", b, "10.98.0.1", ca / "issued/node-b.pem", ca / "issued/node-b.key")
    wait_for(lambda: len(Ipudp(netns=s.name).tunnels("lvn0")) == 2, 240, "B to rejoin")
    # (the server sets its tunnel before B has its lease on its device)
    wait_for(lambda: overlay4(b) is not None, 120, "B's address")
    assert overlay4(b) == addr_b


FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def odd_certificates(ca: Path, tmp: Path) -> dict[str, tuple[Path, Path]]:
    """Certificates the server must refuse beyond revoked/expired/wrong CA:
    a self-signed one, and one of the right CA for code signing only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca / "ca.key").read_bytes(), None)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    out = {}
    for name, signer in (("selfish", None), ("signer", ca_key)):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(subject if signer is None else ca_cert.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)))
        if signer is not None:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                                critical=False)
        cert = b.sign(signer or key, hashes.SHA256())  # type: ignore[arg-type]
        pem, kp = tmp / f"{name}.pem", tmp / f"{name}.key"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        out[name] = (pem, kp)
    return out


def captured_control_datagram(ns: Netns, dev: str, timeout: float) -> bytes:
    """The first authenticated datagram (0xFFFFFFFF, 37 bytes) seen on ``dev``."""
    with ns.entered():
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    with raw:
        raw.bind((dev, 0))
        raw.settimeout(scaled(timeout))
        while True:
            pkt = raw.recv(2048)
            ihl = (pkt[0] & 0xF) * 4
            if pkt[9] == 17 and int.from_bytes(pkt[ihl + 2:ihl + 4], "big") == 50000:
                payload = pkt[ihl + 8:]
                if len(payload) == 37 and payload[:4] == b"\xff" * 4:
                    return payload


def site_pki(tmp_path: Path, *nodes: str) -> Path:
    """A CA under ``tmp_path``/pki with the server "srv" and ``nodes``."""
    ca = tmp_path / "pki"
    pki.init(ca)
    pki.issue(ca, "srv", role="server")
    for name in nodes:
        pki.issue(ca, name, role="node")
    return ca


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


@pytest.mark.parametrize("kind", CLIENTS)
def test_field_realities(netns: type[Netns], agents: Agents, tmp_path: Path, kind: str) -> None:
    """Clock in 1970, hooks, announced MTU, certificate matrix, replayed
    keepalive, connection flood, client restart without loss, reload; the
    clients are CPython agents or MicroPython nodes."""
    s, c, x = netns(), netns(), netns()
    veth(s, c, "ul0", "ul0")
    veth(s, x, "ul1", "ul0")
    s.ip("addr", "add", "10.98.0.1/24", "dev", "ul0")
    s.ip("addr", "add", "10.97.0.1/24", "dev", "ul1")
    c.ip("addr", "add", "10.98.0.2/24", "dev", "ul0")
    x.ip("addr", "add", "10.97.0.66/24", "dev", "ul0")
    ca = site_pki(tmp_path, "node-c")
    odd = odd_certificates(ca, tmp_path)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\nf="{hooks}/$LVN_ROLE-$1-$LVN_PEER"\n'
                    '{ env | grep ^LVN_; sed -n "s/^CapBnd:\\t/CAPBND=/p" /proc/self/status; } '
                    '> "$f.tmp" && mv "$f.tmp" "$f"\n')
    hook.chmod(0o755)
    server_extra = (f"\toption up_hook '{hook}'\n\toption down_hook '{hook}'\n"
                    "\toption conn_rate '1'\n\toption conn_burst '5'\n")
    # hooks only from the hooks directory (/etc/lvn/hooks.d; here the test's)
    hooks_env = {"LVN_HOOKS_DIR": str(tmp_path)}
    agents.start("srv", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca,
                                              extra=server_extra).replace("'1400'", "'1380'"),
                 env=hooks_env)

    def client(name: str, ns: Netns, cert: Path, key: Path, ifname: str = "lvn0",
               extra: str = "", env: dict[str, str] | None = None) -> None:
        agents.start(name, ns, CLIENT_CONF.format(
            server="10.98.0.1" if ns is c else "10.97.0.1", ifname=ifname,
            ca=ca / "ca.pem", cert=cert, key=key, extra=extra,
            state=tmp_path / name / "state"), env=env, micropython=kind == "micropython")

    # node C boots with its clock in 1970 (libfaketime for its agent alone:
    # the server's clock must stay right), waits, joins once the clock is set
    clock = tmp_path / "clock"
    clock.write_text("@1970-01-01 00:00:00\n")
    fake = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": str(clock),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1", **hooks_env}
    c_extra = f"\toption up_hook '{hook}'\n\toption down_hook '{hook}'\n"
    client("c", c, ca / "issued/node-c.pem", ca / "issued/node-c.key", extra=c_extra, env=fake)
    wait_for(lambda: "waiting for a valid clock" in agents.log("c"), 180, "the clock wait")
    assert "1970-01-01" in agents.log("c") and "connecting" not in agents.log("c")
    clock.write_text("+0\n")  # NTP has run
    wait_for(lambda: "tunnel up" in agents.log("c"), 240, "C to join once the clock is valid")
    assert "the clock is valid now" in agents.log("c")
    c.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    # the server's MTU is applied on the client; hooks ran on both sides
    with Ipudp(netns=c.name) as k:
        assert k.link("lvn0")[0] == 1380
    wait_for(lambda: (hooks / "server-up-node-c").exists() and (hooks / "client-up-srv").exists(),
             10, "the up hooks")
    up = env_file(hooks / "server-up-node-c")
    addr_c = overlay4(c)
    assert up["LVN_EVENT"] == "up" and up["LVN_IFNAME"] == "lvn0"
    assert up["LVN_ENDPOINT_ADDRESS"] == "10.98.0.2" and up["LVN_ADDRESS4"] == f"{addr_c}/24"
    assert env_file(hooks / "client-up-srv")["LVN_ENDPOINT_ADDRESS"] == "10.98.0.1"
    # the agents and their hooks hold net_admin and net_bind_service only
    # (lvn/capabilities.py), in the bounding set too
    for f in ("server-up-node-c", "client-up-srv"):
        assert env_file(hooks / f)["CAPBND"] == f"{capabilities.keep_mask():016x}", f

    # certificate matrix, the rest: self-signed, wrong key usage, wrong identity
    client("selfish", x, *odd["selfish"], ifname="lvs")
    client("signer", x, *odd["signer"], ifname="lvk")
    client("imposter", x, ca / "issued/node-c.pem", ca / "issued/node-c.key", ifname="lvi",
           extra="\toption server_name 'other'\n")
    wait_for(lambda: "self-signed" in agents.log("srv")
             and "unsuitable purpose" in agents.log("srv")
             # CPython: "... is for 'srv', not 'other'"; MicroPython: "... not for 'other'"
             and re.search(r"not (for )?'other'", agents.log("imposter")) is not None, 600,
             "three refusals (self-signed, key usage, server identity)")
    for name in ("selfish", "signer", "imposter"):
        agents.stop(name, signal.SIGKILL)
    with Ipudp(netns=s.name) as k:
        ((remote, port),) = {(t.remote, t.remote_port) for t in k.tunnels("lvn0")}
    assert remote == "10.98.0.2"

    # a captured keepalive replayed by another host moves nothing
    payload = captured_control_datagram(s, "ul0", 10)
    with x.entered():
        attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with attacker:
        for _ in range(5):
            attacker.sendto(payload, ("10.97.0.1", 50000))
    c.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    with Ipudp(netns=s.name) as k:
        assert {(t.remote, t.remote_port) for t in k.tunnels("lvn0")} == {(remote, port)}

    # a connection flood from one address is limited, not banned
    conns = []
    with x.entered():
        for _ in range(30):
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.settimeout(scaled(5))
            try:
                t.connect(("10.97.0.1", 50000))
            except OSError:
                pass
            conns.append(t)
    wait_for(lambda: "rate limit: closed" in agents.log("srv"), 20, "the rate limit")
    for t in conns:
        t.close()

    # the client agent restarts: a concurrent ping loses nothing (adoption)
    ping = c.popen("ping", "-c", "300", "-i", "0.05", "-W", "2", "10.77.0.1",
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # (the first agent may have joined more than once by now: the imposter
    # above holds C's certificate, and its sessions replace C's)
    ups = agents.log("c").count("tunnel up")
    agents.stop("c")
    client("c", c, ca / "issued/node-c.pem", ca / "issued/node-c.key", extra=c_extra,
           env=hooks_env)
    wait_for(lambda: agents.log("c").count("tunnel up") > ups, 240, "C's agent to rejoin")
    out = ping.communicate(timeout=scaled(60))[0].decode()
    assert "adopting lvn0" in agents.log("c")
    assert " 0% packet loss" in out, out
    with Ipudp(netns=s.name) as k:
        assert {(t.remote, t.remote_port) for t in k.tunnels("lvn0")} == {(remote, port)}

    # a reload with a changed MTU applies in place: no session is dropped
    joined = agents.log("srv").count("authenticated as 'node-c'")
    conf = tmp_path / "srv" / "lvn"
    conf.write_text(conf.read_text().replace("'1380'", "'1360'"))
    agents.procs["srv"][0].send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded in place: mtu" in agents.log("srv"), 20, "the reload")
    with Ipudp(netns=s.name) as k:
        assert k.link("lvn0")[0] == 1360
    c.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
    assert agents.log("srv").count("authenticated as 'node-c'") == joined

    # C gone for good: after the idle timeout the down hook runs on the server
    agents.stop("c", signal.SIGKILL)
    wait_for(lambda: (hooks / "server-down-node-c").exists(), 180, "the server's down hook")
    assert env_file(hooks / "server-down-node-c")["LVN_ADDRESS4"] == f"{addr_c}/24"
