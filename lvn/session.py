"""Client and server session state machines (sans-I/O).

A session is fed events (the bytes of its TLS stream, which it frames and
decodes into lvn/messages.py's typed messages itself, a datagram from the
data socket, the clock, the shell's answer to a lease) and answers with a
list of actions, the small immutable classes below, that the agent's I/O
shell carries out in order.  States are named values; the transitions
each machine may take are listed in one table per side, keyed by the
message class or the name of the other event.

Faults are told apart as h11 does: a peer that breaks the protocol or
falls silent ends its session with ``Close`` carrying a ``RemoteError``
(its own process is unaffected); a shell that feeds an event the state
does not allow is a bug of this program and gets a ``LocalError`` raised.

Times are seconds from a monotonic clock passed in by the caller.  Pure and
MicroPython-friendly, like lvn/protocol.py and lvn/datagram.py: the action
classes are namedtuples, which both interpreters have.
"""

from collections import namedtuple

from . import datagram, messages, protocol

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

HANDSHAKE_TIMEOUT = 30.0
PROBE_INTERVAL = 1.0
DEAD_AFTER = 3  # keepalives the server leaves unanswered before the client rejoins


# -- errors ---------------------------------------------------------------

class SessionError(Exception):
    """A session cannot go on."""


class LocalError(SessionError):
    """This side drove the session wrongly (an event its state does not allow)."""


class RemoteError(SessionError):
    """The peer broke the protocol or fell silent; ``code`` says how."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code + ": " + text)
        self.code = code
        self.text = text


# -- actions --------------------------------------------------------------

class Send(namedtuple("Send", ["data"])):
    """Write ``data`` (an encoded message) to the TLS control channel."""

    __slots__ = ()
    data: bytes


class SendDatagram(namedtuple("SendDatagram", ["data"])):
    """Client: send ``data`` from the data socket to the server's data port."""

    __slots__ = ()
    data: bytes


class Answer(namedtuple("Answer", ["address", "port", "data"])):
    """Server: send ``data`` from the data socket to ``address`` port ``port``
    (the authenticated answer to a keepalive, so the client knows we live)."""

    __slots__ = ()
    address: str
    port: int
    data: bytes


class Allocate(namedtuple("Allocate", ["want"])):
    """Server: allocate addresses of the families in ``want``, then call leased()."""

    __slots__ = ()
    want: list[str]


class MoveTunnel(namedtuple("MoveTunnel", ["address", "port"])):
    """Server: point this client's tunnel at its authenticated endpoint
    (the first time, and again when NAT rebinding or roaming moved it)."""

    __slots__ = ()
    address: str
    port: int


class Configure(namedtuple("Configure", ["lease"])):
    """Client: apply the lease (addresses, MTU, data port; the sources
    once the tunnel opens): lvn.static.apply_lease."""

    __slots__ = ()
    lease: messages.Lease


class OpenTunnel(namedtuple("OpenTunnel", [])):
    """Client: the tunnel to the server's data port is confirmed: set it up."""

    __slots__ = ()


class Up(namedtuple("Up", [])):
    """The tunnel is established (both sides)."""

    __slots__ = ()


class Expire(namedtuple("Expire", [])):
    """Server: the client was silent for the idle timeout: end the session
    and de-allocate its tunnel (the lease stays for its return)."""

    __slots__ = ()


class Close(namedtuple("Close", ["reason", "error"])):
    """End the session, after the sends before it.  ``error`` is the
    ``RemoteError`` when the peer was at fault, None when it said goodbye."""

    __slots__ = ()
    reason: str
    error: "RemoteError | None"


if TYPE_CHECKING:
    Action = (Send | SendDatagram | Answer | Allocate | MoveTunnel | Configure | OpenTunnel
              | Up | Expire | Close)


# -- states and transitions -----------------------------------------------

CLOSED = "closed"


class ServerState:
    HELLO = "hello"        # TLS is up; waiting for HELLO
    LEASING = "leasing"    # the shell allocates addresses
    PROBE = "probe"        # LEASE sent; waiting for the first datagram
    READY = "ready"        # endpoint known, tunnel set; waiting for READY
    UP = "up"
    CLOSED = CLOSED


class ClientState:
    START = "start"
    LEASE = "lease"        # HELLO sent; waiting for LEASE
    PROBE = "probe"        # probing the data port; waiting for ENDPOINT
    UP = "up"
    CLOSED = CLOSED


# events: the classes of the peer's messages, names (str) of other events
SERVER_TRANSITIONS = {
    (ServerState.HELLO, messages.Hello): ServerState.LEASING,
    (ServerState.LEASING, "leased"): ServerState.PROBE,
    (ServerState.PROBE, "probe"): ServerState.READY,
    (ServerState.READY, messages.Ready): ServerState.UP,
}

CLIENT_TRANSITIONS = {
    (ClientState.START, "start"): ClientState.LEASE,
    (ClientState.LEASE, messages.Lease): ClientState.PROBE,
    (ClientState.PROBE, messages.Endpoint): ClientState.UP,
}


def _fail(code: str, text: str) -> "list[Action]":
    """The peer is at fault: tell it, then close."""
    return [Send(messages.encode(messages.Error(code, text))),
            Close(code + ": " + text, RemoteError(code, text))]


class _Machine:
    state = ""
    peer = ""
    transitions: dict[tuple[str, object], str] = {}
    framer: protocol.Framer

    def receive(self, data: bytes, now: float) -> "list[Action]":
        """Bytes of the TLS stream: the actions of each whole message in
        them.  A malformed message or field ends the session ("protocol")."""
        try:
            frames = self.framer.feed(data)
        except protocol.ProtocolError as e:
            return self._closing(_fail("protocol", str(e)))
        actions: list[Action] = []
        for mtype, body in frames:
            if self.state == CLOSED:
                break
            try:
                event = messages.decode(mtype, body)
            except protocol.ProtocolError as e:
                return actions + self._closing(_fail("protocol", str(e)))
            actions += self.on_message(event, now)
        return actions

    def on_message(self, event: "messages.Message", now: float) -> "list[Action]":
        """One message from the peer: its goodbye, a move the table allows
        (then _moved() says what to do), or the end of the session."""
        if self.state == CLOSED:
            return []
        if isinstance(event, (messages.Bye, messages.Error)):
            return self._closing([Close(self.peer + ": " + event.text, None)])
        if not self._may(type(event)):
            return self._closing(_fail("unexpected", protocol.NAMES[event.mtype]
                                       + " in state " + self.state))
        self._move(type(event))
        return self._moved(event, now)

    def _moved(self, event: "messages.Message", now: float) -> "list[Action]":
        raise NotImplementedError

    def _may(self, event: object) -> bool:
        return (self.state, event) in self.transitions

    def _move(self, event: object) -> None:
        self.state = self.transitions[(self.state, event)]

    def _local(self, event: str) -> None:
        """Take a transition the shell asked for, or raise LocalError."""
        if not self._may(event):
            raise LocalError(event + " in state " + self.state)
        self._move(event)

    def _closing(self, actions: "list[Action]") -> "list[Action]":
        if actions and isinstance(actions[-1], (Close, Expire)):
            self.state = CLOSED
        return actions


class ServerSession(_Machine):
    """One client, from TLS handshake to tunnel, keepalives and idle removal."""

    transitions = SERVER_TRANSITIONS
    peer = "peer"  # how a goodbye's Close names the other side

    def __init__(self, key: bytes, session: bytes, now: float, data_port: int, mtu: int,
                 keepalive: int, idle_timeout: int) -> None:
        self.key = key
        self.session = session
        self.data_port = data_port
        self.mtu = mtu
        self.keepalive = keepalive
        self.idle_timeout = idle_timeout
        self.state = ServerState.HELLO
        self.framer = protocol.Framer()
        self.started = now
        self.last_seen = now
        self.counter = 0          # highest datagram counter accepted
        self.sent = 0             # counter of the last datagram we sealed (ACK, CHALLENGE)
        # the new address being validated: (address, port, challenge counter, when)
        self.challenge: tuple[str, int, int, float] | None = None
        # (address, port) the authenticated datagrams came from
        self.endpoint: tuple[str, int] | None = None
        self.addresses: list[str] = []  # the lease, once granted

    def _moved(self, event: "messages.Message", now: float) -> "list[Action]":
        if isinstance(event, messages.Hello):
            return [Allocate(event.want)]
        return [Up()]

    def leased(self, addresses: list[str], error: str = "",
               sources: "list[str] | None" = None, probe_key: bytes = b"") -> "list[Action]":
        """The shell's answer to an ``Allocate`` action (or why it failed);
        ``sources``: the overlay's prefixes (the server's pools), the only
        inner sources the client is to accept from its tunnel; ``probe_key``:
        the key the overlay's servers answer load probes with."""
        if error:
            if self.state != ServerState.LEASING:
                raise LocalError("leased in state " + self.state)
            return self._closing(_fail("lease", error))
        self._local("leased")
        self.addresses = list(addresses)
        addr4 = [a for a in addresses if ":" not in a]
        addr6 = [a for a in addresses if ":" in a]
        return [Send(messages.encode(messages.Lease(
            self.session, self.key, self.data_port, self.mtu, self.keepalive, True,
            addr4[0] if addr4 else None, addr6[0] if addr6 else None, list(sources or ()),
            probe_key)))]

    def on_datagram(self, address: str, port: int, data: bytes, now: float) -> "list[Action]":
        """A datagram for this session; forged or replayed ones change nothing.

        The endpoint moves (roaming, NAT rebinding) only to an address that
        answered a CHALLENGE sent there: an authenticated datagram proves
        who made it, not where its copy came from, so the first copy of a
        keepalive that a man-on-the-side relays must not move the tunnel."""
        if self.state not in (ServerState.PROBE, ServerState.READY, ServerState.UP):
            return []
        try:
            bound = b""
            if datagram.mtype_of(data) == datagram.RESPONSE:
                if self.challenge is None:
                    return []
                bound = datagram.challenge_binding(self.challenge[2])
            mtype, counter = datagram.open_(data, self.key, self.counter, bound)
        except datagram.DatagramError:
            return []
        if mtype not in (datagram.PROBE, datagram.KEEPALIVE, datagram.RESPONSE):
            return []   # one of ours (ACK, CHALLENGE), reflected back
        self.counter = counter
        self.last_seen = now
        here = (address, port)
        if mtype == datagram.PROBE and self._may("probe"):
            self._move("probe")
            self.endpoint = here
            return [MoveTunnel(address, port),
                    Send(messages.encode(messages.Endpoint(address, port)))]
        if self.state not in (ServerState.READY, ServerState.UP):
            return []
        if mtype == datagram.RESPONSE:
            assert self.challenge is not None
            if here != self.challenge[:2]:
                return []   # answered from elsewhere: that address is not validated
            self.challenge = None
            if here == self.endpoint:
                return []
            self.endpoint = here
            return [MoveTunnel(address, port)]   # roaming / NAT rebinding, validated
        actions: list[Action] = []
        if here != self.endpoint:
            if self.challenge is None or self.challenge[:2] != here or \
                    now - self.challenge[3] >= PROBE_INTERVAL:
                self.sent += 1
                self.challenge = (address, port, self.sent, now)
                actions.append(Answer(address, port, datagram.seal(
                    datagram.CHALLENGE, self.session, self.sent, self.key)))
            if self.endpoint is None or mtype != datagram.KEEPALIVE:
                return actions
            # the client may still be at its endpoint (the copy came from
            # someone else): it hears from us there, so it does not rejoin
            address, port = self.endpoint
        if mtype == datagram.KEEPALIVE:
            self.sent += 1
            actions.append(Answer(address, port,
                                  datagram.seal(datagram.ACK, self.session, self.sent, self.key)))
        return actions

    def on_timer(self, now: float) -> "list[Action]":
        if self.state == ServerState.CLOSED:
            return []
        if self.state == ServerState.UP:
            if now - self.last_seen > self.idle_timeout:
                return self._closing([Expire()])
            return []
        if now - self.started > HANDSHAKE_TIMEOUT:
            return self._closing(_fail("timeout", "handshake not finished in time"))
        return []


class ClientSession(_Machine):
    """The client's side: HELLO, apply the lease, probe, keep alive."""

    transitions = CLIENT_TRANSITIONS
    peer = "server"

    def __init__(self, now: float, want: list[str], keepalive: int = 25,
                 dead_after: int = DEAD_AFTER) -> None:
        self.key = b""  # the datagram key, from LEASE
        self.want = want
        self.state = ClientState.START
        self.framer = protocol.Framer()
        self.started = now
        self.counter = 0
        self.session = b""
        self.max_keepalive = keepalive  # ours: the server's interval if it asks for less
        self.keepalive = 0
        self.server_keepalive = 0  # the interval the server asked for in LEASE
        self.dead_after = dead_after
        self.answers = False      # the server answers keepalives (it said so in LEASE)
        self.unanswered = 0       # keepalives sent since the last answer
        self.server_counter = 0   # highest counter of the server's datagrams
        self.last_heard = now
        self.next_datagram = 0.0

    def set_limits(self, keepalive: int, dead_after: int) -> None:
        """Our keepalive interval (the server's, if it asks for less) and how
        many unanswered keepalives end the session; a reload changes them."""
        self.max_keepalive, self.dead_after = keepalive, dead_after
        if self.server_keepalive:
            self.keepalive = min(self.server_keepalive, keepalive)

    def start(self) -> "list[Action]":
        self._local("start")
        return [Send(messages.encode(messages.Hello(self.want)))]

    def _datagram(self, mtype: int, now: float, interval: float) -> SendDatagram:
        self.counter += 1
        self.next_datagram = now + interval
        return SendDatagram(datagram.seal(mtype, self.session, self.counter, self.key))

    def _moved(self, event: "messages.Message", now: float) -> "list[Action]":
        if isinstance(event, messages.Lease):
            self.session, self.key = event.session, event.key
            self.server_keepalive = event.keepalive
            self.set_limits(self.max_keepalive, self.dead_after)
            self.answers = event.answers
            return [Configure(event), self._datagram(datagram.PROBE, now, PROBE_INTERVAL)]
        # ENDPOINT: the server saw our probe
        self.next_datagram = now + self.keepalive
        self.last_heard = now
        return [OpenTunnel(), Send(messages.encode(messages.Ready())), Up()]

    def on_datagram(self, data: bytes, now: float) -> "list[Action]":
        """A datagram from the server's data port: an ACK or a CHALLENGE
        proves the server lives; a CHALLENGE (the server saw us at a new
        address) is answered with a RESPONSE bound to it, from here."""
        if self.state not in (ClientState.PROBE, ClientState.UP):
            return []
        try:
            # a CHALLENGE may overtake the ACK sealed after it: it is answered
            # even when not the newest (a replayed one only earns the server
            # a RESPONSE that its own pending challenge decides about)
            challenge = datagram.mtype_of(data) == datagram.CHALLENGE
            mtype, counter = datagram.open_(data, self.key,
                                            0 if challenge else self.server_counter)
        except datagram.DatagramError:
            return []
        if mtype not in (datagram.ACK, datagram.CHALLENGE):
            return []   # one of ours, reflected back
        if counter > self.server_counter:
            self.server_counter = counter
            self.unanswered = 0
            self.last_heard = now
        if mtype == datagram.ACK:
            return []
        self.counter += 1
        return [SendDatagram(datagram.seal(datagram.RESPONSE, self.session, self.counter,
                                           self.key, datagram.challenge_binding(counter)))]

    def on_timer(self, now: float) -> "list[Action]":
        if self.state == ClientState.PROBE:
            if now - self.started > HANDSHAKE_TIMEOUT:
                return self._closing(_fail("timeout", "no answer to the probe (UDP blocked?)"))
            if now >= self.next_datagram:
                return [self._datagram(datagram.PROBE, now, PROBE_INTERVAL)]
        elif self.state == ClientState.UP and now >= self.next_datagram:
            if self.answers and self.unanswered >= self.dead_after:
                return self._closing(_fail("timeout", "the server answered none of the last "
                                           + str(self.unanswered) + " keepalives ("
                                           + str(int(now - self.last_heard)) + " s)"))
            self.unanswered += 1
            return [self._datagram(datagram.KEEPALIVE, now, self.keepalive)]
        elif self.state == ClientState.LEASE and now - self.started > HANDSHAKE_TIMEOUT:
            return self._closing(_fail("timeout", "no lease from the server"))
        return []
