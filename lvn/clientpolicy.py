"""The client's policy (sans-I/O, both interpreters): one object that the
CPython client (lvn/agent.py) and the MicroPython node (lvn/node.py)
both drive, so that they join, apply a lease, lose a session and come
back the same way.

It owns the session (lvn/session.py) and ``Rejoin``, which says when
to join again: the back-off with jitter after a failed join or a lost
session, the wait for a valid clock, and which of its servers.  The
shell tells it what happened -- a tick of the
monotonic clock, a connection started, refused or secured, bytes and
datagrams from the server, a connection lost -- and carries out the
actions it answers with, in order: the session's own (``Send``,
``SendDatagram``, ``Configure``, ``OpenTunnel``) and the few below.
What the shell needs to carry one out (the server's address and data
port, the leased addresses and sources) is read off this object.

Which server: a client that knows its servers' shared probe key (from
its last LEASE) asks each of them for its load before a join (LOAD_PROBE,
answered with LOAD, lvn/datagram.py) and joins the least loaded one that
answered within PROBE_WAIT; of servers within SAME_LOAD of that load, the
one that answered first (the shortest round trip).  A server that drains
answers "no room"; one that does not answer is not chosen, nor the one
the client just failed with or was sent away by, while another answered.
With no answer at all (or no key yet: the first join after a start) the
client takes its list in order, the next one after a failure.

Routers without a real-time clock boot in 1970: certificates cannot be
checked until NTP has set the time, so the client waits, calmly, until
the wall clock reaches its own certificate's start.
"""

import time
from collections import namedtuple

from . import datagram, replies, session

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from collections.abc import Callable

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
CLOCK_CHECK = 5.0  # s between looks at a clock that is not valid yet
PROBE_WAIT = 1.0   # s the client waits for its servers' loads before it chooses
SAME_LOAD = 0.01   # loads this close (clients/capacity) count as equal: the nearer server wins


def utc(t: float) -> str:
    y, mo, d, h, mi, sec = time.gmtime(int(t))[:6]
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{sec:02d} UTC"


class Rejoin:
    """``due(now, wall)`` says when to connect; ``failed(now)`` after a join
    failed or a session ended; ``joined()`` once the tunnel is up.  ``now``
    is a monotonic clock, ``wall`` the Unix time."""

    valid_from: float
    backoff: float
    retry_at: float
    servers: int
    current: int
    asked: "dict[bytes, tuple[int, float]]"
    loads: "list[tuple[float, int]]"
    probing: bool
    left: int

    def __init__(self, valid_from: float, rand: "Callable[[], float]", servers: int = 1) -> None:
        self.rand = rand              # uniform in [0, 1)
        self.waiting_for_clock = False
        self.key = b""                # the servers' probe key (LEASE); b"": none known
        self.reset(valid_from, servers)

    def failed(self, now: float) -> float:
        """The next try in BACKOFF (doubling from 1 s to 60 s) plus up to
        half of it at random, so that clients of a restarted server do not
        come back all at once; the delay."""
        delay = self.backoff + self.rand() * self.backoff / 2
        self.retry_at = now + delay
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        # failover: the next try goes to the next server of the list
        self.left = self.current
        self.current = (self.current + 1) % self.servers
        return delay

    def joined(self) -> None:
        self.backoff = BACKOFF_MIN
        self.left = -1

    def probes(self, now: float, nonce: "Callable[[int], bytes]") -> "list[tuple[int, bytes]]":
        """Call when ``due``: the LOAD_PROBE datagrams to send, as (server
        index, datagram), and then wait for ``due`` again; [] when the
        client is to connect now, to ``current`` (chosen by the answers, if
        there were any).  ``nonce(n)``: n random bytes."""
        if self.probing:
            self.probing = False
            self.asked = {}
            others = [x for x in self.loads if x[1] != self.left]
            # in the order they answered; min() stays in the loop (a handful
            # of servers): a local costs the node's package its last bytes
            for load, i in others:
                if load <= min(others)[0] + SAME_LOAD:
                    self.current = i
                    break
            return []
        if not self.key or self.servers < 2:
            return []
        self.asked, self.loads, self.probing = {}, [], True
        out = []
        for i in range(self.servers):
            n = nonce(datagram.SESSION_SIZE)
            self.asked[n] = (i, now)
            out.append((i, datagram.seal(datagram.LOAD_PROBE, n, 0, self.key)))
        self.retry_at = now + PROBE_WAIT
        return out

    def on_load(self, data: bytes, now: float) -> "str | None":
        """A datagram that may be a server's LOAD: a line to log if it was
        one answering this round's probes (each is taken once)."""
        try:
            i, sent = self.asked.pop(datagram.session_of(data))
            clients, capacity = datagram.load_of(data, self.key)
        except (KeyError, datagram.DatagramError):
            return None
        if not self.asked:
            self.retry_at = now  # every server answered: choose now
        said = f"server {i + 1} answered in {round((now - sent) * 1000)} ms: "
        if not capacity:
            return said + "draining"
        self.loads.append((clients / capacity, i))
        return said + f"{clients} of {capacity} client(s)"

    def reset(self, valid_from: float, servers: int = 1) -> None:
        """A new configuration (maybe a new certificate): join the first
        server at once."""
        self.valid_from = valid_from  # the certificate's start (Unix time)
        self.backoff, self.retry_at = BACKOFF_MIN, 0.0
        self.servers = servers        # how many servers the client may join
        self.current = 0              # the index of the one it joins next
        self.asked = {}               # nonce -> (server, sent at)
        self.loads = []               # (load, server) in the order they answered
        self.probing = False          # probes are out: choose when the wait is over
        self.left = -1                # the server of the last failure: not chosen again at once

    def due(self, now: float, wall: float) -> "tuple[bool, str]":
        """Whether to connect now, and a line to log ("" for none)."""
        if now < self.retry_at:
            return False, ""
        if wall >= self.valid_from:
            said = "the clock is valid now (" + utc(wall) + "): joining" \
                if self.waiting_for_clock else ""
            self.waiting_for_clock = False
            return True, said
        said = "" if self.waiting_for_clock else (
            "waiting for a valid clock: it reads " + utc(wall) + ", before this node's "
            "certificate became valid (" + utc(self.valid_from) + "); checking every "
            + str(int(CLOCK_CHECK)) + " s")
        self.waiting_for_clock = True
        self.retry_at = now + CLOCK_CHECK
        return False, said


class Connect(namedtuple("Connect", [])):
    """Resolve ``server()`` and start the TCP connection and TLS handshake;
    then call ``connecting`` (or ``unreachable``), and ``secured`` once
    the server's certificate is checked."""

    __slots__ = ()


class Probe(namedtuple("Probe", ["server", "data"])):
    """Send ``data`` (a LOAD_PROBE) from the data socket to ``server`` at
    ``data_port``, the data port of the last lease."""

    __slots__ = ()
    server: str
    data: bytes


class Disconnect(namedtuple("Disconnect", [])):
    """Close the connection to the server."""

    __slots__ = ()


class Hook(namedtuple("Hook", ["event"])):
    """The tunnel went ``"up"`` or ``"down"``: run its hook, tell ubus."""

    __slots__ = ()
    event: str


class Log(namedtuple("Log", ["level", "text"])):
    __slots__ = ()
    level: str
    text: str


if TYPE_CHECKING:
    SessionAction = session.Action
    Action = SessionAction | Connect | Probe | Disconnect | Hook | Log


class ClientPolicy:
    """One client of ``servers`` (names or addresses, tried in the order
    ``Rejoin`` says).  ``now`` is a monotonic clock, ``wall`` the Unix
    time; ``valid_from``: when the client's certificate became valid."""

    session: "session.ClientSession | None"
    connected_at: "float | None"

    def __init__(self, servers: "list[str]", server_port: int, valid_from: float,
                 rand: "Callable[[], float]", keepalive: int, dead_after: int) -> None:
        self.rejoin = Rejoin(valid_from, rand, len(servers))
        self.servers, self.server_port = servers, server_port
        self.keepalive, self.dead_after = keepalive, dead_after
        self.session = None
        self.connected_at = None      # when the connection started; None: none
        self.server_ip = ""
        self.data_port = 0            # the server's, from the last lease
        self.addresses: list[str] = []
        self.sources: list[str] = []  # inner sources accepted from the tunnel (LEASE)
        self.up = False

    def server(self) -> str:
        """The server joined now (the next one after a failure)."""
        return self.servers[self.rejoin.current]

    def peer(self) -> "dict[str, object]":
        """The server as ``ubus call lvn peers`` lists it, with the state of
        the session (or of the wait for one)."""
        s = self.session
        state = "waiting for a valid clock" if self.rejoin.waiting_for_clock else \
            s.state if s is not None else "connecting"
        return replies.client_peer(self.server(), state, self.addresses, self.server_ip,
                                   self.data_port)

    def wake_at(self, now: float) -> float:
        """When ``tick`` has work to do next (the shell may sleep until then)."""
        if self.connected_at is None:
            return self.rejoin.retry_at
        s = self.session
        if s is not None and s.state == session.ClientState.UP:
            return s.next_datagram
        return now + 1

    # -- events ------------------------------------------------------------
    def tick(self, now: float, wall: float, nonce: "Callable[[int], bytes]") -> "list[Action]":
        """The clock moved on; ``nonce(n)``: n random bytes."""
        if self.connected_at is None:
            due, said = self.rejoin.due(now, wall)
            out: list[Action] = [Log("info", said)] if said else []
            if due:
                probes = self.rejoin.probes(now, nonce)
                out += [Probe(self.servers[i], d) for i, d in probes] or [Connect()]
            return out
        if self.session is not None:
            return self._carry(self.session.on_timer(now), now)
        if now - self.connected_at > session.HANDSHAKE_TIMEOUT:  # SYNs or TLS unanswered
            return self.lost("no TLS session with " + self.server_ip + " after "
                             + str(int(session.HANDSHAKE_TIMEOUT)) + " s", now)
        return []

    def connecting(self, server_ip: str, now: float) -> "list[Action]":
        """The shell started connecting to the server, at ``server_ip``."""
        self.server_ip, self.connected_at = server_ip, now
        return [Log("info", "connecting to " + server_ip + " port " + str(self.server_port))]

    def unreachable(self, why: str, now: float) -> "list[Action]":
        """Connecting could not even start (no address, no route, ...)."""
        return self.lost("cannot reach " + self.server() + ": " + why, now)

    def secured(self, now: float) -> "list[Action]":
        """TLS is up (or will be before the first byte goes) with the right
        server: the session begins with HELLO."""
        self.session = session.ClientSession(now, ["ipv4", "ipv6"], self.keepalive,
                                             self.dead_after)
        return self._carry(self.session.start(), now)

    def received(self, data: bytes, now: float) -> "list[Action]":
        """Bytes of the TLS stream."""
        if self.session is None:
            return []
        return self._carry(self.session.receive(data, now), now)

    def datagram(self, data: bytes, now: float) -> "list[Action]":
        """A datagram on the data socket: the server's answers while in a
        session, else perhaps a server's LOAD while choosing one."""
        if self.session is not None:
            return self._carry(self.session.on_datagram(data, now), now)
        said = self.rejoin.on_load(data, now)
        return [Log("info", "choosing a server: " + said)] if said else []

    def lost(self, why: str, now: float) -> "list[Action]":
        """The session or the connection ended (``why``): try again later."""
        out: list[Action] = []
        if self.up:
            self.up = False
            out += [Log("info", "tunnel down: " + why), Hook("down")]
        if self.connected_at is not None:
            out.append(Disconnect())
        self.session = self.connected_at = None
        delay = self.rejoin.failed(now)
        out.append(Log("warning", why + "; retrying in " + str(round(delay, 1)) + " s"))
        return out

    def limits(self, keepalive: int, dead_after: int) -> None:
        """Our keepalive interval and dead_after, changed by a reload."""
        self.keepalive, self.dead_after = keepalive, dead_after
        if self.session is not None:
            self.session.set_limits(keepalive, dead_after)

    def restart(self, servers: "list[str]", valid_from: float, now: float) -> "list[Action]":
        """A new configuration (servers, certificate): end the session, join
        the first server at once."""
        out = self.lost("the configuration changed", now) if self.connected_at is not None \
            else []
        self.servers = servers
        self.rejoin.reset(valid_from, len(servers))
        return out + [Log("info", "configuration changed: joining " + self.server() + " again")]

    def _carry(self, actions: "list[SessionAction]", now: float) -> "list[Action]":
        """The session's actions, with what this policy makes of them."""
        out: list[Action] = []
        for act in actions:
            if isinstance(act, session.Close):
                return out + self.lost(act.reason, now)
            if isinstance(act, session.Configure):
                lease = act.lease
                self.data_port, self.rejoin.key = lease.data_port, lease.probe_key
                self.addresses, self.sources = sorted(lease.addresses()), list(lease.sources)
                out += [act, Log("info", "lease: " + ", ".join(self.addresses) + ", mtu "
                                 + str(lease.mtu))]
            elif isinstance(act, session.Up):
                self.rejoin.joined()
                self.up = True
                out += [Log("info", "tunnel up to " + self.server_ip), Hook("up")]
            else:
                out.append(act)
        return out
