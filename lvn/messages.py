"""The control messages as typed, immutable events (pure, both interpreters).

lvn/protocol.py frames a message and checks its fields' JSON types;
``decode`` here makes it one of the classes below and checks every field's
range too, so neither the sessions (lvn/session.py) nor the shells ever see
a raw dict: a peer's bad field is a ProtocolError naming it, which ends
that session with an ERROR, never a crash.  ``encode`` is the way back.
docs/protocol.md describes each message.
"""

from collections import namedtuple

from . import datagram, protocol, schema

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

MAX_SOURCES = 8  # prefixes in a LEASE's "sources"
FAMILIES = ("ipv4", "ipv6")


class Hello(namedtuple("Hello", ["want"])):
    """Client -> server: the address families it wants a lease of."""

    __slots__ = ()
    mtype = protocol.HELLO
    want: "list[str]"


class Lease(namedtuple("Lease", ["session", "key", "data_port", "mtu", "keepalive",
                                 "answers", "addr4", "addr6", "sources", "probe_key"])):
    """Server -> client: the datagram session and key, the tunnel's
    parameters, the overlay addresses ("addr/len", canonical), the inner
    source prefixes the client is to accept from its tunnel, and the key
    its servers answer load probes with (b"": none; lvn/clientpolicy.py)."""

    __slots__ = ()
    mtype = protocol.LEASE
    session: bytes
    key: bytes
    data_port: int
    mtu: int
    keepalive: int
    answers: bool
    addr4: "str | None"
    addr6: "str | None"
    sources: "list[str]"
    probe_key: bytes

    def addresses(self) -> "list[str]":
        return [a for a in (self.addr4, self.addr6) if a]


class Endpoint(namedtuple("Endpoint", ["address", "port"])):
    """Server -> client: where the client's probe came from."""

    __slots__ = ()
    mtype = protocol.ENDPOINT
    address: str
    port: int


class Ready(namedtuple("Ready", [])):
    __slots__ = ()
    mtype = protocol.READY


class Error(namedtuple("Error", ["code", "text"])):
    __slots__ = ()
    mtype = protocol.ERROR
    code: str
    text: str


class Bye(namedtuple("Bye", ["text"])):
    __slots__ = ()
    mtype = protocol.BYE
    text: str


if TYPE_CHECKING:
    Message = Hello | Lease | Endpoint | Ready | Error | Bye


def _bad(msg: str, name: str, value: object, what: str) -> protocol.ProtocolError:
    return protocol.ProtocolError(msg + ": field " + repr(name) + ": " + repr(value)[:80]
                                  + " is not " + what)


def _int(body: "dict[str, object]", msg: str, name: str, low: int, high: int) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(msg, name, value, "an integer " + str(low) + "-" + str(high))
    return value


def _hex(body: "dict[str, object]", msg: str, name: str, size: int) -> bytes:
    value = body.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise _bad(msg, name, value, str(size) + " bytes in hex")
    return raw


def _str(body: "dict[str, object]", msg: str, name: str, default: "str | None" = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise _bad(msg, name, value, "a string")
    return value


def _address(body: "dict[str, object]", name: str, v6: bool) -> "str | None":
    value = body.get(name)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or (":" in value) != v6:
            raise ValueError("")
        return schema.parse_interface_address(value)
    except ValueError:
        raise _bad("lease", name, value, "an IPv" + ("6" if v6 else "4")
                   + " address with prefix length") from None


def _sources(body: "dict[str, object]") -> "list[str]":
    value = body.get("sources", [])
    if not isinstance(value, list) or len(value) > MAX_SOURCES \
            or not all(isinstance(p, str) for p in value):
        raise _bad("lease", "sources", value, "a list of at most " + str(MAX_SOURCES)
                   + " prefixes")
    try:
        return [schema.parse_prefix(p) for p in value]
    except ValueError as e:
        raise protocol.ProtocolError("lease: field 'sources': " + str(e)) from None


def _lease(body: "dict[str, object]") -> Lease:
    answers = body.get("answers", False)
    if not isinstance(answers, bool):
        raise _bad("lease", "answers", answers, "true or false")
    return Lease(_hex(body, "lease", "session", datagram.SESSION_SIZE),
                 _hex(body, "lease", "key", datagram.KEY_SIZE),
                 _int(body, "lease", "data_port", 1, 65535),
                 _int(body, "lease", "mtu", 576, 9000),
                 _int(body, "lease", "keepalive", 1, 3600), answers,
                 _address(body, "addr4", False), _address(body, "addr6", True),
                 _sources(body),
                 _hex(body, "lease", "probe_key", datagram.KEY_SIZE)
                 if "probe_key" in body else b"")


def _hello(body: "dict[str, object]") -> Hello:
    want = body.get("want")
    if not isinstance(want, list) or not all(isinstance(w, str) for w in want):
        raise _bad("hello", "want", want, "a list of address families")
    # families a later version may add are left out, not refused
    return Hello([w for w in want if w in FAMILIES])


def _endpoint(body: "dict[str, object]") -> Endpoint:
    address = _str(body, "endpoint", "address")
    try:
        address = schema.parse_ip(address)
    except ValueError:
        raise _bad("endpoint", "address", address, "an IP address") from None
    return Endpoint(address, _int(body, "endpoint", "port", 1, 65535))


def decode(mtype: int, body: "dict[str, object]") -> "Message":
    """The event of a message protocol.Framer returned; ProtocolError names
    a field whose value is out of range."""
    if mtype == protocol.HELLO:
        return _hello(body)
    if mtype == protocol.LEASE:
        return _lease(body)
    if mtype == protocol.ENDPOINT:
        return _endpoint(body)
    if mtype == protocol.READY:
        return Ready()
    if mtype == protocol.ERROR:
        return Error(_str(body, "error", "code"), _str(body, "error", "text"))
    if mtype == protocol.BYE:
        return Bye(_str(body, "bye", "text", "bye"))
    raise protocol.ProtocolError("unknown message type " + str(mtype))


def encode(msg: "Message") -> bytes:
    """The bytes of one message (protocol.encode checks them again)."""
    if isinstance(msg, Lease):
        fields: dict[str, object] = {
            "session": msg.session.hex(), "key": msg.key.hex(), "data_port": msg.data_port,
            "mtu": msg.mtu, "keepalive": msg.keepalive, "answers": msg.answers}
        if msg.addr4:
            fields["addr4"] = msg.addr4
        if msg.addr6:
            fields["addr6"] = msg.addr6
        if msg.sources:
            fields["sources"] = list(msg.sources)
        if msg.probe_key:
            fields["probe_key"] = msg.probe_key.hex()
    elif isinstance(msg, Hello):
        fields = {"want": list(msg.want)}
    elif isinstance(msg, Endpoint):
        fields = {"address": msg.address, "port": msg.port}
    elif isinstance(msg, Error):
        fields = {"code": msg.code, "text": msg.text}
    elif isinstance(msg, Bye):
        fields = {"text": msg.text}
    else:
        fields = {}
    return protocol.encode(msg.mtype, fields)
