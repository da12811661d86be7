"""The everyday faults of a community network, end to end (issue 27's suite):
a spoofer of the server's address, wall clocks stepping an hour, a server
that falls silent without FIN, clients that lose power and rejoin before
their old session timed out, a revocation during a session, a revocation
list that ages, expires and is renewed.  A CPython client behind a
masquerading NAT and a MicroPython node, side by side, against one server.

Every wait ends on an event; the ceilings are generous (scaled on the debug
kernel) so a busy host does not fail them.  The times measured are printed
(pytest shows them with -s and in the log of a failure)."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from lvn import controlwire, nodecontrol, pki
from lvn.model import Tunnel
from lvn.netlink import Ipudp

from . import packets
from .netns import Netns, veth, wait_for
from .router import ROOT
from .test_agent import CLIENT_CONF, FAKETIME, Agents, agents, nat_site, overlay4, site_pki  # noqa: F401

pytestmark = pytest.mark.oldest

KEEPALIVE, IDLE, DEAD_AFTER = 2, 12, 3

SERVER_CONF = f"""
config agent 'agent'
	option enabled '1'
	option role 'server'
	option state_dir '{{state}}'
config server 'server'
	option ca '{{pki}}/ca.pem'
	option cert '{{pki}}/issued/srv.pem'
	option key '{{pki}}/issued/srv.key'
	option crl '{{pki}}/crl.pem'
	option pool4 '10.77.0.0/24'
	option pool6 'fd77::/64'
	option keepalive '{KEEPALIVE}'
	option idle_timeout '{IDLE}'
"""

DEAD_TEXT = f"answered none of the last {DEAD_AFTER} keepalives"


def blackhole(ns: Netns, on: bool) -> None:
    """Drop every packet in and out of ``ns``'s underlay (the host lost power,
    or a NAT dropped the binding: no FIN, no RST)."""
    if on:
        ns.run("nft", "add table inet bh; add chain inet bh in { type filter hook input "
                      "priority -300 ; policy drop ; } ; add chain inet bh out { type filter "
                      "hook output priority -300 ; policy drop ; } ; add rule inet bh in "
                      "iifname lo accept ; add rule inet bh out oifname lo accept")
    else:
        ns.run("nft", "delete table inet bh")


def server_tunnels(s: Netns) -> dict[int, str]:
    with Ipudp(netns=s.name) as k:
        return {t.id: t.remote for t in k.tunnels("lvn0")}


def server_tunnels_full(s: Netns) -> list[Tunnel]:
    with Ipudp(netns=s.name) as k:
        return list(k.tunnels("lvn0"))


def rx_spoofed(ns: Netns) -> int:
    with Ipudp(netns=ns.name) as k:
        return int(k.device("lvn0").drops.rx_spoofed)


def pings(ns: Netns, dest: str = "10.77.0.1") -> bool:
    return "0 received" not in ns.run("ping", "-c", "2", "-i", "0.3", "-W", "2", dest,
                                      check=False)


def test_silent_server_power_loss_and_revocation(netns: type[Netns], agents: Agents,  # noqa: F811
                                             tmp_path: Path) -> None:
    s, r, a, b = nat_site(netns)
    ca = site_pki(tmp_path, "node-a", "node-b", "node-d")
    # every agent's wall clock can be stepped (libfaketime; monotonic clocks are real)
    clock = tmp_path / "clock"
    clock.write_text("+0\n")
    fake = {"LD_PRELOAD": FAKETIME, "FAKETIME_TIMESTAMP_FILE": str(clock),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    agents.start("srv", s, SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca), env=fake)

    def client(name: str, ns: Netns, server: str, cert: str, micropython: bool) -> None:
        agents.start(name, ns, CLIENT_CONF.format(
            server=server, ifname="lvn0", ca=ca / "ca.pem", cert=ca / f"issued/{cert}.pem",
            key=ca / f"issued/{cert}.key", state=tmp_path / name / "state",
            extra=f"\toption dead_after '{DEAD_AFTER}'\n"), micropython=micropython,
            env=fake)

    # A: CPython behind the NAT; B: the MicroPython node, direct
    clients = {"a": (a, "10.99.0.1", "node-a", False), "b": (b, "10.98.0.1", "node-b", True)}
    for name, (ns, server, cert, upy) in clients.items():
        client(name, ns, server, cert, upy)
    wait_for(lambda: overlay4(a) is not None and overlay4(b) is not None, 300,
             "both clients to join")
    assert pings(a) and pings(b)
    figures: dict[str, object] = {}

    # 0. a spoofer of the server's address and data port (no BCP 38 on the
    # underlay) gets no packet with a source outside the overlay delivered:
    # the clients accept only the pools the server sent in LEASE
    b_port = next(t.remote_port for t in server_tunnels_full(s) if t.remote == "10.98.0.2")
    with Ipudp(netns=b.name) as k:
        before = k.device("lvn0").drops.rx_spoofed
    with s.entered():
        spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with spoofer:
        spoofer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        spoofer.bind(("10.98.0.1", 50000))
        for _ in range(5):
            spoofer.sendto(packets.ipv4_udp("192.0.2.99", str(overlay4(b)), 4000, 9, b"x"),
                           ("10.98.0.2", b_port))
    wait_for(lambda: rx_spoofed(b) >= before + 5, 60, "the spoofed packets to be dropped")
    assert pings(b)  # from the overlay: delivered

    # 0b. the wall clocks of server and clients step an hour back, then
    # forward (NTP after a wrong start): timers run on monotonic clocks, so
    # keepalives go on and nothing expires or rejoins (the node's used
    # the wall clock: a step back froze its keepalives)
    for step in ("-3600", "+3600"):
        joins = {n: agents.log(n).count("tunnel up") for n in clients}
        clock.write_text(step + "\n")
        t0 = time.monotonic()
        wait_for(lambda t0=t0: time.monotonic() - t0 > IDLE + 2 * KEEPALIVE, IDLE + 60,
                 f"an idle timeout to pass with the clocks stepped {step} s")
        assert pings(a) and pings(b)
        assert {n: agents.log(n).count("tunnel up") for n in clients} == joins, step
        assert DEAD_TEXT not in agents.log("a") + agents.log("b"), step
    clock.write_text("+0\n")

    # 1. the server falls silent (no FIN): both clients notice within a bound
    # of keepalive periods, and join again once it answers
    blackhole(s, True)
    t0 = time.monotonic()
    wait_for(lambda: all(DEAD_TEXT in agents.log(n) for n in clients), 240,
             "both clients to declare the silent server dead")
    figures["detect_silent_server_s"] = round(time.monotonic() - t0, 1)
    # while the server stays silent the node keeps trying to join; its lvn
    # ubus object answers all along (its connect and TLS handshake used to
    # block the loop for up to 30 s, past rpcd's 3 s deadline): calls go
    # on until the node has given up one more join attempt
    control = str(tmp_path / "b" / "control.sock")
    attempts = agents.log("b").count("retrying in")
    slowest = 0.0

    def answered_through_an_attempt() -> bool:
        nonlocal slowest
        t = time.monotonic()
        status, data = nodecontrol.call(control, "status")  # 5 s socket timeout
        slowest = max(slowest, time.monotonic() - t)
        assert status == controlwire.OK and data["role"] == "client", data
        return agents.log("b").count("retrying in") > attempts
    wait_for(answered_through_an_attempt, 240, "the node to retry while answering ubus")
    figures["node_status_slowest_answer_s"] = round(slowest, 2)
    blackhole(s, False)
    t1 = time.monotonic()
    # (the kernel tunnels outlive the sessions: pings may pass before the rejoin)
    wait_for(lambda: all(agents.log(n).count("tunnel up") >= 2 for n in clients), 300,
             "both clients to join again once the server answers")
    figures["rejoin_after_server_answers_s"] = round(time.monotonic() - t1, 1)
    assert pings(a) and pings(b)

    # 2. both clients lose power (no FIN reaches the server) and come back,
    # from another address, before their old sessions time out: the new
    # sessions replace the old ones, whose expiry must not remove the
    # tunnels the new ones use
    for name, (ns, *_rest) in clients.items():
        ns.run("nft", "add table inet off; add chain inet off out { type filter hook output "
                      "priority -300 ; policy drop ; }")
        agents.stop(name, signal.SIGKILL)
    killed = time.monotonic()
    seen = len(agents.log("srv"))
    a2, b2 = netns(), netns()
    veth(r, a2, "lan2", "ul0")
    r.ip("addr", "add", "192.168.8.1/24", "dev", "lan2")
    a2.ip("addr", "add", "192.168.8.2/24", "dev", "ul0")
    a2.ip("route", "add", "default", "via", "192.168.8.1")
    veth(s, b2, "ul2", "ul0")
    s.ip("addr", "add", "10.97.0.1/24", "dev", "ul2")
    b2.ip("addr", "add", "10.97.0.2/24", "dev", "ul0")
    client("a2", a2, "10.99.0.1", "node-a", False)
    client("b2", b2, "10.97.0.1", "node-b", True)
    back: dict[str, float] = {}  # a2: CPython behind the NAT, b2: the node
    first_try: dict[str, float] = {}  # when each began to connect (its start-up before)

    def both_back() -> bool:
        for name, ns in (("a2", a2), ("b2", b2)):
            if name not in first_try and "connecting to" in agents.log(name):
                first_try[name] = round(time.monotonic() - killed, 1)
            if name not in back and overlay4(ns) is not None:
                back[name] = round(time.monotonic() - killed, 1)
        return len(back) == 2

    wait_for(both_back, 300, "the rebooted clients to join")
    figures["rejoin_after_power_loss_s"] = max(back.values())
    figures["rejoin_after_power_loss_s_each"] = back
    figures["first_try_after_power_loss_s"] = first_try
    # each rebooted client's tries (a slow rejoin: start-up, or back-off?)
    figures["connects_after_power_loss"] = {n: agents.log(n).count("connecting to")
                                            for n in ("a2", "b2")}
    assert pings(a2) and pings(b2)
    # each old session was replaced by the new one, or (a client that took
    # longer to start than the idle timeout) expired before it came back
    since = agents.log("srv")[seen:]
    for name in ("node-a", "node-b"):
        expired = since.find(f"'{name}': session closed: idle")
        assert f"'{name}': session replaced" in since or \
            0 <= expired < since.rfind(f"authenticated as '{name}'"), (name, since)
    figures["replaced"] = since.count("session replaced")
    # past the old sessions' idle timeout: the tunnels are still there
    wait_for(lambda: time.monotonic() - killed > IDLE + 2 * KEEPALIVE, IDLE + 60,
             "the old sessions' idle timeout to pass")
    after = server_tunnels(s)
    assert sorted(after.values()) == ["10.97.0.2", "10.99.0.254"], after
    assert pings(a2) and pings(b2)

    # 3. a revocation ends the live session within seconds (the server
    # notices the new list), removes its tunnel, and the others go on
    tid_b = next(t for t, remote in server_tunnels(s).items() if remote == "10.97.0.2")
    pki.revoke(ca, "node-b")
    t2 = time.monotonic()
    wait_for(lambda: tid_b not in server_tunnels(s), 120, "the revoked node's tunnel to go")
    figures["revocation_effective_s"] = round(time.monotonic() - t2, 1)
    assert "'node-b': certificate revoked" in agents.log("srv")
    assert pings(a2) and not pings(b2)

    # 4. the revocation list ages (every wall clock stepped): the server
    # warns a week ahead, says at once when it expired (every new client
    # is refused then; the live session goes on), and reads the list that
    # `lvn pki crl` re-signs without a restart
    agents.stop("b2")
    status = tmp_path / "srv-state" / "status.json"

    def warnings() -> str:
        try:
            return " ".join(json.loads(status.read_text()).get("warnings", []))
        except (OSError, ValueError):
            return ""

    clock.write_text("+25d\n")  # the list was signed for 30 days by revoke()
    wait_for(lambda: "expires in" in agents.log("srv") and "expires in" in warnings(), 60,
             "the warning that the revocation list expires soon")
    clock.write_text("+31d\n")
    wait_for(lambda: "crl.pem expired at" in agents.log("srv") and "expired at" in warnings(),
             60, "the server to say at once that the revocation list expired")
    seen = len(agents.log("srv"))
    client("d", b2, "10.97.0.1", "node-d", False)
    wait_for(lambda: "revocation list expired" in agents.log("srv")[seen:], 120,
             "a new client to be refused while the list is expired")
    assert pings(a2)
    t3 = time.monotonic()
    pki.refresh_crl(ca, days=60)  # `lvn pki crl DIR --days 60`
    wait_for(lambda: "'node-d': tunnel up" in agents.log("srv"), 240,
             "the client to join once the list is renewed")
    figures["join_after_crl_renewed_s"] = round(time.monotonic() - t3, 1)
    assert not warnings() and pings(a2)
    clock.write_text("+0\n")
    assert "Traceback" not in agents.log("srv")
    figures.update(keepalive_s=KEEPALIVE, idle_timeout_s=IDLE, dead_after=DEAD_AFTER,
                   kernel=os.uname().release)
    # the scenario's times, for the notes and make bench (build/vm/KERNEL/faults.json)
    out = ROOT / "build" / "vm" / os.uname().release / "faults.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
