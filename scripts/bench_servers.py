"""`make bench`, the control plane with two servers sharing etcd
(docs/servers.md): N clients (bench_join's FakeClients: TLS, the protocol
and keepalives, no device of their own) join two server agents at once,
half listing each first; then all are moved to the first server, and it
loses power (nftables drops everything in its namespace: no FIN, no
RST) and every client joins the second as a real client does (liveness
bound, then the next server of its list).  Measured: the wall time of
the joins, the failover time of each client (from the power cut until
its tunnel is up on the second server), and that no two clients ever
share an address.

Namespaces: etcd alone in E, server i in Si, the clients in C, each
server linked to E and to C.
"""

from __future__ import annotations

import json
import os
import random
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_join

from lvn import pki, session
from lvn.agent import tls_context
from lvn.etcd import Etcd, EtcdUnavailable
from lvn.netlink import in_netns

E, C = "bench-e", "bench-c"
SERVERS = ("bench-s1", "bench-s2")
PORT = 50000
HANDSHAKE_TIMEOUT = session.HANDSHAKE_TIMEOUT  # s for TCP and TLS, as the real clients
KEEPALIVE, DEAD_AFTER = 2, 3   # the servers ask for 2 s; clients give up after 3 unanswered
ETCD = "10.96.{i}.1"           # etcd towards server i
SERVER_ADDR = "10.95.{i}.1"    # server i towards the clients

ETCD_CONF = """	option listen_port '{port}'
	option data_port '{port}'
	option lease_store 'etcd'
	list etcd 'http://{etcd}:2379'
	option name 'gw{i}'
	option rebalance_margin '0'
"""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def _ns(ns: str, *argv: str) -> None:
    _run("ip", "netns", "exec", ns, *argv)


def topology() -> None:
    teardown()
    for ns in (E, C, *SERVERS):
        _run("ip", "netns", "add", ns)
        _ns(ns, "ip", "link", "set", "lo", "up")
    for i, s in enumerate(SERVERS, 1):
        for peer, net, dev in ((E, ETCD, f"e{i}"), (C, SERVER_ADDR, f"c{i}")):
            _run("ip", "link", "add", dev, "netns", peer, "type", "veth", "peer", "name",
                 f"ul{dev}", "netns", s)
            here, there = net.format(i=i), net.format(i=i)[:-1] + "2"
            _ns(peer, "ip", "addr", "add", f"{there if peer == C else here}/24", "dev", dev)
            _ns(s, "ip", "addr", "add", f"{here if peer == C else there}/24", "dev", f"ul{dev}")
            _ns(peer, "ip", "link", "set", dev, "up")
            _ns(s, "ip", "link", "set", f"ul{dev}", "up")


def teardown() -> None:
    for ns in (E, C, *SERVERS):
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in out.stdout.split():
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def power_cut(ns: str) -> None:
    """Drop everything in and out of ``ns`` but its loopback."""
    _ns(ns, "nft", "add table inet bh; add chain inet bh in { type filter hook input "
                   "priority -300 ; policy drop ; } ; add chain inet bh out { type filter "
                   "hook output priority -300 ; policy drop ; } ; add rule inet bh in "
                   "iifname lo accept ; add rule inet bh out oifname lo accept")


def _wait(what: str, ok: Any, seconds: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: {p.args!r} exited ({p.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not after {seconds:.0f} s")
        time.sleep(0.2)


def two_servers(n: int) -> dict[str, Any]:
    etcd_bin = shutil.which("etcd")
    if etcd_bin is None:
        raise RuntimeError("etcd is not installed (scripts/setup-deps.sh installs etcd-server)")
    d = Path(tempfile.mkdtemp())
    pki.init(d / "pki")
    pki.issue(d / "pki", "srv", role="server")
    certs = bench_join.issue_clients(d / "pki", n)
    topology()
    procs: list[subprocess.Popen[bytes]] = []
    logs = {}
    try:
        urls = ",".join(f"http://{ETCD.format(i=i)}:2379" for i in (1, 2))
        with open(d / "etcd.log", "wb") as out:
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", E, etcd_bin, "--data-dir", str(d / "etcd"),
                 "--listen-client-urls", urls, "--advertise-client-urls", urls,
                 "--listen-peer-urls", "http://127.0.0.1:2380",
                 "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                 "--initial-cluster", "default=http://127.0.0.1:2380"], stdout=out, stderr=out))
        etcd = Etcd([f"http://{ETCD.format(i=1)}:2379"])

        def answers() -> bool:
            try:
                with in_netns(E):
                    etcd.put("/ready", "1")
                return True
            except EtcdUnavailable:
                return False
        _wait("etcd to answer", answers, 120, procs)
        for i, s in enumerate(SERVERS, 1):
            conf = d / f"srv{i}"
            conf.mkdir()
            (conf / "lvn").write_text(bench_join.SERVER_CONF.format(
                d=d, state=d / f"state{i}", keepalive=KEEPALIVE,
                extra=ETCD_CONF.format(i=i, port=PORT, etcd=ETCD.format(i=i))))
            logs[i] = d / f"srv{i}.log"
            with open(logs[i], "wb") as out:
                procs.append(subprocess.Popen(
                    ["ip", "netns", "exec", s, sys.executable, "-m", "lvn", "agent", "-c",
                     str(conf), "--state", str(d / f"static{i}.json")],
                    env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
                    stdout=out, stderr=out))
        _wait("both servers to listen",
              lambda: all(b"server listening" in logs[i].read_bytes() for i in (1, 2)), 120,
              procs)
        addrs = [SERVER_ADDR.format(i=i) for i in (1, 2)]
        ctxs = [tls_context(str(d / "pki" / "ca.pem"), str(c), str(k), None, server=False)
                for c, k in certs]
        with in_netns(C):
            spread = run_clients(ctxs, [addrs[i % 2:] + addrs[:i % 2] for i in range(n)],
                                 cut=None)
            failover = run_clients(ctxs, [addrs] * n, cut=(SERVERS[0], addrs[0]))
        with in_netns(E):
            leases = [json.loads(kv.value)[0] for kv in etcd.get_prefix("/lvn/lease/")]
        return {"clients": n, "keepalive_s": KEEPALIVE, "dead_after": DEAD_AFTER,
                "join_both": spread, "failover": failover,
                "leases": len(leases), "leases_unique": len(set(leases)) == len(leases)}
    except Exception:
        for i, log in logs.items():
            print(f"bench: server {i} log (tail):\n"
                  + log.read_text(errors="replace")[-2000:], flush=True)
        raise
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        teardown()


def run_clients(ctxs: list[Any], lists: list[list[str]], cut: tuple[str, str] | None,
                timeout: float = 300, port: int = PORT,
                handshake_timeout: float = HANDSHAKE_TIMEOUT) -> dict[str, Any]:
    """Each client joins the first server of its list (the next after a
    lost session or ``handshake_timeout`` s without TLS, 1-1.5 s later, as
    lvn/clientpolicy.py does) until all are up; with ``cut`` (a server's
    namespace and address), the clients join the first server of their
    list (again and again: the servers take 32 handshakes at a time from
    one source address, and these share one), then that namespace loses
    power and the clients that were on it are timed until they are up
    again."""
    sel = selectors.DefaultSelector()
    current = [0] * len(ctxs)
    clients: list[bench_join.FakeClient | None] = [None] * len(ctxs)
    retry_at = [0.0] * len(ctxs)
    started = [0.0] * len(ctxs)
    moves = 0

    def start(i: int) -> None:
        c = bench_join.FakeClient(f"load-{i}", ctxs[i], lists[i][current[i]], port)
        sel.register(c.conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, (i, c))
        sel.register(c.udp, selectors.EVENT_READ, (i, c))
        clients[i], started[i] = c, time.monotonic()

    def drop(i: int, now: float) -> None:
        nonlocal moves
        c = clients[i]
        assert c is not None
        why = c.error or ("closed by the server" if c.conn.closed else "no TLS in time")
        errors[why[:80]] = errors.get(why[:80], 0) + 1
        for sock in (c.conn.sock, c.udp):
            try:
                sel.unregister(sock)
            except (KeyError, ValueError):
                pass
        c.close()
        clients[i] = None
        if cut is None or cut_at is not None:  # (before a cut: all on the first)
            current[i] = (current[i] + 1) % len(lists[i])
        retry_at[i] = now + 1 + random.random() / 2
        moves += 1

    def all_up() -> bool:
        return all(c is not None and c.up_at is not None and not c.error for c in clients)

    t0 = time.monotonic()
    cut_at: float | None = None
    up_again: dict[int, float] = {}
    on_cut: set[int] = set()  # the clients on the server that loses power
    errors: dict[str, int] = {}  # why clients left a server, how often
    next_tick = t0
    while time.monotonic() - t0 < timeout:
        for key, _ in sel.select(0.1):
            i, c = key.data
            if clients[i] is not c:
                continue
            now = time.monotonic()
            try:
                if key.fileobj is c.udp:
                    c.datagram(now)
                else:
                    c.pump(now)
                    if c.conn.ready:
                        sel.modify(c.conn.sock, selectors.EVENT_READ, (i, c))
            except Exception as e:  # a TLS or protocol failure of one client
                c.error = f"{type(e).__name__}: {e}"
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + 0.25
            for c in clients:
                if c is not None and not c.error:
                    c.tick(now)
        for i, c in enumerate(clients):
            if c is None and now >= retry_at[i]:
                start(i)
            elif c is not None and (c.error or c.conn.closed or (
                    c.session is None and now - started[i] > handshake_timeout)):
                drop(i, now)
            elif c is not None and cut_at is not None and c.up_at is not None \
                    and i in on_cut and i not in up_again:
                up_again[i] = c.up_at - cut_at
        if cut_at is None and all_up():
            if cut is None:
                break
            # every client up (on the first server but those it failed): the power cut
            joined_s, before_cut, moves = now - t0, moves, 0
            on_cut = {i for i in range(len(clients)) if lists[i][current[i]] == cut[1]}
            power_cut(cut[0])
            cut_at = time.monotonic()
            for i in on_cut:
                c = clients[i]
                assert c is not None
                c.up_at = None
        elif cut_at is not None and len(up_again) == len(on_cut):
            break
    for c in clients:
        if c is not None:
            c.close()
    sel.close()
    if cut is None:
        if not all_up():
            raise RuntimeError(f"not every client joined within {timeout:.0f} s")
        return {"all_joined_s": round(time.monotonic() - t0, 2), "rejoins": moves,
                "why": errors}
    if cut_at is None or len(up_again) < len(on_cut) or not on_cut:
        raise RuntimeError(f"failover: {len(up_again)} of {len(on_cut)} clients up again "
                           f"within {timeout:.0f} s")
    times = sorted(up_again.values())
    return {"joined_first_s": round(joined_s, 2), "rejoins_before_cut": before_cut,
            "on_cut_server": len(on_cut), "median_s": round(times[len(times) // 2], 2),
            "max_s": round(times[-1], 2), "min_s": round(times[0], 2), "why": errors}
