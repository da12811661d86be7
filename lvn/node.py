"""The node's client agent for MicroPython: ``micropython -m lvn.node``.

The same session core as the CPython agent (lvn.session, lvn.protocol,
lvn.datagram) driven by MicroPython's own I/O: ``ssl`` (mbedTLS, TLS 1.2,
mutual certificates, the server's name checked against ``server_name``),
``socket`` and ``select.poll``, and raw netlink through lvn.rawnl.  It
reads the ``agent`` and ``client`` sections of /etc/config/lvn with
lvn.uci, writes state_dir/status.json in the CPython agent's shape, and
sleeps until the next keepalive is due when idle.

Usage: see USAGE below (installed as /usr/sbin/lvn-node).  It serves the
lvn ubus object's control socket (lvn/nodecontrol.py).  Stop it with
``--release`` first (the data port goes back to the kernel's own socket,
as the CPython agent does on SIGTERM), then SIGTERM: device and tunnel
stay in the kernel, which keeps forwarding, and the next run takes the
same port back without losing a packet.
"""

import binascii
import errno
import gc
import json
import os
import random
import select
import socket
import ssl
import struct
import sys
import time

from . import (
    LvnError,
    capabilities,
    clientpolicy,
    controlwire,
    files,
    ipudp_abi,
    nlcodec,
    nodecontrol,
    nodeprivilege,
    rawnl,
    replies,
    schema,
    session,
    static,
    uci,
)
from .hookenv import hook_env

try:
    from typing import Any
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

IPPROTO_IPV6 = 41
IPV6_V6ONLY = 26


class NodeError(Exception):
    """A problem the node's operator must fix (the message says which)."""


LOG_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}
_log_level = [1]  # lvn.agent.log_level, set by Node


def log(level: str, text: str) -> None:
    if LOG_LEVELS.get(level, 3) >= _log_level[0]:
        sys.stderr.write("lvn-node " + level + ": " + text + "\n")


def so_reuseport() -> int:
    """SO_REUSEPORT of this CPU's ABI: MicroPython's socket module may not
    name it.  Where SOL_SOCKET is 0xffff (MIPS, SPARC, Alpha, PA-RISC: the
    ath79 and ramips routers) it is 0x200; elsewhere asm-generic's 15."""
    value = getattr(socket, "SO_REUSEPORT", None)
    if value is not None:
        return int(value)
    return 0x200 if socket.SOL_SOCKET == 0xFFFF else 15


class Monotonic:
    """Seconds from a clock that NTP does not step: the session core's
    timers.  MicroPython has only ``ticks_ms``, which wraps (after 2**30 ms
    on the unix port): the wrapped differences are summed, so it must be
    read at least every few days (the agent's loop wakes every keepalive)."""

    def __init__(self) -> None:
        self.ticks = getattr(time, "ticks_ms", None)
        self.last = self.ticks() if self.ticks is not None else 0
        self.total = 0

    def __call__(self) -> float:
        if self.ticks is None:
            return time.monotonic()
        now = self.ticks()
        self.total += time.ticks_diff(now, self.last)  # type: ignore[attr-defined]
        self.last = now
        return self.total / 1000


# -- configuration ---------------------------------------------------------

def read_config(path: str, check_files: bool = False) -> "schema.Typed":
    """Every section of the UCI file at ``path``, checked by lvn.schema (the
    CPython service's checks and messages); NodeError lists every problem."""
    try:
        with open(path) as f:
            pkg = uci.parse(f.read())
    except OSError as e:
        raise NodeError("cannot read " + path + ": " + str(e)) from None
    except uci.UciError as e:
        raise NodeError(path + ": " + str(e)) from None
    typed, problems = schema.check(pkg, check_files)
    if problems:
        raise NodeError("invalid configuration:\n" + "\n".join("  " + str(p) for p in problems))
    return typed


def client_conf(typed: "schema.Typed") -> dict[str, Any]:
    """The agent's and the client's options; NodeError unless the agent is
    on and a client."""
    conf: dict[str, Any] = {}
    for kind in ("agent", "client"):
        for _, values in typed[kind][:1]:
            conf.update(values)
    if conf.get("role", "none") != "client":
        raise NodeError("lvn.agent.role is not 'client': the node agent only runs clients")
    if not conf.get("enabled"):
        raise NodeError("lvn.agent.enabled is not '1': the agent is off")
    if conf.get("crl"):
        raise NodeError("lvn.client.crl: the node's TLS (MicroPython's ssl) cannot check a "
                        "revocation list; remove the option (the server checks the node's "
                        "certificate against its own list) or run lvn-server's CPython agent")
    return conf


def load_config(path: str) -> "tuple[dict[str, Any], dict[str, str]]":
    """The client's options from the UCI file at ``path``, checked, and the
    names of its static tunnels (lvn.replies.static_names)."""
    typed = read_config(path)
    return client_conf(typed), replies.static_names(schema.tunnels(typed))


def pem_der(path: str) -> bytes:
    """The first PEM block of ``path`` as DER (mbedTLS is given DER)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise NodeError("cannot read " + path + ": " + str(e)) from None
    lines = text.strip().splitlines()
    start = [i for i, line in enumerate(lines) if line.startswith("-----BEGIN")]
    end = [i for i, line in enumerate(lines) if line.startswith("-----END")]
    if not start or not end or end[0] <= start[0]:
        raise NodeError(path + " is not a PEM file")
    try:
        return binascii.a2b_base64("".join(lines[start[0] + 1:end[0]]))
    except ValueError:
        raise NodeError(path + ": bad base64 in the PEM block") from None


def load_cert_chain(ctx: "ssl.SSLContext", cert: bytes, key: bytes, cert_path: str,
                    key_path: str) -> None:
    """The node's certificate and key, as DER; MicroPython 1.23 hands mbedTLS
    one byte more than the key (room for a PEM's NUL), which DER parsing
    refuses ("invalid key"): then the PEM files themselves (NUL-terminated
    in MicroPython's bytes).  Releases from 1.24 on take DER."""
    try:
        ctx.load_cert_chain(cert, key)
        return
    except ValueError:
        pass
    pem = []
    for path in (cert_path, key_path):
        with open(path, "rb") as f:
            pem.append(f.read())
    ctx.load_cert_chain(pem[0], pem[1])


def _der(buf: bytes, off: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER item at ``off``."""
    tag, n = buf[off], buf[off + 1]
    off += 2
    if n & 0x80:
        size, n = n & 0x7F, 0
        for i in range(size):
            n = n << 8 | buf[off + i]
        off += size
    return tag, off, off + n


def valid_from(cert_der: bytes) -> float:
    """The certificate's notBefore (Unix time): Certificate > TBSCertificate
    > [version] serial signature issuer validity."""
    _, off, _ = _der(cert_der, 0)
    _, off, _ = _der(cert_der, off)          # TBSCertificate contents
    tag, _, end = _der(cert_der, off)
    if tag == 0xA0:                            # explicit version
        off = end
    for _ in range(3):                         # serial, signature, issuer
        off = _der(cert_der, off)[2]
    _, off, _ = _der(cert_der, off)            # validity contents
    tag, start, end = _der(cert_der, off)
    text = bytes(cert_der[start:end]).decode()
    if tag == 0x17:                            # UTCTime YYMMDDHHMMSSZ
        year = int(text[0:2])
        text = ("19" if year >= 50 else "20") + text
    fields = [int(text[i:i + 2]) for i in range(4, 14, 2)]
    days = _days_from_civil(int(text[0:4]), fields[0], fields[1])
    return float(days * 86400 + fields[2] * 3600 + fields[3] * 60 + fields[4])


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# -- the agent ---------------------------------------------------------------

def _sockaddr(host: str, port: int) -> Any:
    return socket.getaddrinfo(host, port)[0][-1]


class Node:
    def __init__(self, conf: dict[str, Any], kernel: rawnl.Kernel,
                 config_path: str = "/etc/config/lvn",
                 static_names: "dict[str, str] | None" = None) -> None:
        self.conf = conf
        self.config_path = config_path
        self.static_names = static_names or {}  # "ifname/id" -> its config tunnel section
        self.config_errors: list[str] = []  # why the last reload was refused
        self.last_reload: float | None = None
        self.listener: socket.socket | None = None
        self.kernel = kernel
        self.ifname = conf["ifname"]
        self.ca = pem_der(conf["ca"])
        self.cert = pem_der(conf["cert"])
        self.key = pem_der(conf["key"])
        self.policy = clientpolicy.ClientPolicy(
            conf["server"], int(conf["server_port"]), valid_from(self.cert), random.random,
            int(conf["keepalive"]), int(conf["dead_after"]))
        self.state_dir = conf["state_dir"]
        self.poll = select.poll()
        self.udp: socket.socket | None = None
        self.tls: Any = None  # ssl.SSLSocket (MicroPython's has read/write)
        self.out = b""  # bytes for the server that the socket did not take yet
        self.tcp_up = False  # the TCP connect finished (poll said so)
        self.tls_up = False  # the TLS handshake finished (a write went through)
        self.raw: socket.socket | None = None
        self.written: dict[str, Any] | None = None
        self.wakeups = 0  # loop iterations: I/O or a timer woke the agent
        # the most heap in use seen at a wake-up (micropython.mem_peak()
        # counts every allocation ever made: 2.4 MB in a 1 MiB heap)
        self.heap_peak = 0
        self.clock = Monotonic()
        _log_level[0] = LOG_LEVELS[conf.get("log_level", "info")]

    # status.json, as the CPython client writes it
    def status(self) -> dict[str, Any]:
        node: dict[str, int] = {"wakeups": self.wakeups}
        if hasattr(gc, "mem_alloc"):
            node["heap_used"] = gc.mem_alloc()
            node["heap_peak"] = self.heap_peak
        return {"role": "client", "node": node, "peers": [self.policy.peer()]}

    def write_status(self) -> None:
        st = self.status()
        if st == self.written:
            return
        files.write_atomic(self.state_dir + "/status.json", (json.dumps(st) + "\n").encode(),
                           0o600)
        self.written = st

    # -- the lvn ubus object (lvn/nodecontrol.py) ---------------------------
    def serve_control(self, path: str) -> None:
        self.listener = nodecontrol.listen(path)
        self.poll.register(self.listener, select.POLLIN)

    def call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One method of the lvn ubus object, as the CPython service answers it."""
        if method in nodecontrol.SERVER_ONLY:
            raise nodecontrol.not_on_node(method)
        if method == "reload":
            return self.reload()
        if method == "validate":
            try:
                problems = schema.check_sections(args.get("sections"))
            except ValueError as e:
                raise controlwire.CallError(controlwire.INVALID_ARGUMENT, str(e)) from None
            return {"valid": not problems, "errors": [str(p) for p in problems]}
        if method == "peers":
            return {"peers": self.status()["peers"]}
        try:
            devices = [(d.ifname, d.mode, d.port, self.kernel.tunnels(d.ifname))
                       for d in self.kernel.devices()]
        except rawnl.KernelRefused as e:
            raise controlwire.CallError(controlwire.UNKNOWN_ERROR, str(e)) from None
        if method == "tunnels":
            ifname = args.get("ifname")
            return replies.tunnels(devices, self.static_names,
                                   None if ifname is None else str(ifname))
        return replies.status("client", True, self.config_path, self.config_errors,
                              self.last_reload, devices, self.status()["peers"], [])

    def reload(self) -> dict[str, Any]:
        """Read the configuration again; a changed client section reconnects.
        An invalid file is refused and the running session stays."""
        try:
            conf, names = load_config(self.config_path)
            creds = [pem_der(conf[k]) for k in ("ca", "cert", "key")]
            if conf["ifname"] != self.ifname or conf["data_port"] != self.conf["data_port"]:
                raise NodeError("lvn.client: a new ifname or data_port takes effect at the "
                                "next start (service lvn restart)")
        except NodeError as e:
            self.config_errors = [str(e)]
            log("error", "reload refused, keeping the running configuration: " + str(e))
            return {"ok": False, "errors": list(self.config_errors)}
        self.config_errors = []
        self.last_reload = time.time()
        self.static_names = names
        if conf.get("capabilities") != self.conf.get("capabilities"):
            log("warning", "lvn.agent.capabilities changed: it takes effect at the next "
                "start (service lvn restart)")
            conf["capabilities"] = self.conf.get("capabilities")
        if conf == self.conf and creds == [self.ca, self.cert, self.key]:
            return {"ok": True, "changes": []}
        self.conf = conf
        self.ca, self.cert, self.key = creds
        p = self.policy
        p.server_port = int(conf["server_port"])
        p.limits(int(conf["keepalive"]), int(conf["dead_after"]))
        self._do(p.restart(conf["server"], valid_from(self.cert), self.clock()))
        return {"ok": True, "changes": ["client: joining " + p.server() + " again"]}

    def _device(self) -> dict[str, int]:
        dev = self.kernel.device(self.ifname)
        if dev is None:
            self.kernel.add_device(self.ifname)
            dev = self.kernel.device(self.ifname)
        if dev is None:
            raise rawnl.KernelRefused("creating " + self.ifname, rawnl.ENODEV, "gone again")
        return dev

    def _attach(self, family: int) -> None:
        """Hand a data socket to the kernel: unbound when the device already
        has a socket of ours (an earlier run: take its port back, so the NAT
        binding and the server's tunnel stay), else on ``data_port``."""
        dev = self._device()
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, so_reuseport(), 1)
        if family == socket.AF_INET6:
            s.setsockopt(IPPROTO_IPV6, IPV6_V6ONLY, 1)
        # a module socket of this family: an earlier run left the port to the
        # kernel (its socket went with it), take it back
        module = ipudp_abi.SOCK_F_V6 if family == socket.AF_INET6 else ipudp_abi.SOCK_F_V4
        port = int(self.conf["data_port"])
        if port and dev["port"] != port:
            self.kernel.set_device(self.ifname, port=port)
        elif not port and not dev["sock_flags"] & module:
            s.bind(_sockaddr("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        else:
            log("info", "adopting " + self.ifname + " (port " + str(dev["port"]) + ")")
        try:
            self.kernel.set_device(self.ifname, fd=s.fileno())
        except rawnl.KernelRefused:
            s.close()
            raise
        s.setblocking(False)
        self.udp = s
        self.poll.register(s, select.POLLIN)

    def connect(self) -> None:
        """Start joining: the TCP connect and the TLS handshake go on without
        blocking (the loop drives them by poll), so the control socket is
        answered meanwhile; the session's handshake timer ends an attempt
        that brings no LEASE.  mbedTLS checks the server's certificate
        before HELLO, queued now, can go."""
        p = self.policy
        try:
            info = socket.getaddrinfo(p.server(), p.server_port)[0]
            family, addr = info[0], info[-1]
            if self.udp is None:
                self._attach(family)
            raw, tls = open_tls(family, addr, self.ca, (self.cert, self.key, self.conf["cert"],
                                                        self.conf["key"]),
                                self.server_name())
        except (OSError, ValueError, rawnl.KernelRefused) as e:
            self._do(p.unreachable(self._why(e), self.clock()))
            return
        self.tls, self.raw, self.out = tls, raw, b""
        self.tcp_up = self.tls_up = False
        self.poll.register(raw, select.POLLIN | select.POLLOUT)
        now = self.clock()
        self._do(p.connecting(_addr_text(addr), now) + p.secured(now))

    def _why(self, e: Exception) -> str:
        """The reason of a failed connection; mbedTLS's refusal of the
        server's name is logged as such."""
        why = _reason(e)
        if "CN" in why or "Common Name" in why:  # mbedTLS's name check
            log("error", "the server's certificate is not for " +
                repr(self.server_name()) + ": refusing it (set "
                "lvn.client.server_name if the name is right; " + why + ")")
            why = "wrong server identity"
        return why

    def _flush(self) -> None:
        """Write what is queued for the server, as far as the socket takes
        it; nothing goes while the TCP connect or the TLS handshake is
        under way (each call drives the handshake on).  POLLOUT is asked
        for until the connect finishes, and after the handshake while
        bytes are left; during the handshake the server's answers (POLLIN)
        drive it, so an idle socket never wakes the loop in vain."""
        while self.out and self.tls is not None:
            try:
                n = self.tls.write(self.out)
            except (OSError, ValueError) as e:
                self._failed(e)
                return
            if not n:
                break
            self.tls_up = True
            self.out = self.out[n:]
        if self.raw is not None:
            more = not self.tcp_up or (self.tls_up and self.out)
            self.poll.modify(self.raw, select.POLLIN | (select.POLLOUT if more else 0))

    def server_name(self) -> str:
        return str(self.conf.get("server_name") or self.policy.server())

    def _failed(self, e: Exception) -> None:
        self._do(self.policy.lost("session with the server failed: " + self._why(e),
                                  self.clock()))

    def _readable(self) -> None:
        self._flush()  # the handshake may need a write first, and HELLO waits
        while self.tls is not None:
            try:
                data = self.tls.read(4096)
            except (OSError, ValueError) as e:
                self._failed(e)
                return
            if data is None:
                break
            self._do(self.policy.received(data, self.clock()) if data else
                     self.policy.lost("the server closed the connection", self.clock()))

    def _datagrams(self) -> None:
        """Answers to our keepalives (the server lives), at most a budget a wake-up."""
        for _ in range(64):
            try:
                data = self.udp.recv(2048) if self.udp is not None else None
            except OSError:  # EAGAIN: nothing more
                return
            if not data:
                return
            self._do(self.policy.datagram(data, self.clock()))

    def _hook(self, event: str) -> None:
        script = self.conf.get(event + "_hook")
        p = self.policy
        if script:
            run_hook(script, hook_env(event, "client", self.ifname, self.server_name(),
                                      p.addresses, (p.server_ip, p.data_port), 0))

    def _send(self, data: bytes, host: str) -> None:
        """A datagram from the data socket to ``host``'s data port."""
        if self.udp is not None and self.policy.data_port:
            try:
                self.udp.sendto(data, _sockaddr(host, self.policy.data_port))
            except OSError as e:
                log("warning", "sending to " + host + ": " + _reason(e))

    def _do(self, actions: "list[clientpolicy.Action]") -> None:
        """Carry out the policy's actions, until a connection they belong
        to is lost on the way."""
        p = self.policy
        s = p.session
        for act in actions:
            if p.session is not s:
                return
            if isinstance(act, session.Send):
                if self.tls is not None:
                    self.out += act.data
                    self._flush()
            elif isinstance(act, session.SendDatagram):
                self._send(act.data, p.server_ip)
            elif isinstance(act, clientpolicy.Probe):
                self._send(act.data, act.server)
            elif isinstance(act, clientpolicy.Log):
                log(act.level, act.text)
            elif isinstance(act, clientpolicy.Hook):
                self._hook(act.event)
            elif isinstance(act, clientpolicy.Connect):
                self.connect()
            elif isinstance(act, clientpolicy.Disconnect):
                if self.raw is not None:
                    self.poll.unregister(self.raw)
                    try:
                        self.tls.close()
                    except OSError:
                        pass
                self.tls = self.raw = None
            else:
                try:
                    if isinstance(act, session.Configure):
                        self._device()
                        static.apply_lease(self.kernel, self.ifname, act.lease)
                    else:  # OpenTunnel
                        self.kernel.set_tunnel(self.ifname, p.server_ip, p.data_port,
                                               replace=True)
                        static.apply_sources(self.kernel, self.ifname, p.sources)
                except rawnl.KernelRefused as e:
                    self._do(p.lost("the kernel refused the tunnel: " + str(e), self.clock()))

    def run(self) -> None:
        while True:
            self.wakeups += 1
            if hasattr(gc, "mem_alloc"):
                self.heap_peak = max(self.heap_peak, gc.mem_alloc())
            self._do(self.policy.tick(self.clock(), time.time(), os.urandom))
            self.write_status()
            now = self.clock()
            wait = max(0, int((self.policy.wake_at(now) - now) * 1000) + 1)
            for obj, _ in self.poll.poll(wait):
                fd = _fd(obj)
                if self.listener is not None and fd == self.listener.fileno():
                    nodecontrol.serve_one(self.listener, self.call)
                elif self.udp is not None and fd == self.udp.fileno():
                    self._datagrams()
                else:
                    self.tcp_up = True  # the connect finished (or failed: read says)
                    self._readable()


_CLOSED = (32, 104)  # EPIPE, ECONNRESET


def _fd(obj: object) -> int:
    """poll() gives the registered object on MicroPython, its fd on CPython."""
    return obj if isinstance(obj, int) else obj.fileno()  # type: ignore[attr-defined]


def _reason(e: Exception) -> str:
    """Words for a connection or TLS failure (MicroPython's OSError shows a
    bare number, mbedTLS's errors a code and its name)."""
    if isinstance(e, OSError) and e.args and e.args[0] in _CLOSED:
        return ("the server closed the connection during the TLS handshake (did it "
                "refuse our certificate? see its log)")
    if isinstance(e, OSError) and len(e.args) > 1:
        return str(e.args[1]).strip()
    if isinstance(e, OSError) and e.args and isinstance(e.args[0], int):
        return str(errno.errorcode.get(e.args[0], "errno " + str(e.args[0])))
    return str(e).strip()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def run_hook(script: str, env: dict[str, str]) -> None:
    """Start ``script EVENT`` in the background with the LVN_* variables
    (os.system through the shell: MicroPython has no subprocess)."""
    assigns = " ".join(k + "=" + _quote(v) for k, v in env.items())
    cmd = "env " + assigns + " " + _quote(script) + " " + env["LVN_EVENT"]
    if os.system(cmd + " </dev/null >/dev/null 2>&1 &") != 0:
        log("warning", env["LVN_EVENT"] + " hook " + script + ": cannot start")


def open_tls(family: int, addr: "Any", ca: bytes, creds: "tuple[bytes, bytes, str, str]",
             server_name: str) -> "tuple[socket.socket, Any]":
    """A non-blocking TCP connect to ``addr`` and a TLS client over it that
    has not shaken hands yet: the handshake goes on in the socket's reads
    and writes, which return None until it is done (MicroPython's ssl).
    ``creds``: certificate and key as DER, and their files (for messages)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca)
    load_cert_chain(ctx, *creds)
    raw = socket.socket(family, socket.SOCK_STREAM)
    try:
        raw.setblocking(False)
        try:
            raw.connect(addr)
        except OSError as e:
            if e.args[0] != errno.EINPROGRESS:
                raise
        return raw, ctx.wrap_socket(raw, server_hostname=server_name,
                                    do_handshake_on_connect=False)
    except Exception:
        raw.close()
        raise


def _addr_text(addr: object) -> str:
    """The address of a sockaddr: a (host, port) tuple on CPython, the raw
    struct sockaddr_in/_in6 bytes on MicroPython."""
    if isinstance(addr, tuple):
        return str(addr[0])
    raw = bytes(addr)  # type: ignore[call-overload]
    family = struct.unpack("H", raw[:2])[0]
    if family == socket.AF_INET6:
        return str(nlcodec.ip_text(raw[8:24]))
    return str(nlcodec.ip_text(raw[4:8]))


def release(conf: dict[str, Any], kernel: rawnl.Kernel) -> None:
    """Hand the device's data port back to the kernel's own sockets, so that
    stopping the agent loses no packet and the next run adopts the port.
    (The CPython agent does this on SIGTERM; MicroPython has no signal
    handlers, so the init script runs ``lvn.node --release`` first.)"""
    dev = kernel.device(conf["ifname"])
    user = ipudp_abi.SOCK_F_V4_USER | ipudp_abi.SOCK_F_V6_USER
    if dev is None or not dev["sock_flags"] & user:
        log("info", conf["ifname"] + ": no data socket of the agent to release")
        return
    kernel.set_device(conf["ifname"], return_fd=True)
    log("info", conf["ifname"] + ": data port " + str(dev["port"]) + " handed to the kernel")


USAGE = """usage: lvn-node [--control PATH] [CONFIG]   run the client agent
       lvn-node --release [CONFIG]          hand the data port to the kernel (before a stop)
       lvn-node validate [CONFIG]           check the whole file (as lvn config validate)
       lvn-node apply [--dry-run] [--flush] [--state PATH] [CONFIG]
                                            make the kernel match the static tunnels
       lvn-node show                        the kernel's ipudp devices, tunnels, rules
       lvn-node status|reload [--control PATH]
                                            ask the running agent (as ubus call lvn ...)"""


def validate(path: str) -> int:
    """``lvn-node validate``: every section, certificate files included."""
    typed = read_config(path, check_files=True)
    agent = typed["agent"][0][1] if typed["agent"] else {}
    what = "static tunnels: " + str(len([t for t in schema.tunnels(typed) if t.enabled])) \
        + " enabled"
    if agent.get("enabled") and agent.get("role") == "client":
        conf = client_conf(typed)
        for k in ("ca", "cert", "key"):
            pem_der(conf[k])
        what = "client of " + ", ".join(conf["server"]) + ", " + what
    elif agent.get("enabled") and agent.get("role") == "server":
        what = "the server role needs lvn-server, " + what
    print(path + ": valid (" + what + ")")
    return 0


def apply(path: str, kernel: rawnl.Kernel, state: str, dry_run: bool, flush: bool) -> int:
    """``lvn-node apply``: the static tunnels of lvn.static, as ``lvn apply``."""
    tunnels = [] if flush else schema.tunnels(read_config(path))
    acts = static.apply(kernel, tunnels, state, dry_run)
    for act in acts:
        print(("would " if dry_run else "") + str(act))
    if not acts:
        print("nothing to change")
    return 0


def show(kernel: rawnl.Kernel) -> int:
    """``lvn-node show``: what the kernel has, as JSON (no agent needed)."""
    out = []
    for dev in kernel.devices():
        mtu, up = kernel.link(dev.ifname)
        out.append({"ifname": dev.ifname, "mode": dev.mode, "port": dev.port, "mtu": mtu,
                    "up": up, "addresses": kernel.addresses(dev.ifname),
                    "tunnels": kernel.tunnels(dev.ifname),
                    "rules": [{"prefix": r.prefix, "tunnel_id": r.tunnel_id, "kind": r.kind}
                              for r in kernel.rules(dev.ifname)]})
    print(json.dumps({"devices": out}))
    return 0


def _ask(path: str, methods: list[str]) -> int:
    out: dict[str, Any] = {}
    for method in methods:
        try:
            status, data = nodecontrol.call(path, method)
        except (OSError, ValueError) as e:
            log("error", "the lvn service is not running (" + path + ": " + _reason(e) + ")")
            return 1
        if status != controlwire.OK:
            log("error", method + ": " + str(data.get("error", "ubus status " + str(status))))
            return 1
        out.update(data)
    print(json.dumps(out))
    if out.get("ok", True):
        return 0
    for error in out.get("errors", []):
        log("error", "refused: " + str(error))
    return 1


def _option(args: list[str], name: str) -> "str | None":
    """Remove ``name VALUE`` from ``args``; its value (ValueError if none)."""
    if name not in args:
        return None
    i = args.index(name)
    if i + 1 >= len(args):
        raise ValueError(name + " needs a value")
    value = args[i + 1]
    del args[i:i + 2]
    return value


def _flag(args: list[str], name: str) -> bool:
    if name in args:
        args.remove(name)
        return True
    return False


COMMANDS = ("status", "reload", "validate", "apply", "show")


def main(argv: list[str]) -> int:
    args = argv[1:]
    try:
        control = _option(args, "--control") or nodecontrol.DEFAULT_PATH
        state = _option(args, "--state") or static.STATE_FILE
    except ValueError:
        sys.stderr.write(USAGE + "\n")
        return 2
    command = args.pop(0) if args and args[0] in COMMANDS else "run"
    if _flag(args, "--release"):
        command = "release" if command == "run" else "?"
    dry_run, flush = _flag(args, "--dry-run"), _flag(args, "--flush")
    if (len(args) > 1 or (args and args[0].startswith("-")) or command == "?"
            or (args and command in ("status", "reload", "show"))
            or ((dry_run or flush) and command != "apply")):
        sys.stderr.write(USAGE + "\n")
        return 2
    if command == "status":
        return _ask(control, ["status", "peers", "tunnels"])
    if command == "reload":
        return _ask(control, ["reload"])
    path = args[0] if args else "/etc/config/lvn"
    try:
        if command == "validate":
            return validate(path)
        kernel = rawnl.Kernel()
        if command == "apply":
            return apply(path, kernel, state, dry_run, flush)
        if command == "show":
            return show(kernel)
        conf, names = load_config(path)
        if command == "release":
            release(conf, kernel)
            return 0
        node = Node(conf, kernel, path, names)
        node.serve_control(control)
    except (NodeError, rawnl.KernelRefused, LvnError) as e:
        log("error", str(e))
        return 1
    except OSError as e:
        where = "control socket " + control if command == "run" else command
        log("error", where + ": " + _reason(e))
        return 1
    try:
        kept = nodeprivilege.drop(conf.get("capabilities") or ())
        log("info", "capabilities kept: " + (", ".join(capabilities.names(kept)) or "none"))
    except OSError as e:
        # OpenWrt's micropython has ffi: this is another build
        log("warning", "running with all of root's capabilities: cannot drop them: "
            + _reason(e))
    log("info", "client " + conf["ifname"] + " for " + ", ".join(conf["server"]))
    node.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
