"""Client and server session state machines (sans-I/O).

A session is fed events (a control message, a datagram from the data
socket, the clock) and answers with actions, plain tuples the agent
carries out:

    ("send", bytes)            write to the TLS control channel
    ("datagram", bytes)        send from the data socket to the peer
    ("lease", want)            server: allocate addresses, then call leased()
    ("tunnel", address, port)  set up / move the tunnel to this endpoint
    ("configure", fields)      client: apply the LEASE (addresses, MTU)
    ("up",)                    the tunnel is established
    ("close", reason)          end the session (after the sends before it)

Times are seconds from a monotonic clock passed in by the caller.  Pure and
MicroPython-friendly, like lvn/protocol.py and lvn/datagram.py.
"""

from . import datagram, protocol

HANDSHAKE_TIMEOUT = 30.0
PROBE_INTERVAL = 1.0


def _error(code: str, text: str) -> list[tuple[object, ...]]:
    return [("send", protocol.encode(protocol.ERROR, {"code": code, "text": text})),
            ("close", code + ": " + text)]


def _hex(value: object) -> bytes:
    try:
        return bytes.fromhex(str(value))
    except ValueError:
        return b""


class ServerSession:
    """One client, from TLS handshake to tunnel, keepalives and idle removal."""

    def __init__(self, key: bytes, session: bytes, now: float, data_port: int, mtu: int,
                 keepalive: int, idle_timeout: int) -> None:
        self.key = key
        self.session = session
        self.data_port = data_port
        self.mtu = mtu
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self.state = "hello"
        self.started = now
        self.last_seen = now
        self.counter = 0          # highest datagram counter accepted
        # (address, port) the authenticated datagrams came from
        self.endpoint: tuple[str, int] | None = None
        self.addresses: list[str] = []  # the lease, once granted

    def on_message(self, mtype: int, body: dict[str, object]) -> list[tuple[object, ...]]:
        if mtype in (protocol.BYE, protocol.ERROR):
            return [("close", "peer: " + str(body.get("text", "bye")))]
        if self.state == "hello" and mtype == protocol.HELLO:
            self.state = "leasing"
            want = body["want"]
            return [("lease", [w for w in want if isinstance(w, str)]
                     if isinstance(want, list) else [])]
        if self.state == "ready" and mtype == protocol.READY:
            self.state = "up"
            return [("up",)]
        return _error("unexpected", protocol.NAMES[mtype] + " in state " + self.state)

    def leased(self, addresses: list[str], error: str = "") -> list[tuple[object, ...]]:
        """The agent's answer to a ("lease", ...) action."""
        if error:
            return _error("lease", error)
        self.state = "probe"
        self.addresses = list(addresses)
        fields: dict[str, object] = {"session": self.session.hex(), "key": self.key.hex(),
                                     "data_port": self.data_port, "mtu": self.mtu,
                                     "keepalive": self.keepalive}
        for a in addresses:
            fields["addr6" if ":" in a else "addr4"] = a
        return [("send", protocol.encode(protocol.LEASE, fields))]

    def on_datagram(self, address: str, port: int, data: bytes,
                    now: float) -> list[tuple[object, ...]]:
        """A datagram for this session; forged or replayed ones change nothing."""
        if self.state not in ("probe", "ready", "up"):
            return []
        try:
            mtype, counter = datagram.open_(data, self.key, self.counter)
        except datagram.DatagramError:
            return []
        self.counter = counter
        self.last_seen = now
        moved = self.endpoint != (address, port)
        self.endpoint = (address, port)
        if mtype == datagram.PROBE and self.state == "probe":
            self.state = "ready"
            return [("tunnel", address, port),
                    ("send", protocol.encode(protocol.ENDPOINT,
                                             {"address": address, "port": port}))]
        if moved and self.state in ("ready", "up"):
            return [("tunnel", address, port)]   # roaming / NAT rebinding
        return []

    def on_timer(self, now: float) -> list[tuple[object, ...]]:
        if self.state == "up":
            if now - self.last_seen > self.idle_timeout:
                return [("close", "idle")]
            return []
        if now - self.started > HANDSHAKE_TIMEOUT:
            return _error("timeout", "handshake not finished in time")
        return []


class ClientSession:
    """The client's side: HELLO, apply the lease, probe, keep alive."""

    def __init__(self, now: float, want: list[str]) -> None:
        self.key = b""  # the datagram key, from LEASE
        self.want = want
        self.state = "start"
        self.started = now
        self.counter = 0
        self.session = b""
        self.keepalive = 0
        self.next_datagram = 0.0

    def start(self) -> list[tuple[object, ...]]:
        self.state = "lease"
        return [("send", protocol.encode(protocol.HELLO, {"want": self.want}))]

    def _datagram(self, mtype: int, now: float, interval: float) -> tuple[object, ...]:
        self.counter += 1
        self.next_datagram = now + interval
        return ("datagram", datagram.seal(mtype, self.session, self.counter, self.key))

    def on_message(self, mtype: int, body: dict[str, object],
                   now: float) -> list[tuple[object, ...]]:
        if mtype in (protocol.BYE, protocol.ERROR):
            return [("close", "server: " + str(body.get("text", "bye")))]
        if self.state == "lease" and mtype == protocol.LEASE:
            self.session = _hex(body["session"])
            if len(self.session) != datagram.SESSION_SIZE:
                return _error("protocol", "bad session id")
            key = _hex(body["key"])
            if len(key) != datagram.KEY_SIZE:
                return _error("protocol", "bad datagram key")
            self.key = key
            keepalive = body["keepalive"]
            self.keepalive = keepalive if isinstance(keepalive, int) else 25
            self.state = "probe"
            return [("configure", body),
                    self._datagram(datagram.PROBE, now, PROBE_INTERVAL)]
        if self.state == "probe" and mtype == protocol.ENDPOINT:
            self.state = "up"
            self.next_datagram = now + self.keepalive
            return [("tunnel",), ("send", protocol.encode(protocol.READY)), ("up",)]
        return _error("unexpected", protocol.NAMES[mtype] + " in state " + self.state)

    def on_timer(self, now: float) -> list[tuple[object, ...]]:
        if self.state == "probe":
            if now - self.started > HANDSHAKE_TIMEOUT:
                return _error("timeout", "no answer to the probe (UDP blocked?)")
            if now >= self.next_datagram:
                return [self._datagram(datagram.PROBE, now, PROBE_INTERVAL)]
        elif self.state == "up" and now >= self.next_datagram:
            return [self._datagram(datagram.KEEPALIVE, now, self.keepalive)]
        elif self.state == "lease" and now - self.started > HANDSHAKE_TIMEOUT:
            return _error("timeout", "no lease from the server")
        return []
