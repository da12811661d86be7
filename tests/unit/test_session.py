"""Client and server session state machines, wired together without sockets."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from lvn import datagram, messages, protocol, session
from lvn.session import (
    HANDSHAKE_TIMEOUT,
    Allocate,
    Answer,
    ClientSession,
    Close,
    Configure,
    Expire,
    LocalError,
    MoveTunnel,
    OpenTunnel,
    RemoteError,
    Send,
    SendDatagram,
    ServerSession,
    Up,
)

if TYPE_CHECKING:
    from lvn.session import Action

KEY = bytes(range(32))
SESSION = bytes.fromhex("0011223344556677")
CLIENT_NAT = ("198.51.100.7", 40001)


def frames(actions: list[Action]) -> list[tuple[int, dict[str, object]]]:
    """What the actions put on the wire, as protocol.Framer reads it."""
    return protocol.Framer().feed(sent(actions))


def sent(actions: list[Action]) -> bytes:
    """The bytes the actions write to the TLS stream (the peer's receive())."""
    return b"".join(a.data for a in actions if isinstance(a, Send))


def datagrams(actions: list[Action]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, SendDatagram)]


def established(now: float = 0.0) -> tuple[ClientSession, ServerSession]:
    client = ClientSession(now, ["ipv4", "ipv6"])
    server = ServerSession(KEY, SESSION, now, data_port=50000, mtu=1400, keepalive=25,
                           idle_timeout=90)
    assert server.receive(sent(client.start()), now) == [Allocate(["ipv4", "ipv6"])]
    acts = server.leased(["10.77.0.2/16", "fd77::2/64"])
    (lease,) = frames(acts)
    assert lease[0] == protocol.LEASE and lease[1]["addr4"] == "10.77.0.2/16"
    acts = client.receive(sent(acts), now)
    assert acts[0] == Configure(messages.Lease(SESSION, KEY, 50000, 1400, 25, True,
                                               "10.77.0.2/16", "fd77::2/64", [], b""))
    (probe,) = datagrams(acts)
    acts = server.on_datagram(*CLIENT_NAT, probe, now)
    assert acts[0] == MoveTunnel(*CLIENT_NAT)
    (endpoint,) = frames(acts)
    assert endpoint == (protocol.ENDPOINT, {"address": CLIENT_NAT[0], "port": CLIENT_NAT[1]})
    acts = client.receive(sent(acts), now)
    assert acts[0] == OpenTunnel() and acts[-1] == Up() and client.state == "up"
    assert server.receive(sent(acts), now) == [Up()] and server.state == "up"
    return client, server


def test_handshake() -> None:
    established()


def test_keepalives_roaming_and_idle() -> None:
    client, server = established()
    assert client.on_timer(10) == []
    (ka,) = datagrams(client.on_timer(25))
    assert not [a for a in server.on_datagram(*CLIENT_NAT, ka, 25)
                if not isinstance(a, Answer)]                        # same place: no move
    (ka2,) = datagrams(client.on_timer(50))
    new = ("203.0.113.9", 1234)
    acts = server.on_datagram(*new, ka2, 50)
    assert not [a for a in acts if isinstance(a, MoveTunnel)]  # not before it answers there
    (challenge,) = [a.data for a in acts if isinstance(a, Answer) and a[:2] == new]
    (response,) = datagrams(client.on_datagram(challenge, 50))
    assert server.on_datagram(*new, response, 50) == [MoveTunnel(*new)]
    assert server.endpoint == new
    assert server.on_timer(50 + 89) == []
    assert server.on_timer(50 + 91) == [Expire()] and server.state == "closed"
    assert server.on_timer(50 + 200) == []


def test_forged_and_replayed_datagrams_move_nothing() -> None:
    client, server = established()
    (ka,) = datagrams(client.on_timer(25))
    assert [type(a) for a in server.on_datagram(*CLIENT_NAT, ka, 25)] == [Answer]
    attacker = ("192.0.2.66", 6666)
    assert server.on_datagram(*attacker, ka, 26) == []                 # replay
    forged = datagram.seal(datagram.KEEPALIVE, SESSION, 10**9, bytes(32))
    assert server.on_datagram(*attacker, forged, 27) == []             # wrong key
    assert server.on_datagram(*attacker, b"\xff\xff\xff\xff", 28) == []  # bare keepalive
    assert server.endpoint == CLIENT_NAT and server.last_seen == 25


def test_client_probes_until_answered_then_times_out() -> None:
    client = ClientSession(0.0, ["ipv4"])
    client.start()
    client.receive(protocol.encode(protocol.LEASE, {
        "session": SESSION.hex(), "key": KEY.hex(), "data_port": 50000, "mtu": 1400,
        "keepalive": 25}), 0.0)
    assert client.state == "probe"
    assert client.on_timer(0.5) == []
    assert len(datagrams(client.on_timer(1.0))) == 1
    assert len(datagrams(client.on_timer(2.0))) == 1
    acts = client.on_timer(HANDSHAKE_TIMEOUT + 1)
    close = acts[-1]
    assert isinstance(close, Close) and "no answer to the probe" in close.reason
    assert isinstance(close.error, RemoteError) and close.error.code == "timeout"
    assert client.state == "closed" and client.on_timer(HANDSHAKE_TIMEOUT + 5) == []


@pytest.mark.parametrize("mtype, body", [(protocol.READY, {}), (protocol.ENDPOINT, {
    "address": "192.0.2.1", "port": 1})])
def test_unexpected_message_ends_only_that_session(mtype: int, body: dict[str, object]) -> None:
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    acts = server.receive(protocol.encode(mtype, body), 0.0)
    (err,) = frames(acts)
    assert err[0] == protocol.ERROR and err[1]["code"] == "unexpected"
    close = acts[-1]
    assert isinstance(close, Close) and isinstance(close.error, RemoteError)
    assert close.reason == "unexpected: " + protocol.NAMES[mtype] + " in state hello"
    # closed: ignored
    assert server.receive(protocol.encode(protocol.HELLO, {"want": []}), 0.0) == []


@pytest.mark.parametrize("data, why", [
    (b"\x02\x01\x00\x02[]", "hello: payload is not an object"),
    (b"\x01\x01\x00\x02{}", "version 1"),
    (protocol.encode(protocol.HELLO, {"want": [7]}), "hello: field 'want': [7] is not"),
    (protocol.encode(protocol.ENDPOINT, {"address": "x", "port": 1}),
     "endpoint: field 'address': 'x' is not an IP address"),
])
def test_a_malformed_message_is_answered_with_an_error_then_closed(data: bytes,
                                                                   why: str) -> None:
    """The session frames its stream itself: a bad frame or field is the
    peer's fault (ERROR "protocol", then Close), never an exception."""
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    acts = server.receive(data, 0.0)
    (err,) = frames(acts)
    assert err[0] == protocol.ERROR and err[1]["code"] == "protocol", err
    close = acts[-1]
    assert isinstance(close, Close) and isinstance(close.error, RemoteError)
    assert why in close.reason, close.reason
    assert server.state == "closed"


def test_lease_failure_and_handshake_timeout() -> None:
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    server.receive(protocol.encode(protocol.HELLO, {"want": ["ipv4"]}), 0.0)
    (err,) = frames(server.leased([], error="address pool 10.77.0.0/30 is exhausted"))
    assert err[1] == {"code": "lease", "text": "address pool 10.77.0.0/30 is exhausted"}
    late = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    assert late.on_timer(HANDSHAKE_TIMEOUT - 1) == []
    close = late.on_timer(HANDSHAKE_TIMEOUT + 1)[-1]
    assert isinstance(close, Close) and close.reason == "timeout: handshake not finished in time"


def test_peer_goodbye_is_no_fault() -> None:
    client, server = established()
    bye = protocol.encode(protocol.BYE, {"text": "restarting"})
    assert server.receive(bye, 1.0) == [Close("peer: restarting", None)]
    assert client.receive(bye, 1.0) == [Close("server: restarting", None)]


def test_the_shell_driving_a_session_wrongly_is_a_local_error() -> None:
    client = ClientSession(0.0, ["ipv4"])
    client.start()
    with pytest.raises(LocalError, match="start in state lease"):
        client.start()
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    with pytest.raises(LocalError, match="leased in state hello"):
        server.leased(["10.77.0.2/16"])
    with pytest.raises(LocalError):
        server.leased([], error="pool exhausted")
    assert server.state == "hello"


def test_every_transition_in_the_tables_is_taken_by_a_handshake() -> None:
    """The tables list exactly the moves a successful session makes."""
    seen: set[tuple[str, object]] = set()

    class Spy(dict[tuple[str, object], str]):
        def __contains__(self, key: object) -> bool:
            return dict.__contains__(self, key)

        def __getitem__(self, key: tuple[str, object]) -> str:
            seen.add(key)
            return dict.__getitem__(self, key)

    ClientSession.transitions = Spy(session.CLIENT_TRANSITIONS)
    ServerSession.transitions = Spy(session.SERVER_TRANSITIONS)
    try:
        established()
    finally:
        ClientSession.transitions = session.CLIENT_TRANSITIONS
        ServerSession.transitions = session.SERVER_TRANSITIONS
    assert seen == set(session.CLIENT_TRANSITIONS) | set(session.SERVER_TRANSITIONS)
