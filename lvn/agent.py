"""The lvn agent: server and client roles, the I/O around lvn/session.py.

One thread, one ``selectors`` loop: the TLS control channel (pyOpenSSL,
TLS 1.2+ with AEAD suites, mutual certificates, CRL), the UDP data
socket(s) whose file descriptors the kernel uses for the tunnels (control
datagrams still reach us), a one-second tick for the session timers.  The sessions decide; this
module carries out their actions against sockets and the kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import random
import selectors
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from OpenSSL import SSL, crypto

from . import (
    LvnError,
    balance,
    clientpolicy,
    compat,
    crl,
    datagram,
    drain,
    identity,
    mesh,
    messages,
    servertunnels,
    session,
    static,
)
from .clientpolicy import ClientPolicy
from .config import ClientConfig, ServerConfig
from .crlshare import CrlShare
from .etcd import Etcd
from .etcdleases import EtcdLeases
from .files import check_private_dir, write_atomic
from .hooks import Hooks, hook_env
from .leases import Leases
from .model import Rule
from .presence import Presence
from .ratelimit import RateLimiter, source_key
from .servertunnels import ServerTunnels
from .session import HANDSHAKE_TIMEOUT, ServerSession

if TYPE_CHECKING:
    from .netlink import Ipudp
    from .session import Action

log = logging.getLogger("lvn")
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}

TICK = 1.0
DATAGRAM_BUDGET = 256        # datagrams read per wake-up (timers and TLS get their turn)
MAX_PENDING = 512            # TLS handshakes in progress, all sources (oldest dropped)
MAX_PENDING_PER_SOURCE = 32  # per IPv4 address or IPv6 /64
SHED_FOR = 60.0  # s a lowered per-source cap stays after the last EMFILE
CRL_CHECK = 5.0    # s between looks at the revocation list's file
LEASE_CHECK = 3600.0  # s between looks for leases of long-departed identities


# TLS 1.2 suites: ECDHE key exchange (forward secrecy) and AEAD only
TLS12_CIPHERS = b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:" \
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:" \
    b"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"


def tls_context(ca: str, cert: str, key: str, crl: str | None, server: bool) -> SSL.Context:
    """TLS 1.2 or 1.3, forward-secret AEAD suites only; both sides present
    certificates signed by ``ca``.  (1.2: MicroPython's mbedTLS client
    offers no 1.3; docs/protocol.md has the security argument.)"""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_cipher_list(TLS12_CIPHERS)
    # TLS 1.2 renegotiation: never needed here, a known source of trouble
    # (OpenSSL's SSL_OP_NO_RENEGOTIATION; pyOpenSSL names it from 22.1 on)
    ctx.set_options(getattr(SSL, "OP_NO_RENEGOTIATION", 1 << 30))
    try:
        ctx.use_certificate_file(cert)
        ctx.use_privatekey_file(key)
        ctx.check_privatekey()
        ctx.load_verify_locations(ca)
    except SSL.Error as e:
        raise LvnError(f"TLS setup with {cert} / {key} / {ca} failed: {e}") from None

    def verify(conn: SSL.Connection, peer: crypto.X509, code: int, depth: int, ok: int) -> bool:
        if not ok:
            subject = peer.get_subject().CN
            log.warning("certificate of %r refused: %s", subject, _x509_reason(code))
        return bool(ok)

    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    if crl:
        try:
            store = ctx.get_cert_store()
            assert store is not None
            compat.add_crl(store, x509.load_pem_x509_crl(Path(crl).read_bytes()))
            store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
        except (OSError, ValueError) as e:
            raise LvnError(f"cannot load the revocation list {crl}: {e}") from None
    return ctx


_X509_REASONS = {9: "not yet valid", 10: "expired", 18: "self-signed",
                 19: "self-signed certificate in chain", 20: "unknown issuer (wrong CA)",
                 23: "revoked", 26: "unsuitable purpose (key usage)",
                 3: "revocation list missing", 12: "revocation list expired"}


def _x509_reason(code: int) -> str:
    return _X509_REASONS.get(code, f"X.509 verify error {code}")


class TlsConn:
    """A non-blocking TLS connection (its session frames what it reads)."""

    def __init__(self, sock: socket.socket, ctx: SSL.Context, server: bool) -> None:
        self.sock = sock
        self.conn = SSL.Connection(ctx, sock)
        if server:
            self.conn.set_accept_state()
        else:
            self.conn.set_connect_state()
        self.ready = False
        self.out = b""
        self.closed = False
        self.source = ""  # the rate limiter's key for the peer (server side)

    def fileno(self) -> int:
        return self.sock.fileno()

    def pump(self) -> bytes:
        """Advance the handshake, read what arrived; the bytes received."""
        got = b""
        try:
            if not self.ready:
                self.conn.do_handshake()
                self.ready = True
            while True:
                data = self.conn.recv(16384)
                if not data:
                    self.closed = True
                    break
                got += data
        except (SSL.WantReadError, SSL.WantWriteError):
            pass
        except (SSL.ZeroReturnError, SSL.SysCallError):
            self.closed = True
        self.flush()
        return got

    def send(self, data: bytes) -> None:
        self.out += data
        self.flush()

    def flush(self) -> None:
        """Send what is queued; a connection the peer reset or closed is
        marked closed (never an exception: it may be a timer's reply to a
        peer that gave up, and only its own session ends)."""
        if self.closed:
            self.out = b""
            return
        try:
            while self.out and self.ready:
                n = self.conn.send(self.out)
                self.out = self.out[n:]
        except (SSL.WantReadError, SSL.WantWriteError):
            pass
        except (SSL.Error, OSError) as e:
            log.debug("connection lost while sending: %s", e)
            self.out = b""
            self.closed = True

    def peer_names(self) -> set[str]:
        """The peer certificate's CN and subjectAltName DNS names and addresses."""
        cert = compat.peer_certificate(self.conn)
        if cert is None:
            return set()
        names = {str(a.value) for a in cert.subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME)}
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return names
        names.update(san.get_values_for_type(x509.DNSName))
        names.update(str(a) for a in san.get_values_for_type(x509.IPAddress))
        return names

    def close(self) -> None:
        try:
            if not self.closed:
                self.conn.shutdown()
        except (SSL.Error, OSError):
            pass
        self.sock.close()
        self.closed = True


def _udp(family: int, port: int | None) -> socket.socket:
    """A data socket.  ``port`` None: left unbound, for the kernel to bind to
    the device's port when it takes the socket (IPUDP_A_FD), which takes
    the port over from the module's own socket without losing a packet."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if port is not None:
        s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    s.setblocking(False)
    return s


def tcp_keepalive(sock: socket.socket, idle: int = 60, interval: int = 15,
                  count: int = 4) -> None:
    """TCP keepalive on a control connection: a second line behind the
    keepalive answers, for a peer that vanished without FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", interval),
                       ("TCP_KEEPCNT", count)):
        if hasattr(socket, opt):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


def _source(address: str) -> str:
    """A peer's address as its family shows it (the listener is dual-stack)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _family_name(family: int) -> str:
    return "ipv6" if family == socket.AF_INET6 else "ipv4"


STATUS_FILE = "status.json"
# a server routes between its clients: the init script turns these on
FORWARDING = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")


class Agent:
    """Shared loop machinery of both roles."""

    role = ""
    conf: Any = None  # the role's ServerConfig / ClientConfig
    # options that a reload applies to the running agent; others restart it
    LIVE_OPTIONS: frozenset[str] = frozenset()

    def __init__(self, kernel: Ipudp, state_dir: str, ifname: str,
                 up_hook: str | None, down_hook: str | None) -> None:
        self.kernel = kernel
        self.ifname = ifname
        self.state_dir = Path(state_dir)
        try:
            check_private_dir(state_dir)
        except (ValueError, OSError) as e:
            raise LvnError(f"state directory refused: {e}") from None
        self.sel = selectors.DefaultSelector()
        self.next_tick = time.monotonic()
        self._written: dict[str, Any] | None = None
        self.status_error = ""  # the last failure writing status.json (said once)
        self.hooks = Hooks(up_hook, down_hook)
        self.udp: dict[int, socket.socket] = {}  # family -> data socket given to the kernel
        # ubus events (name, data) for the service to send
        self.events: list[tuple[str, dict[str, Any]]] = []
        # monotonic -> wall clock, fixed at start: the times in status.json
        # change only when something is heard, so the file is not rewritten
        # every tick
        self.wall_offset = time.time() - time.monotonic()

    def status(self) -> dict[str, Any]:
        """Role and peers (``last_heard``: Unix time), for `lvn status` and
        `ubus call lvn peers`."""
        return {"role": self.role, "peers": self.peers()}

    def peers(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def peer_event(self, event: str, peer: str, addresses: list[str],
                   endpoint: tuple[str, int] | None, tunnel_id: int | None) -> None:
        """A tunnel came up or went: run the hook, queue the ubus event."""
        env = hook_env(event, self.role, self.ifname, peer, addresses, endpoint, tunnel_id)
        self.hooks.run(env)
        self.events.append((f"lvn.peer.{event}", {
            "name": peer, "addresses": list(addresses), "tunnel_id": tunnel_id,
            "endpoint": list(endpoint) if endpoint else None}))

    def reconfigure(self, conf: Any) -> bool:
        """Apply a changed section in place if only LIVE_OPTIONS differ;
        False: the service must replace the agent."""
        old = self.conf
        changed = {f for f in vars(conf) if getattr(conf, f) != getattr(old, f)}
        if not changed <= self.LIVE_OPTIONS:
            return False
        self.conf = conf
        self.hooks.scripts = {"up": conf.up_hook, "down": conf.down_hook}
        self.apply_live(changed)
        return True

    def apply_live(self, changed: set[str]) -> None:
        pass

    def write_status(self) -> None:
        """state_dir/status.json, rewritten atomically when it changed."""
        st = self.status()
        if st == self._written:
            return
        # 0600: every peer's public endpoint (the kernel's GET needs CAP_NET_ADMIN)
        write_atomic(self.state_dir / STATUS_FILE, json.dumps(st, indent=1).encode() + b"\n",
                     0o600)
        self._written = st

    def step(self, timeout: float) -> None:
        """Wait for I/O up to ``timeout`` s (less if a tick is due) and handle it."""
        now = time.monotonic()
        wait = max(0.0, min(timeout, self.next_tick - now))
        for key, _ in self.sel.select(wait):
            handler: Callable[[], None] = key.data
            try:
                handler()
            except Exception:  # one bad event must not take every tunnel's agent down
                log.exception("internal error while handling an event (continuing)")
        now = time.monotonic()
        if now >= self.next_tick:
            self.next_tick = now + TICK
            try:
                self.tick(now)
            except Exception:  # e.g. out of descriptors (EMFILE) under a flood
                log.exception("internal error in the periodic work (continuing)")
            self.hooks.reap(now)
            try:
                self.write_status()
                self.status_error = ""
            except OSError as e:  # written at the next tick that can; said once
                if e.strerror != self.status_error:
                    self.status_error = e.strerror or str(e)
                    log.warning("writing %s: %s (again at every tick until it works)",
                                self.state_dir / STATUS_FILE, self.status_error)

    def tick(self, now: float) -> None:
        raise NotImplementedError

    def _detach(self, family: int) -> None:
        """Close our data socket for ``family`` (the kernel drops it too)."""
        old = self.udp.pop(family, None)
        if old is not None:
            self.sel.unregister(old)
            old.close()

    def _attach(self, family: int, port: int | None) -> None:
        """Hand a new data socket for ``family`` to the kernel (see _udp)."""
        self._detach(family)
        s = _udp(family, port)
        try:
            self.kernel.set_device(self.ifname, fd=s.fileno())
        except LvnError:
            s.close()
            raise
        self.udp[family] = s
        self.sel.register(s, selectors.EVENT_READ, lambda: self._datagram(s))

    def _datagram(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def release(self) -> None:
        """Stop, leaving the tunnels to the kernel: module sockets take the
        data ports over, so traffic goes on and the next run adopts them."""
        if self.udp:
            try:
                self.kernel.set_device(self.ifname, return_fd=True)
            except LvnError as e:
                log.warning("handing the data port of %s back to the kernel: %s",
                            self.ifname, e)
        self.close()

    def close(self) -> None:
        for s in self.udp.values():
            s.close()
        self.udp.clear()
        self.sel.close()


class Server(Agent):
    role = "server"
    LIVE_OPTIONS = frozenset({"mtu", "keepalive", "idle_timeout", "conn_rate", "conn_burst",
                              "up_hook", "down_hook", "lease_ttl", "drain_rate", "capacity",
                              "rebalance_margin"})

    def __init__(self, conf: ServerConfig, kernel: Ipudp, state_dir: str) -> None:
        super().__init__(kernel, state_dir, conf.ifname, conf.up_hook, conf.down_hook)
        self.conf = conf
        self.limiter = RateLimiter(conf.conn_rate, conf.conn_burst)
        # TLS connections without a session yet -> when they were accepted
        self.pending: dict[TlsConn, float] = {}
        self.pending_from: dict[str, int] = {}  # source_key -> handshakes in progress
        self.accept_paused = False
        # handshakes one source may hold: lowered when descriptors run out
        self.source_cap = MAX_PENDING_PER_SOURCE
        self.shed_at = 0.0
        self.ctx = tls_context(conf.ca, conf.cert, conf.key, conf.crl, server=True)
        self.crl = crl.read(conf.crl) if conf.crl else None
        self.next_crl_check = 0.0
        self.crl_warned = 0.0        # monotonic time of the last warning logged
        self.crl_warned_expired = False  # whether that one said "expired"
        self.serial_of: dict[str, int] = {}  # identity -> its certificate's serial
        self.next_lease_check = 0.0
        self.leases: Leases | EtcdLeases
        self.crl_share: CrlShare | None = None
        self.presence: Presence | None = None
        if conf.lease_store == "etcd":
            # shared with the other servers (docs/servers.md)
            self.leases = EtcdLeases(Etcd(conf.etcd), conf.etcd_prefix, conf.pool4, conf.pool6)
            if conf.crl:  # and the revocation list (read from its file as without etcd)
                self.crl_share = CrlShare(Etcd(conf.etcd), conf.etcd_prefix, conf.crl, conf.ca)
            # and which servers live, their load, which one each client is on
            self.presence = Presence(Etcd(conf.etcd), conf.etcd_prefix,
                                     conf.name or socket.gethostname(), conf.capacity,
                                     mesh=(conf.mesh_address, conf.data_port)
                                     if conf.mesh_address else None)
        else:
            self.leases = Leases(Path(state_dir) / "leases.json", conf.pool4, conf.pool6)
        self.sessions: dict[bytes, tuple[ServerSession, TlsConn, str]] = {}
        # tunnel ids, detached tunnels, rule owners: lvn/servertunnels.py
        self.tunnels = ServerTunnels(conf.idle_timeout)
        self.drain = drain.Drain()
        self.balance = balance.Balance(conf.rebalance_margin, conf.drain_rate)
        # the other servers' tunnels, as in the kernel: server -> (its end and routes, tunnel id)
        self.mesh: dict[str, tuple[mesh.Peer, int]] = {}
        self.mesh_read = 0  # the presence read the mesh was last made from
        self._setup()
        for thread in (self.crl_share, self.presence):
            if thread is not None:
                thread.start()

    def _setup(self) -> None:
        k, ifname = self.kernel, self.conf.ifname
        if ifname not in {d.ifname for d in k.devices()}:
            k.add_device(ifname, mtu=self.conf.mtu)
        dev = k.device(ifname)
        if dev.mode != "multi":
            if dev.tunnels:
                raise LvnError(f"{ifname} is a FIXED device with tunnels: not adopting it")
            k.set_mode(ifname, "multi")
        # adopt what an earlier run left: tunnel ids stay with their clients
        # (they expire like detached ones unless their client comes back);
        # the device is ours: its rules are known from here on without
        # asking the kernel (a dump per join would make joining O(N^2))
        self.tunnels.adopt_leftovers(
            ((t.id, (t.remote, t.remote_port)) for t in k.tunnels(ifname)),
            ((r.prefix, r.tunnel_id) for r in k.rules(ifname)), time.monotonic())
        if dev.port != self.conf.data_port:
            k.set_device(ifname, port=self.conf.data_port)
        for family in (socket.AF_INET, socket.AF_INET6):
            self._attach(family, None)  # bound by the kernel to data_port
        have = set(k.addresses(ifname))
        for a in self.leases.gateway():
            if a not in have:
                k.add_address(ifname, a)
        k.set_link(ifname, mtu=self.conf.mtu, up=True)
        off = [p for p in FORWARDING if Path(p).read_text().strip() == "0"]
        if off:
            log.warning("IP forwarding is off (%s): clients reach the server but not each "
                        "other; /etc/init.d/lvn turns it on for a server", ", ".join(off))
        lst = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("::", self.conf.listen_port))
        lst.listen(64)
        lst.setblocking(False)
        self.listener = lst
        self.sel.register(lst, selectors.EVENT_READ, self._accept)
        # TUNNEL_ACTIVE: a detached tunnel receives again (lvn/expiry.py)
        self.kernel_events = k.event_source()
        self.sel.register(self.kernel_events, selectors.EVENT_READ, self._kernel_events)
        log.info("server listening on port %d, data port %d, device %s",
                 self.conf.listen_port, self.conf.data_port, ifname)

    def _kernel_events(self) -> None:
        now = time.monotonic()
        overflows = self.kernel_events.overflows
        for event in self.kernel_events.read():
            if event.kind == "tunnel-active" and event.ifname == self.conf.ifname:
                self.tunnels.active(event.tunnel_id, now)
        if self.kernel_events.overflows != overflows:
            log.warning("kernel events were lost (their receive buffer was full): a "
                        "detached tunnel that received again may be removed at its expiry")

    def _accept(self) -> None:
        try:
            sock, addr = self.listener.accept()
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._shed(e.strerror or str(e))
            return
        source = source_key(_source(addr[0]))
        now = time.monotonic()
        if not self.limiter.allow(source, now) or \
                self.pending_from.get(source, 0) >= self.source_cap:
            sock.close()  # before any TLS work: a flood costs an accept and a close
            return
        if len(self.pending) >= MAX_PENDING:
            self._close_conn(next(iter(self.pending)))  # the oldest handshake
        sock.setblocking(False)
        tcp_keepalive(sock)
        conn = TlsConn(sock, self.ctx, server=True)
        conn.source = source
        self.pending_from[source] = self.pending_from.get(source, 0) + 1
        self.pending[conn] = now
        holder: dict[str, Any] = {"session": None}
        self.sel.register(sock, selectors.EVENT_READ,
                          lambda: self._readable(conn, holder, addr[0]))

    def _shed(self, why: str) -> None:
        """Out of descriptors: from now on one source may hold a quarter of
        the handshakes in progress (its further connections cost an accept
        and a close), and the heaviest source's handshakes beyond that go,
        so that others' connections get descriptors.  Only when nothing can
        be freed does the listener rest until the next tick (no spinning)."""
        self.source_cap = max(1, min(self.source_cap, len(self.pending) // 4))
        self.shed_at = time.monotonic()
        heaviest = max(self.pending_from, key=self.pending_from.__getitem__, default=None)
        if heaviest is not None:
            excess = max(1, self.pending_from[heaviest] - self.source_cap)
            for conn in [c for c in self.pending if c.source == heaviest][:excess]:
                self._close_conn(conn)
            log.warning("accepting a connection: %s: closed %d handshake(s) from %s; "
                        "at most %d per source for %.0f s", why, excess, heaviest,
                        self.source_cap, SHED_FOR)
            return
        log.warning("accepting a connection: %s: pausing accepts for %.0f s", why, TICK)
        self.sel.unregister(self.listener)
        self.accept_paused = True

    def _readable(self, conn: TlsConn, holder: dict[str, Any], peer: str) -> None:
        try:
            data = conn.pump()
        except SSL.Error as e:
            log.warning("TLS with %s failed: %s", peer, e)
            self._drop(conn, holder)
            return
        if conn.ready and holder["session"] is None and not conn.closed:
            cert = compat.peer_certificate(conn.conn)
            try:
                if cert is None:
                    raise ValueError("there is none")
                name = identity.node_name(cert)
            except ValueError as e:
                log.warning("%s: certificate refused: %s", peer, e)
                self._drop(conn, holder)
                return
            if self.drain.on:
                log.info("%r (%s): draining: sent to another server", name, peer)
                _say_error(conn, drain.CODE, drain.TEXT)
                self._close_conn(conn)
                return
            self.serial_of[name] = cert.serial_number
            if self.balance.joined(name, time.monotonic()):
                log.info("%r: back at once after a rebalance: stays for %d s", name,
                         balance.STAY)
            sid = os.urandom(datagram.SESSION_SIZE)
            key = os.urandom(datagram.KEY_SIZE)  # sent to this client only, in LEASE
            s = ServerSession(key, sid, time.monotonic(), self.conf.data_port,
                              self.conf.mtu, self.conf.keepalive, self.conf.idle_timeout)
            holder["session"], holder["name"] = s, name
            if self.pending.pop(conn, None) is not None:
                self._handshake_over(conn)
            self._replace_sessions_of(name)
            self.leases.touch(name, time.time())
            self.sessions[sid] = (s, conn, name)
            self.tunnels.attach(name)
            log.info("%s: authenticated as %r", peer, name)
        s = holder["session"]
        if data and s is not None and self.sessions.get(s.session) is not None:
            self._guarded(s, conn, holder["name"], s.receive(data, time.monotonic()))
        if conn.closed:
            self._drop(conn, holder)

    def _handshake_over(self, conn: TlsConn) -> None:
        n = self.pending_from.get(conn.source, 0) - 1
        if n > 0:
            self.pending_from[conn.source] = n
        else:
            self.pending_from.pop(conn.source, None)

    def _replace_sessions_of(self, name: str) -> None:
        """A new session of ``name`` ends its older ones (a client that
        rebooted before its old, half-open session timed out): they go
        without touching the tunnel, which the new session takes over."""
        if self._end_sessions_of(name, "replaced", "a newer session of this identity took over"):
            log.info("%r: session replaced by a new one of the same identity", name)

    def _end_sessions_of(self, name: str, code: str, text: str) -> int:
        """End ``name``'s sessions with ERROR ``code``, leaving its tunnel to
        the caller; how many there were."""
        ended = 0
        for s, conn, n in list(self.sessions.values()):
            if n == name:
                del self.sessions[s.session]
                s.state = session.CLOSED
                conn.send(messages.encode(messages.Error(code, text)))
                self._close_conn(conn)
                ended += 1
        return ended

    def _drop(self, conn: TlsConn, holder: dict[str, Any]) -> None:
        s = holder.get("session")
        if s is not None:
            self._end_session(s, conn, holder["name"])
        else:
            self._close_conn(conn)

    def _close_conn(self, conn: TlsConn) -> None:
        if self.pending.pop(conn, None) is not None:
            self._handshake_over(conn)
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.close()

    def _end_session(self, s: ServerSession, conn: TlsConn, name: str) -> None:
        """The control channel is gone; the tunnel stays until it is idle."""
        live = any(n == name and c is not conn for _, c, n in self.sessions.values())
        # (a newer session of the same client keeps it attached)
        if self.sessions.pop(s.session, None) is not None and not live \
                and self.tunnels.detach(name, s.last_seen):
            log.info("%r: control channel closed; tunnel kept until idle", name)
        self._close_conn(conn)

    def _datagram(self, sock: socket.socket) -> None:
        for _ in range(DATAGRAM_BUDGET):
            try:
                data, addr = sock.recvfrom(2048)
            except OSError:  # empty (or an ICMP error queued on the socket)
                return
            if datagram.is_nat_keepalive(data):
                continue
            try:
                sid = datagram.session_of(data)
            except datagram.DatagramError:
                continue
            entry = self.sessions.get(sid)
            if entry is None:
                self._answer_load_probe(sock, data, addr)
                continue
            s, conn, name = entry
            self._guarded(s, conn, name, s.on_datagram(addr[0], addr[1], data, time.monotonic()))

    def _answer_load_probe(self, sock: socket.socket, data: bytes, addr: Any) -> None:
        """A client choosing its server asks for this one's load (lvn/clientpolicy.py):
        the answer, as big as the question, if the question bears the
        overlay's probe key."""
        key = self.presence.probe_key if self.presence is not None else b""
        if not key:
            return
        try:
            mtype, _ = datagram.open_(data, key, -1)
        except datagram.DatagramError:
            return
        if mtype != datagram.LOAD_PROBE:
            return
        figure = datagram.load_figure(len(self.sessions),
                                      0 if self.drain.on else self.conf.capacity)
        try:
            sock.sendto(datagram.seal(datagram.LOAD, datagram.session_of(data), figure, key),
                        addr)
        except OSError as e:  # a full socket buffer: the client chooses without it
            log.debug("answering a load probe from %s: %s", addr[0], e)

    def _act(self, s: ServerSession, conn: TlsConn, name: str, actions: list[Action]) -> None:
        for act in actions:
            if isinstance(act, session.Send):
                conn.send(act.data)
            elif isinstance(act, session.Allocate):
                try:
                    addrs = self.leases.lease(name)
                except LvnError as e:
                    log.warning("%r: %s", name, e)
                    self._act(s, conn, name, s.leased([], str(e)))
                    continue
                self._act(s, conn, name, s.leased(
                    addrs, sources=self.leases.networks(),
                    probe_key=self.presence.probe_key if self.presence is not None else b""))
            elif isinstance(act, session.MoveTunnel):
                self._set_tunnel(name, act.address, act.port, s.addresses)
            elif isinstance(act, session.Answer):
                self._answer(act)
            elif isinstance(act, session.Up):
                ep = s.endpoint
                log.info("%r: tunnel up (endpoint %s)", name,
                         f"{ep[0]}:{ep[1]}" if ep else "none")
                self.peer_event("up", name, s.addresses, ep, self.tunnels.tunnel_id(name))
            elif isinstance(act, session.Expire):
                log.info("%r: session closed: idle", name)
                conn.flush()
                self.sessions.pop(s.session, None)
                self._close_conn(conn)
                if any(n == name for _, _, n in self.sessions.values()):
                    continue  # a newer session of this client uses the tunnel
                self._remove_tunnel(name, s.endpoint)
            elif isinstance(act, session.Close):
                log.info("%r: session closed: %s", name, act.reason)
                conn.flush()
                self._end_session(s, conn, name)

    def _set_tunnel(self, name: str, address: str, port: int, addrs: list[str]) -> None:
        tid = self._tunnel(name, address, port)
        self._route(tid, mesh.host_prefixes(addrs))
        log.info("%r: tunnel %d -> %s port %d", name, tid, address, port)

    def _tunnel(self, name: str, address: str, port: int) -> int:
        """``name``'s tunnel to ``address``:``port``, made or moved: its id."""
        tid, actions = self.tunnels.place(name, address, port)
        self._kernel(actions)
        return tid

    def _route(self, tid: int, want: list[str]) -> None:
        """Make tunnel ``tid`` own exactly the host prefixes ``want``."""
        self._kernel(self.tunnels.route(tid, want))

    def _kernel(self, actions: Sequence[servertunnels.Action]) -> None:
        """Carry out lvn/servertunnels.py's actions, then report them done
        (a refusal raises before: its books stay as the kernel is)."""
        k, ifname = self.kernel, self.conf.ifname
        for act in actions:
            if isinstance(act, servertunnels.SetTunnel):
                k.set_tunnel(ifname, act.address, remote_port=act.port, tunnel_id=act.tunnel_id,
                             replace=True)
            elif isinstance(act, servertunnels.DelRule):
                try:
                    k.del_rule(ifname, act.prefix)
                except LvnError:
                    pass  # gone already
            elif isinstance(act, servertunnels.AddRules):
                k.add_rules(ifname, [Rule(p, act.tunnel_id) for p in act.prefixes])
            else:  # DelTunnel
                try:
                    k.del_tunnel(ifname, act.tunnel_id)
                except LvnError as e:
                    log.warning("removing %s: %s", act.what, e)
        self.tunnels.done(actions)

    def _update_mesh(self) -> None:
        """Tunnels to the other servers and routes to their clients, from
        each new read of etcd (lvn/mesh.py)."""
        if self.presence is None or self.presence.mesh is None:
            return
        reads, servers, where, leases = self.presence.directory()
        if reads == self.mesh_read:
            return
        self.mesh_read = reads
        want = mesh.plan(self.presence.name, servers, where, leases,
                         (n for _, _, n in self.sessions.values()))
        for server in sorted(set(self.mesh) - set(want)):
            self._leave_mesh_peer(server)
        for server, peer in sorted(want.items()):
            old, tid = self.mesh.get(server, (None, 0))
            try:
                if old is None or (old.address, old.port) != (peer.address, peer.port):
                    tid = self._tunnel(mesh.tunnel_name(server), peer.address, peer.port)
                    log.info("mesh: tunnel %d to server %r at %s port %d",
                             tid, server, peer.address, peer.port)
                self._route(tid, sorted(peer.prefixes))
            except LvnError as e:  # tried again at the next read
                log.warning("mesh: server %r: %s", server, e)
                self._leave_mesh_peer(server)
                continue
            if old is None or old.prefixes != peer.prefixes:
                log.info("mesh: %d route(s) to server %r", len(peer.prefixes), server)
            self.mesh[server] = (peer, tid)

    def _leave_mesh_peer(self, server: str) -> None:
        """A server gone from etcd (dead, stopped, or out of the mesh)."""
        self.mesh.pop(server, None)
        actions = self.tunnels.remove(mesh.tunnel_name(server),
                                      f"the tunnel to server {server!r}")
        self._kernel(actions)
        for act in actions:
            log.info("mesh: server %r gone: tunnel %d removed", server, act.tunnel_id)

    def _remove_tunnel(self, name: str, endpoint: tuple[str, int] | None = None) -> None:
        if name in self.leases.table:
            self.leases.touch(name, time.time())  # last here now: the lease TTL starts
        actions = self.tunnels.remove(name, f"the tunnel of {name!r}")
        self._kernel(actions)
        for act in actions:
            log.info("%r: idle, tunnel %d removed (lease kept)", name, act.tunnel_id)
            self.peer_event("down", name, self.leases.table.get(name, []), endpoint,
                            act.tunnel_id)

    def _answer(self, act: session.Answer) -> None:
        family = socket.AF_INET6 if ":" in act.address else socket.AF_INET
        sock = self.udp.get(family)
        if sock is None:
            return
        try:
            sock.sendto(act.data, (act.address, act.port))
        except OSError as e:  # a full socket buffer: the client retries
            log.debug("answering a keepalive to %s: %s", act.address, e)

    def peers(self) -> list[dict[str, Any]]:
        out = []
        for s, _, name in self.sessions.values():
            out.append({"name": name, "state": s.state, "addresses": s.addresses,
                        "endpoint": list(s.endpoint) if s.endpoint else None,
                        "tunnel_id": self.tunnels.tunnel_id(name),
                        "last_heard": round(s.last_seen + self.wall_offset, 1)})
        for name, seen in self.tunnels.detached_since():
            out.append({"name": name, "state": "detached",
                        "addresses": self.leases.table.get(name, []), "endpoint": None,
                        "tunnel_id": self.tunnels.tunnel_id(name),
                        "last_heard": round(seen + self.wall_offset, 1)})
        return sorted(out, key=lambda p: str(p["name"]))

    def _guarded(self, s: ServerSession, conn: TlsConn, name: str, actions: list[Action]) -> None:
        """Carry out one session's actions; an error there ends that session only."""
        try:
            self._act(s, conn, name, actions)
        except (OSError, LvnError) as e:  # e.g. out of descriptors under a flood
            log.warning("%r: %s: ending this session only", name, e)
            self._end_session(s, conn, name)
        except Exception:
            log.exception("%r: internal error: ending this session only", name)
            self._end_session(s, conn, name)

    def status(self) -> dict[str, Any]:
        st = super().status()
        warn = crl.warning(self.crl, time.time()) if self.crl is not None else None
        st["warnings"] = [warn] if warn else []
        if self.drain.on:
            st["warnings"].append(
                f"draining: new clients are refused, {len(self.sessions)} connected "
                f"client(s) leave at {self.drain.rate:g}/s ({self.drain.moved} gone); "
                "'lvn server undrain' ends it")
        st["draining"] = self.drain.on
        if self.presence is not None:
            st["servers"] = self.presence.servers()
        if self.mesh:
            st["mesh"] = {server: {"address": p.address, "port": p.port, "tunnel": tid,
                                   "routes": len(p.prefixes)}
                          for server, (p, tid) in sorted(self.mesh.items())}
        return st

    def set_draining(self, on: bool, rate: int | None = None) -> dict[str, Any]:
        """Begin or end a drain (``lvn server drain``/``undrain``, ubus)."""
        if on:
            self.drain.start(rate or self.conf.drain_rate, time.monotonic())
            log.info("draining at %g client(s)/s: %d connected", self.drain.rate,
                     len(self.sessions))
        elif self.drain.on:
            self.drain.stop()
            log.info("drain ended: %d client(s) sent away; joins welcome again",
                     self.drain.moved)
        return {"draining": self.drain.on, "rate": self.drain.rate,
                "clients": len(self.sessions), "moved": self.drain.moved}

    def _drain_some(self, now: float) -> None:
        for s, conn, name in list(self.sessions.values())[:self.drain.due(now, len(self.sessions))]:
            log.info("%r: draining: sent to another server", name)
            _say_error(conn, drain.CODE, drain.TEXT)
            self._end_session(s, conn, name)

    def _rebalance(self, now: float) -> None:
        """Send a client to a server with room (lvn/balance.py)."""
        if self.presence is None or self.drain.on or not self.sessions:
            return
        others = self.presence.others(now)
        if not others:  # (no other server: no list of sessions built each tick)
            return
        names = {n: (s, conn) for s, conn, n in self.sessions.values()}
        name = self.balance.pick(now, list(names), self.conf.capacity, others)
        if name is not None:
            s, conn = names[name]
            log.info("%r: rebalance: sent to another server (%d client(s) here of %d; "
                     "%d sent so far)", name, len(self.sessions), self.conf.capacity,
                     self.balance.moved)
            _say_error(conn, balance.CODE, balance.TEXT)
            self._end_session(s, conn, name)

    def _check_crl(self, now: float, force: bool = False) -> None:
        """Read the revocation list again when its file changed (or ``force``:
        a reload); warn daily while it is about to expire."""
        if self.crl is None or (not force and now < self.next_crl_check):
            return
        self.next_crl_check = now + CRL_CHECK
        path = self.crl.path
        if force or crl.signature(path) != self.crl.signature:
            try:
                ctx = tls_context(self.conf.ca, self.conf.cert, self.conf.key, path, server=True)
                new = crl.read(path)
            except LvnError as e:
                log.error("%s; keeping the list read before", e)
                self.crl = crl.Crl(path, crl.signature(path), self.crl.next_update,
                                   self.crl.serials)  # no error per check
            else:
                self.ctx, self.crl = ctx, new
                log.info("revocation list %s read: %d revoked", path, len(new.serials))
                self._end_revoked()
        warn = crl.warning(self.crl, time.time())
        # daily, and at once when "expires in" turns into "expired"
        expired = bool(warn) and crl.expired(self.crl, time.time())
        if warn and (not self.crl_warned or now - self.crl_warned > 86400
                     or expired != self.crl_warned_expired):
            self.crl_warned, self.crl_warned_expired = now, expired
            log.warning("%s", warn)

    def _end_revoked(self) -> None:
        """End the sessions (and remove the tunnels, release the leases) of
        identities whose certificate the revocation list now names."""
        assert self.crl is not None
        revoked = {n for n, serial in self.serial_of.items() if serial in self.crl.serials}
        for name in revoked:
            self._end_sessions_of(name, "revoked", "this certificate has been revoked")
            log.warning("%r: certificate revoked: session ended, tunnel removed, "
                        "lease released", name)
            self._remove_tunnel(name)
            try:
                self.leases.release(name)
            except LvnError as e:  # etcd away: the lease TTL releases it later
                log.warning("%r: releasing the lease: %s", name, e)
            del self.serial_of[name]

    def _expire_leases(self, now: float) -> None:
        if now < self.next_lease_check:
            return
        self.next_lease_check = now + LEASE_CHECK
        active = {n for _, _, n in self.sessions.values()} | self.tunnels.names()
        for name in self.leases.expire(time.time(), self.conf.lease_ttl * 86400.0, active):
            log.info("%r: not seen for %d days: lease released", name, self.conf.lease_ttl)

    def tick(self, now: float) -> None:
        self._check_crl(now)
        self._expire_leases(now)
        self._drain_some(now)
        self._rebalance(now)
        if self.presence is not None:
            self.presence.update(frozenset(n for _, _, n in self.sessions.values()),
                                 self.drain.on)
            self._update_mesh()
        if self.source_cap < MAX_PENDING_PER_SOURCE and now - self.shed_at > SHED_FOR:
            self.source_cap = MAX_PENDING_PER_SOURCE
        if self.accept_paused:
            self.accept_paused = False
            self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        for s, conn, name in list(self.sessions.values()):
            if self.sessions.get(s.session) is not None:  # not ended by an earlier one
                self._guarded(s, conn, name, s.on_timer(now))
        for conn, since in list(self.pending.items()):
            if now - since > HANDSHAKE_TIMEOUT:
                log.warning("TLS handshake not finished in %.0f s: closing", HANDSHAKE_TIMEOUT)
                self._close_conn(conn)
        for source, n in self.limiter.report().items():
            log.warning("rate limit: closed %d new connection(s) from %s (over %d/s, "
                        "burst %d)", n, source, self.conf.conn_rate, self.conf.conn_burst)
        for check in self.tunnels.due(now):
            try:
                rx = self.kernel.tunnel(self.conf.ifname, check.tunnel_id).last_rx_ms
            except LvnError:
                rx = None  # gone from the kernel
            for gone in self.tunnels.gone(check.name, rx, now):
                self._remove_tunnel(gone.name)

    def apply_live(self, changed: set[str]) -> None:
        self._check_crl(time.monotonic(), force=True)  # a reload reads the list again
        c = self.conf
        self.limiter.rate, self.limiter.burst = c.conn_rate, c.conn_burst
        self.balance.margin, self.balance.rate = c.rebalance_margin, c.drain_rate
        if self.presence is not None:
            self.presence.capacity = c.capacity  # published at its next renewal
        for s, _, _ in self.sessions.values():  # clients learn mtu/keepalive at their next lease
            s.mtu, s.keepalive, s.idle_timeout = c.mtu, c.keepalive, c.idle_timeout
        self.tunnels.set_idle_timeout(c.idle_timeout)
        if "mtu" in changed:
            self.kernel.set_link(c.ifname, mtu=c.mtu)
        log.info("reloaded in place: %s", ", ".join(sorted(changed)) or "nothing changed")

    def close(self) -> None:
        for thread in (self.crl_share, self.presence):
            if thread is not None:
                thread.stop()
        for _, conn, _ in list(self.sessions.values()):
            conn.close()
        for conn in list(self.pending):
            conn.close()
        self.listener.close()
        self.kernel_events.close()
        super().close()


class Client(Agent):
    """The CPython shell of lvn/clientpolicy.py: TLS by pyOpenSSL (the
    server's name and the CRL checked), the kernel by netlink."""

    role = "client"
    LIVE_OPTIONS = frozenset({"up_hook", "down_hook", "keepalive", "dead_after"})

    def __init__(self, conf: ClientConfig, kernel: Ipudp, state_dir: str) -> None:
        super().__init__(kernel, state_dir, conf.ifname, conf.up_hook, conf.down_hook)
        self.conf = conf
        self.ctx = tls_context(conf.ca, conf.cert, conf.key, conf.crl, server=False)
        self.policy = ClientPolicy(list(conf.server), conf.server_port, _valid_from(conf.cert),
                                   random.random, conf.keepalive, conf.dead_after)
        self.conn: TlsConn | None = None

    @property
    def expected_name(self) -> str:
        return str(self.conf.expected_name(self.policy.server()))

    def _ensure_device(self, family: int) -> None:
        k, ifname = self.kernel, self.conf.ifname
        if ifname not in {d.ifname for d in k.devices()}:
            k.add_device(ifname)
        if family in self.udp:
            return
        for other in list(self.udp):  # the server changed address family
            self._detach(other)
        dev = k.device(ifname)
        if self.conf.data_port:
            if dev.port != self.conf.data_port:
                k.set_device(ifname, port=self.conf.data_port)
            self._attach(family, None)
        elif _family_name(family) in dev.sockets:
            # an earlier run handed its port to the kernel: take it back, so
            # the NAT binding and the server's tunnel stay as they are
            log.info("adopting %s (port %d)", ifname, dev.port)
            self._attach(family, None)
        else:
            self._attach(family, 0)

    def _datagram(self, sock: socket.socket) -> None:
        for _ in range(DATAGRAM_BUDGET):
            try:
                data, _addr = sock.recvfrom(2048)
            except OSError:  # empty (or an ICMP error queued on the socket)
                return
            self._do(self.policy.datagram(data, time.monotonic()))

    def connect(self) -> None:
        try:
            infos = socket.getaddrinfo(self.policy.server(), self.conf.server_port,
                                       type=socket.SOCK_STREAM)
            server_ip = str(infos[0][4][0])
            family = socket.AF_INET6 if ":" in server_ip else socket.AF_INET
            self._ensure_device(family)
            sock = socket.socket(family, socket.SOCK_STREAM)
            tcp_keepalive(sock)
            sock.setblocking(False)
            err = sock.connect_ex((server_ip, self.conf.server_port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                raise OSError(err, os.strerror(err))
        except OSError as e:
            self._do(self.policy.unreachable(str(e), time.monotonic()))
            return
        self.conn = TlsConn(sock, self.ctx, server=False)
        self.sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self._readable)
        self._do(self.policy.connecting(server_ip, time.monotonic()))

    def _send(self, data: bytes, host: str, level: int) -> None:
        """A datagram from the data socket to ``host``'s data port (servers
        of the other address family cannot be reached from it)."""
        for family, sock in self.udp.items():
            try:
                infos = socket.getaddrinfo(host, self.policy.data_port, family, socket.SOCK_DGRAM)
                sock.sendto(data, infos[0][4])
            except OSError as e:
                log.log(level, "sending to %s: %s", host, e)

    def _readable(self) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            data = conn.pump()
        except SSL.Error as e:
            self._do(self.policy.lost(f"session with the server failed: {e}", time.monotonic()))
            return
        if conn.ready and self.policy.session is None:
            names = conn.peer_names()
            cert = compat.peer_certificate(conn.conn)
            if cert is None or not identity.matches(cert, self.expected_name):
                log.error("the server's certificate is for %s, not %r: refusing it "
                          "(set lvn.client.server_name if the name is right)",
                          ", ".join(sorted(map(repr, names))) or "no name",
                          self.expected_name)
                self._do(self.policy.lost("wrong server identity", time.monotonic()))
                return
            self.sel.modify(conn.sock, selectors.EVENT_READ, self._readable)
            self._do(self.policy.secured(time.monotonic()))
        if data:
            self._do(self.policy.received(data, time.monotonic()))
        if conn.closed and self.conn is conn:
            self._do(self.policy.lost("the server closed the connection", time.monotonic()))

    def _do(self, actions: list[clientpolicy.Action]) -> None:
        """Carry out the policy's actions, until a connection they belong
        to is lost on the way."""
        k, ifname, p = self.kernel, self.conf.ifname, self.policy
        s = p.session
        for act in actions:
            if p.session is not s:
                return
            if isinstance(act, session.Send):
                if self.conn is not None:
                    self.conn.send(act.data)
            elif isinstance(act, session.SendDatagram):
                self._send(act.data, p.server_ip, logging.WARNING)
            elif isinstance(act, clientpolicy.Probe):
                # not chosen, unless no server answers
                self._send(act.data, act.server, logging.DEBUG)
            elif isinstance(act, clientpolicy.Log):
                log.log(LOG_LEVELS[act.level], "%s", act.text)
            elif isinstance(act, clientpolicy.Hook):
                self.peer_event(act.event, self.expected_name, p.addresses,
                                (p.server_ip, p.data_port), 0)
            elif isinstance(act, clientpolicy.Connect):
                self.connect()
            elif isinstance(act, clientpolicy.Disconnect):
                if self.conn is not None:
                    try:
                        self.sel.unregister(self.conn.sock)
                    except (KeyError, ValueError):
                        pass
                    self.conn.close()
                self.conn = None
            else:
                try:
                    if isinstance(act, session.Configure):
                        static.apply_lease(k, ifname, act.lease)
                    else:  # OpenTunnel
                        k.set_tunnel(ifname, p.server_ip, remote_port=p.data_port, replace=True)
                        static.apply_sources(k, ifname, p.sources)
                except LvnError as e:
                    self._do(p.lost(f"the kernel refused the tunnel: {e}", time.monotonic()))

    def apply_live(self, changed: set[str]) -> None:
        self.policy.limits(self.conf.keepalive, self.conf.dead_after)
        log.info("reloaded in place: %s", ", ".join(sorted(changed)) or "nothing changed")

    def peers(self) -> list[dict[str, Any]]:
        return [self.policy.peer()]

    def tick(self, now: float) -> None:
        self._do(self.policy.tick(now, time.time(), os.urandom))


def _valid_from(cert: str) -> float:
    """When the certificate at ``cert`` became valid (Unix time)."""
    try:
        c = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except (OSError, ValueError) as e:
        raise LvnError(f"cannot read the certificate {cert}: {e}") from None
    return compat.not_valid_before(c).timestamp()


def _say_error(conn: TlsConn, code: str, text: str) -> None:
    """Tell a client why it goes (it then joins its next server)."""
    conn.send(messages.encode(messages.Error(code, text)))
    conn.flush()  # never raises: an error leaves the connection closed
