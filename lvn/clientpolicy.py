"""The client's policy (sans-I/O, both interpreters): one object that the
CPython client (lvn/agent.py) and the MicroPython node (lvn/node.py)
both drive, so that they join, apply a lease, lose a session and come
back the same way.

It owns the session (lvn/session.py) and the rejoin policy
(lvn/rejoin.py).  The shell tells it what happened -- a tick of the
monotonic clock, a connection started, refused or secured, bytes and
datagrams from the server, a connection lost -- and carries out the
actions it answers with, in order: the session's own (``Send``,
``SendDatagram``, ``Configure``, ``OpenTunnel``) and the few below.
What the shell needs to carry one out (the server's address and data
port, the leased addresses and sources) is read off this object.
"""

from collections import namedtuple

from . import rejoin, replies, session

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython
    TYPE_CHECKING = False  # type: ignore[misc]

if TYPE_CHECKING:
    from collections.abc import Callable


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
    lvn/rejoin.py says).  ``now`` is a monotonic clock, ``wall`` the Unix
    time; ``valid_from``: when the client's certificate became valid."""

    session: "session.ClientSession | None"
    connected_at: "float | None"

    def __init__(self, servers: "list[str]", server_port: int, valid_from: float,
                 rand: "Callable[[], float]", keepalive: int, dead_after: int) -> None:
        self.rejoin = rejoin.Rejoin(valid_from, rand, len(servers))
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

    def state(self) -> str:
        if self.rejoin.waiting_for_clock:
            return "waiting for a valid clock"
        return self.session.state if self.session is not None else "connecting"

    def peer(self) -> "dict[str, object]":
        """The server as ``ubus call lvn peers`` lists it."""
        return replies.client_peer(self.server(), self.state(), self.addresses,
                                   self.server_ip, self.data_port)

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
