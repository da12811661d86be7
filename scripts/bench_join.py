"""Control-plane load for `make bench`: N clients join one real server agent.

The clients are N ClientSessions in one process, each with its own
certificate, TLS connection and UDP socket (so the server sees N
identities and N reflexive endpoints and sets up N tunnels and 2N rules);
they carry out the protocol but have no kernel device of their own, which
keeps 1,000 of them cheap.  Measured: wall time until every client has its
ENDPOINT (tunnel up), the server's CPU time and RSS.
"""

from __future__ import annotations

import random
import selectors
import socket
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lvn import pki, session
from lvn.agent import TlsConn, tls_context
from lvn.session import ClientSession

if TYPE_CHECKING:
    from lvn.session import Action


# the server agent of make bench's control plane: its rate limits raised,
# the clients share one source address
SERVER_CONF = """config agent 'agent'
	option enabled '1'
	option role 'server'
	option state_dir '{state}'
config server 'server'
	option ca '{d}/pki/ca.pem'
	option cert '{d}/pki/issued/srv.pem'
	option key '{d}/pki/issued/srv.key'
	option pool4 '10.78.0.0/20'
	option pool6 'fd78::/64'
	option idle_timeout '3600'
	option keepalive '{keepalive}'
	option conn_rate '1000'
	option conn_burst '1000'
{extra}"""

# where a saboteur resets its connection (RST, as a client that loses
# power and whose NAT answers for it): during the TLS handshake, after its
# HELLO (the server's LEASE meets the reset), after the LEASE (the server
# waits for READY, then its timer's ERROR meets the reset)
SABOTAGE_POINTS = ("handshake", "hello", "lease")


class FakeClient:
    """One client: TLS, HELLO, LEASE, probe from its UDP socket, READY;
    a saboteur resets its connection at ``sabotage`` instead."""

    def __init__(self, name: str, ctx: Any, server: str, port: int,
                 sabotage: str | None = None) -> None:
        self.name = name
        self.sabotage = sabotage
        self.sabotaged = False
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setblocking(False)
        tcp.connect_ex((server, port))
        self.conn = TlsConn(tcp, ctx, server=False)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("0.0.0.0", 0))
        self.server = server
        self.session: ClientSession | None = None
        self.data_port = 0
        self.up_at: float | None = None
        self.error = ""

    def pump(self, now: float) -> None:
        data = self.conn.pump()
        if self.sabotage == "handshake" and not self.conn.ready:
            return self.reset()  # the ClientHello is out
        if self.conn.ready and self.session is None:
            self.session = ClientSession(now, ["ipv4", "ipv6"])
            self._act(self.session.start(), now)
            if self.sabotage == "hello":
                self.conn.flush()
                return self.reset()
        if data and self.session is not None:
            if self.sabotage == "lease":
                return self.reset()  # the LEASE came: no probe, no READY
            self._act(self.session.receive(data, now), now)
        if self.conn.closed and self.up_at is None and not self.error:
            self.error = "closed by the server"

    def datagram(self, now: float) -> None:
        """A datagram from the server: an ACK of a keepalive, a CHALLENGE."""
        try:
            data = self.udp.recv(2048)
        except OSError:
            return
        if self.session is not None:
            self._act(self.session.on_datagram(data, now), now)

    def tick(self, now: float) -> None:
        if self.session is not None:
            self._act(self.session.on_timer(now), now)

    def _act(self, actions: list[Action], now: float) -> None:
        for act in actions:
            if isinstance(act, session.Send):
                self.conn.send(act.data)
            elif isinstance(act, session.Configure):
                self.data_port = act.lease.data_port
            elif isinstance(act, session.SendDatagram) and self.data_port:
                try:
                    self.udp.sendto(act.data, (self.server, self.data_port))
                except OSError as e:
                    self.error = f"probe: {e}"
            elif isinstance(act, session.Up):
                self.up_at = now
            elif isinstance(act, session.Close):
                self.error = act.reason

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0): the server's next send or read fails."""
        self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sabotaged = True
        self.close()

    def close(self) -> None:
        self.conn.close()
        self.udp.close()


def issue_clients(ca: Path, n: int, start: int = 0) -> list[tuple[Path, Path]]:
    return [pki.issue(ca, f"load-{i}") for i in range(start, start + n)]


def join(ca: Path, certs: list[tuple[Path, Path]], server: str, port: int,
         timeout: float, sabotage_every: int = 0) -> dict[str, Any]:
    """Start every client at once; seconds until all are up.  A client that
    fails (a timeout while the server is busy) tries again after 1-3 s,
    as real clients do with their backoff.  With ``sabotage_every`` k,
    every k-th client resets its connection at one of SABOTAGE_POINTS in
    turn, once, and is not waited for."""
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    ctxs = [tls_context(str(ca / "ca.pem"), str(cert), str(key), None, server=False)
            for cert, key in certs]

    saboteurs = {i: SABOTAGE_POINTS[(i // sabotage_every) % len(SABOTAGE_POINTS)]
                 for i in range(0, len(certs), sabotage_every)} if sabotage_every else {}

    def start(i: int) -> FakeClient:
        c = FakeClient(f"load-{i}", ctxs[i], server, port, saboteurs.pop(i, None))
        sel.register(c.conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        return c

    clients = [start(i) for i in range(len(certs))]
    sabotaged = {i for i, c in enumerate(clients) if c.sabotage}
    retry_at: dict[int, float] = {}
    retries = 0
    errors: set[str] = set()
    waiting = set(range(len(clients)))
    next_tick = t0
    while waiting and time.monotonic() - t0 < timeout:
        for ready, _ in sel.select(0.1):
            c = ready.data
            if c.sabotaged:
                continue
            try:
                c.pump(time.monotonic())
            except Exception as e:  # a TLS or protocol failure of one client
                c.error = f"{type(e).__name__}: {e}"
            if c.sabotaged:
                try:
                    sel.unregister(c.conn.sock)
                except (KeyError, ValueError):
                    pass
                continue
            if c.conn.ready:
                try:
                    sel.modify(c.conn.sock, selectors.EVENT_READ, c)
                except (KeyError, ValueError):
                    pass
            if c.conn.closed:
                try:
                    sel.unregister(c.conn.sock)
                except (KeyError, ValueError):
                    pass
        now = time.monotonic()
        if now >= next_tick:
            next_tick = now + 0.5
            for i in list(waiting):
                if not clients[i].error:
                    clients[i].tick(now)
        for i in waiting:
            c = clients[i]
            if c.error and i not in retry_at:
                errors.add(c.error)
                try:
                    sel.unregister(c.conn.sock)
                except (KeyError, ValueError):
                    pass
                c.close()
                retry_at[i] = now + 1 + 2 * random.random()
        for i, at in list(retry_at.items()):
            if now >= at:
                del retry_at[i]
                clients[i] = start(i)
                retries += 1
        waiting = {i for i in waiting if clients[i].up_at is None and i not in sabotaged}
    up = [c.up_at - t0 for c in clients if c.up_at is not None]
    wanted = len(clients) - len(sabotaged)
    for c in clients:
        c.close()
    sel.close()
    # a saboteur's retry after an error of its own may join too
    honest = [clients[i].up_at for i in range(len(clients)) if i not in sabotaged]
    out = {"clients": len(clients), "joined": len(up),
           "all_joined_s": max(up) if len(up) >= wanted and None not in honest else None,
           "median_join_s": sorted(up)[len(up) // 2] if up else None,
           "retries": retries, "errors": sorted(errors)[:5]}
    if sabotaged:
        out["sabotaged"] = len(sabotaged)
    return out


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (KiB), CPU seconds, voluntary context switches of a process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    import os
    hz = os.sysconf("SC_CLK_TCK")
    return {"rss_kib": float(status["VmRSS"].split()[0]),
            "cpu_s": (int(stat[11]) + int(stat[12])) / hz,
            "wakeups": float(status["voluntary_ctxt_switches"])}
