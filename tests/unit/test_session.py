"""Client and server session state machines, wired together without sockets."""

from __future__ import annotations

import pytest

from lvn import datagram, protocol
from lvn.session import HANDSHAKE_TIMEOUT, ClientSession, ServerSession

KEY = bytes(range(32))
SESSION = bytes.fromhex("0011223344556677")
CLIENT_NAT = ("198.51.100.7", 40001)


def messages(actions: list[tuple[object, ...]]) -> list[tuple[int, dict[str, object]]]:
    framer = protocol.Framer()
    out = []
    for a in actions:
        if a[0] == "send":
            out += framer.feed(a[1])  # type: ignore[arg-type]
    return out


def datagrams(actions: list[tuple[object, ...]]) -> list[bytes]:
    return [a[1] for a in actions if a[0] == "datagram"]  # type: ignore[misc]


def established(now: float = 0.0) -> tuple[ClientSession, ServerSession]:
    client = ClientSession(now, ["ipv4", "ipv6"])
    server = ServerSession(KEY, SESSION, now, data_port=50000, mtu=1400, keepalive=25,
                           idle_timeout=90)
    (hello,) = messages(client.start())
    assert server.on_message(*hello) == [("lease", ["ipv4", "ipv6"])]
    (lease,) = messages(server.leased(["10.77.0.2/16", "fd77::2/64"]))
    assert lease[0] == protocol.LEASE and lease[1]["addr4"] == "10.77.0.2/16"
    acts = client.on_message(*lease, now)
    assert acts[0] == ("configure", lease[1])
    (probe,) = datagrams(acts)
    acts = server.on_datagram(*CLIENT_NAT, probe, now)
    assert acts[0] == ("tunnel", *CLIENT_NAT)
    (endpoint,) = messages(acts)
    assert endpoint == (protocol.ENDPOINT, {"address": CLIENT_NAT[0], "port": CLIENT_NAT[1]})
    acts = client.on_message(*endpoint, now)
    assert acts[-1] == ("up",) and client.state == "up"
    (ready,) = messages(acts)
    assert server.on_message(*ready) == [("up",)] and server.state == "up"
    return client, server


def test_handshake() -> None:
    established()


def test_keepalives_roaming_and_idle() -> None:
    client, server = established()
    assert client.on_timer(10) == []
    (ka,) = datagrams(client.on_timer(25))
    assert server.on_datagram(*CLIENT_NAT, ka, 25) == []            # same place: nothing
    (ka2,) = datagrams(client.on_timer(50))
    assert server.on_datagram("203.0.113.9", 1234, ka2, 50) == [("tunnel", "203.0.113.9", 1234)]
    assert server.endpoint == ("203.0.113.9", 1234)
    assert server.on_timer(50 + 89) == []
    assert server.on_timer(50 + 91) == [("close", "idle")]


def test_forged_and_replayed_datagrams_move_nothing() -> None:
    client, server = established()
    (ka,) = datagrams(client.on_timer(25))
    assert server.on_datagram(*CLIENT_NAT, ka, 25) == []
    attacker = ("192.0.2.66", 6666)
    assert server.on_datagram(*attacker, ka, 26) == []                 # replay
    forged = datagram.seal(datagram.KEEPALIVE, SESSION, 10**9, bytes(32))
    assert server.on_datagram(*attacker, forged, 27) == []             # wrong key
    assert server.on_datagram(*attacker, b"\xff\xff\xff\xff", 28) == []  # bare keepalive
    assert server.endpoint == CLIENT_NAT and server.last_seen == 25


def test_client_probes_until_answered_then_times_out() -> None:
    client = ClientSession(0.0, ["ipv4"])
    client.start()
    lease = protocol.Framer().feed(protocol.encode(protocol.LEASE, {
        "session": SESSION.hex(), "key": KEY.hex(), "data_port": 50000, "mtu": 1400,
        "keepalive": 25}))[0]
    client.on_message(*lease, 0.0)
    assert client.on_timer(0.5) == []
    assert len(datagrams(client.on_timer(1.0))) == 1
    assert len(datagrams(client.on_timer(2.0))) == 1
    acts = client.on_timer(HANDSHAKE_TIMEOUT + 1)
    assert acts[-1][0] == "close" and "no answer to the probe" in str(acts[-1][1])


@pytest.mark.parametrize("mtype, body", [(protocol.READY, {}), (protocol.ENDPOINT, {
    "address": "x", "port": 1})])
def test_unexpected_message_ends_only_that_session(mtype: int, body: dict[str, object]) -> None:
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    acts = server.on_message(mtype, body)
    (err,) = messages(acts)
    assert err[0] == protocol.ERROR and err[1]["code"] == "unexpected"
    assert acts[-1][0] == "close"


def test_lease_failure_and_handshake_timeout() -> None:
    server = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    server.on_message(protocol.HELLO, {"want": ["ipv4"]})
    (err,) = messages(server.leased([], error="address pool 10.77.0.0/30 is exhausted"))
    assert err[1] == {"code": "lease", "text": "address pool 10.77.0.0/30 is exhausted"}
    late = ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    assert late.on_timer(HANDSHAKE_TIMEOUT - 1) == []
    assert late.on_timer(HANDSHAKE_TIMEOUT + 1)[-1] == ("close", "timeout: handshake not "
                                                                  "finished in time")
