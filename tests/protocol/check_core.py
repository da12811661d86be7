"""Self-checks of the pure core (protocol, sessions, datagrams, netlink
codec), for CPython and MicroPython.

    micropython tests/protocol/check_core.py
Prints one line per failed check and "protocol core: N passed, M failed";
exit status 0 only if all passed.  (pytest runs the same file both ways.)
"""

import struct
import sys

HERE = sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else "."
sys.path.insert(0, HERE + "/../..")

from checks import Checks, raises  # noqa: E402

from lvn import controlwire, datagram, messages, nlcodec, protocol, session  # noqa: E402

# RFC 4231 test cases 1, 2 and 6 (key longer than the block)
HMAC_VECTORS = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
]

SUITE = Checks("protocol core")
CHECKS = SUITE.all
check = SUITE.check


@check
def hmac_vectors() -> bool:
    return all(datagram.hmac_sha256(k, m) == bytes.fromhex(h) for k, m, h in HMAC_VECTORS)


KEY = bytes(range(32))
SESSION = b"\x01\x02\x03\x04\x05\x06\x07\x08"


@check
def datagram_round_trip() -> bool:
    d = datagram.seal(datagram.KEEPALIVE, SESSION, 7, KEY)
    return (len(d) == 37 and datagram.session_of(d) == SESSION
            and datagram.open_(d, KEY, 6) == (datagram.KEEPALIVE, 7))


@check
def datagram_replay_refused() -> bool:
    d = datagram.seal(datagram.PROBE, SESSION, 7, KEY)
    return (raises(datagram.DatagramError, datagram.open_, d, KEY, 7)
            and raises(datagram.DatagramError, datagram.open_, d, KEY, 8))


@check
def datagram_forgery_refused() -> bool:
    d = datagram.seal(datagram.KEEPALIVE, SESSION, 9, KEY)
    other_key = bytes(32)
    flipped = d[:20] + bytes([d[20] ^ 1]) + d[21:]
    return (raises(datagram.DatagramError, datagram.open_, d, other_key, 0)
            and raises(datagram.DatagramError, datagram.open_, flipped, KEY, 0)
            and raises(datagram.DatagramError, datagram.open_, d[:-1], KEY, 0)
            and raises(datagram.DatagramError, datagram.session_of, b"\xff\xff\xff\xff"))


@check
def nat_keepalive() -> bool:
    return datagram.is_nat_keepalive(b"\xff\xff\xff\xff") and \
        not datagram.is_nat_keepalive(datagram.seal(2, SESSION, 1, KEY))


@check
def framer_round_trip_split() -> bool:
    msgs = [(protocol.HELLO, {"want": ["ipv4", "ipv6"], "extra": 1}),
            (protocol.LEASE, {"session": "0102030405060708", "key": "ab" * 32, "data_port": 50000,
                              "mtu": 1400, "keepalive": 25, "addr4": "10.77.0.2/16"}),
            (protocol.READY, {}), (protocol.BYE, {})]
    stream = b"".join(protocol.encode(t, f) for t, f in msgs)
    f = protocol.Framer()
    got = []
    for i in range(len(stream)):  # one byte at a time
        got += f.feed(stream[i:i + 1])
    return got == msgs and f.pending() == 0


@check
def framer_refuses_garbage() -> bool:
    def feed(data):  # type: ignore[no-untyped-def]
        protocol.Framer().feed(data)
    v = bytes([protocol.VERSION])
    return (raises(protocol.ProtocolError, feed, b"\x03\x01\x00\x02{}")      # version
            and raises(protocol.ProtocolError, feed, v + b"\x63\x00\x02{}")  # type
            and raises(protocol.ProtocolError, feed, v + b"\x01\x10\x01")    # too long
            and raises(protocol.ProtocolError, feed, v + b"\x01\x00\x02[]")  # not object
            and raises(protocol.ProtocolError, feed, v + b"\x01\x00\x03{x}")  # not JSON
            and raises(protocol.ProtocolError, feed, v + b"\x01\x00\x02{}")  # no "want"
            and raises(protocol.ProtocolError, feed,
                       protocol.encode(protocol.ERROR, {"code": "x", "text": "y"})[:4]
                       + b'{"code":1,"text":"y"}'[:15]) is False  # incomplete: waits
            and raises(protocol.ProtocolError, protocol.encode, protocol.LEASE,
                       {"session": "s", "key": "k", "data_port": True, "mtu": 1,
                        "keepalive": 1})
            and raises(protocol.ProtocolError, protocol.encode, protocol.LEASE,
                       {"session": "s", "data_port": 1, "mtu": 1, "keepalive": 1}))


@check
def version_1_refused_by_name() -> bool:
    """Protocol 1 (key exported from TLS 1.3) is refused with a clear reason."""
    try:
        protocol.Framer().feed(b"\x01\x01\x00\x02{}")
    except protocol.ProtocolError as e:
        return "version 1" in str(e) and "same lvn release" in str(e)
    return False


@check
def client_refuses_a_lease_without_a_usable_key() -> bool:
    ok = True
    for key in ("", "00" * 31, "zz" * 32):
        client = session.ClientSession(0.0, ["ipv4"])
        client.start()
        acts = client.receive(protocol.encode(protocol.LEASE, {
            "session": "0102030405060708", "key": key, "data_port": 1, "mtu": 1400,
            "keepalive": 25}), 0.0)
        close = acts[-1]
        ok = ok and isinstance(close, session.Close) and close.reason.startswith(
            "protocol: lease: field 'key': ") and close.reason.endswith(
            " is not 32 bytes in hex") and isinstance(close.error, session.RemoteError)
        ok = ok and client.key == b"" and client.state == session.ClientState.CLOSED
    return ok


def _msgs(actions):  # type: ignore[no-untyped-def]
    return protocol.Framer().feed(_sent(actions))


def _sent(actions):  # type: ignore[no-untyped-def]
    """The bytes the actions write to the TLS stream: the peer's receive()."""
    return b"".join([a.data for a in actions if isinstance(a, session.Send)])


def _datagrams(actions):  # type: ignore[no-untyped-def]
    return [a.data for a in actions if isinstance(a, session.SendDatagram)]


@check
def session_handshake_and_roaming() -> bool:
    client = session.ClientSession(0.0, ["ipv4"])
    server = session.ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)

    def datagram_of(actions):  # type: ignore[no-untyped-def]
        return _datagrams(actions)[0]

    server.receive(_sent(client.start()), 0.0)
    probe = datagram_of(client.receive(_sent(server.leased(["10.77.0.2/16"])), 0.0))
    endpoint = _sent(server.on_datagram("198.51.100.7", 4000, probe, 0.0))
    ready = _sent(client.receive(endpoint, 0.0))
    up = server.receive(ready, 0.0) == [session.Up()]
    ka = datagram_of(client.on_timer(25.0))
    # NAT rebinding: the new address is challenged, the client answers from there
    acts = server.on_datagram("203.0.113.9", 1, ka, 25.0)
    challenge = [a for a in acts if isinstance(a, session.Answer) and a[:2] == (
        "203.0.113.9", 1)][0].data
    response = datagram_of(client.on_datagram(challenge, 25.1))
    moved = server.on_datagram("203.0.113.9", 1, response, 25.2) == [session.MoveTunnel(
        "203.0.113.9", 1)]
    replay = server.on_datagram("192.0.2.66", 6, ka, 26.0) == []
    idle = server.on_timer(25.2 + 91) == [session.Expire()]
    return up and moved and replay and idle and server.endpoint == ("203.0.113.9", 1)


def _up_pair(keepalive=25, dead_after=3, lease_edit=None):  # type: ignore[no-untyped-def]
    """A client and a server session brought up in memory, each one's bytes
    fed to the other (as h11's tests do); ``lease_edit`` changes the LEASE's
    fields before the client sees them."""
    client = session.ClientSession(0.0, ["ipv4", "ipv6"], keepalive, dead_after)
    server = session.ServerSession(KEY, SESSION, 0.0, 50000, 1400, 25, 90)
    server.receive(_sent(client.start()), 0.0)
    lease = _msgs(server.leased(["10.77.0.2/16", "fd77::2/64"],
                                sources=["10.77.0.0/16", "fd77::/64"]))[0]
    if lease_edit is not None:
        lease_edit(lease[1])
    acts = client.receive(protocol.encode(lease[0], lease[1]), 0.0)
    if client.state == session.CLOSED:
        return client, server, acts
    endpoint = _sent(server.on_datagram("198.51.100.7", 4000, _datagrams(acts)[0], 0.0))
    server.receive(_sent(client.receive(endpoint, 0.0)), 0.0)
    return client, server, acts


@check
def liveness_server_answers_keepalives() -> bool:
    client, server, _ = _up_pair()
    ok = client.state == session.ClientState.UP and client.answers
    t = 25.0
    for _ in range(10):  # answered keepalives: the session stays up
        (ka,) = _datagrams(client.on_timer(t))
        acts = server.on_datagram("198.51.100.7", 4000, ka, t)
        answers = [a for a in acts if isinstance(a, session.Answer)]
        ok = ok and len(answers) == 1 and answers[0][:2] == ("198.51.100.7", 4000)
        ok = ok and client.on_datagram(answers[0].data, t + 0.1) == []
        ok = ok and client.on_datagram(answers[0].data, t + 0.2) == []  # a replay: ignored
        t += 25.0
    return ok and client.state == session.ClientState.UP and client.unanswered == 0


@check
def liveness_silent_server_ends_the_session() -> bool:
    client, server, _ = _up_pair(dead_after=3)
    sent = 0
    t = 25.0
    while client.state == session.ClientState.UP and t < 1000:
        acts = client.on_timer(t)
        sent += len(_datagrams(acts))
        t += 25.0
    close = acts[-1]
    return (sent == 3 and isinstance(close, session.Close)
            and isinstance(close.error, session.RemoteError)
            and close.error.code == "timeout" and "3 keepalives" in close.reason
            and client.state == session.CLOSED)


@check
def liveness_reflected_datagrams_are_refused() -> bool:
    client, server, _ = _up_pair()
    (ka,) = _datagrams(client.on_timer(25.0))
    ack = [a for a in server.on_datagram("198.51.100.7", 4000, ka, 25.0)
           if isinstance(a, session.Answer)][0].data
    # the client's own keepalive reflected to it, the server's answer to the server
    return (client.on_datagram(ka, 26.0) == [] and client.unanswered == 1
            and server.on_datagram("192.0.2.66", 1, ack, 26.0) == []
            and server.endpoint == ("198.51.100.7", 4000))


def _answers(actions, where):  # type: ignore[no-untyped-def]
    return [a.data for a in actions if isinstance(a, session.Answer) and a[:2] == where]


HOME = ("198.51.100.7", 4000)
ATTACKER = ("192.0.2.66", 6666)


@check
def path_validation_first_copy_moves_nothing() -> bool:
    """A man-on-the-side relays a keepalive's copy before the original: the
    tunnel stays, the attacker's address gets a challenge it cannot answer,
    and the client still hears an ACK at home (no false death)."""
    client, server, _ = _up_pair()
    (ka,) = _datagrams(client.on_timer(25.0))
    acts = server.on_datagram(*ATTACKER, ka, 25.0)
    ok = not [a for a in acts if isinstance(a, session.MoveTunnel)]
    ok = ok and len(_answers(acts, ATTACKER)) == 1 and server.endpoint == HOME
    (ack,) = _answers(acts, HOME)
    ok = ok and client.on_datagram(ack, 25.1) == [] and client.unanswered == 0
    ok = ok and server.on_datagram(*HOME, ka, 25.2) == []   # the original: a replay
    # the attacker forwards the challenge to the client, whose response comes from home
    challenge = _answers(acts, ATTACKER)[0]
    response = _datagrams(client.on_datagram(challenge, 25.3))
    ok = ok and len(response) == 1
    ok = ok and server.on_datagram(*HOME, response[0], 25.4) == []
    # a forged response from the attacker's address moves nothing either
    forged = datagram.seal(datagram.RESPONSE, SESSION, 10**6, bytes(32),
                           datagram.challenge_binding(1))
    ok = ok and server.on_datagram(*ATTACKER, forged, 25.5) == []
    # and the genuine response replayed from the attacker's address is stale
    ok = ok and server.on_datagram(*ATTACKER, response[0], 25.6) == []
    return ok and server.endpoint == HOME


@check
def path_validation_response_is_bound_to_its_challenge() -> bool:
    client, server, _ = _up_pair()
    other, _, _ = _up_pair()
    (ka,) = _datagrams(client.on_timer(25.0))
    new = ("203.0.113.9", 1234)
    challenge = _answers(server.on_datagram(*new, ka, 25.0), new)[0]
    # a RESPONSE bound to another counter, and one of another session, fail
    wrong = datagram.seal(datagram.RESPONSE, SESSION, 99, KEY, datagram.challenge_binding(7))
    ok = server.on_datagram(*new, wrong, 25.1) == []
    # (the other pair shares KEY and SESSION in these checks: a different key here)
    alien = datagram.seal(datagram.RESPONSE, SESSION, 100, bytes(range(1, 33)),
                          datagram.challenge_binding(server.challenge[2]))
    ok = ok and server.on_datagram(*new, alien, 25.2) == [] and other.state == "up"
    response = _datagrams(client.on_datagram(challenge, 25.3))[0]
    return ok and server.on_datagram(*new, response, 25.4) == [session.MoveTunnel(*new)] \
        and server.endpoint == new and server.challenge is None


@check
def client_keepalive_option_shortens_the_interval() -> bool:
    client, server, _ = _up_pair(keepalive=10)
    longer, _, _ = _up_pair(keepalive=600)
    return client.keepalive == 10 and longer.keepalive == 25


@check
def bad_lease_fields_are_a_remote_error() -> bool:
    ok = True
    for edit in ({"data_port": 70000}, {"data_port": 0}, {"mtu": 10},
                 {"keepalive": 0}, {"addr4": 7}, {"addr4": "fd77::2/64"},
                 {"addr6": "fd77::2"}, {"addr4": "10.77.0.300/24"},
                 {"sources": "10.77.0.0/16"}, {"sources": ["10.77.0.1/16"]},
                 {"sources": [7]}, {"sources": ["10.0.0.0/8"] * 9}, {"answers": 1},
                 {"session": "0102"}, {"probe_key": "zz"}, {"probe_key": "01" * 31}):
        client, _, acts = _up_pair(lease_edit=lambda body, e=edit: body.update(e))
        close = acts[-1] if acts else None
        name = list(edit)[0]
        ok = ok and isinstance(close, session.Close) and client.state == session.CLOSED
        ok = ok and isinstance(close.error, session.RemoteError)
        ok = ok and close.error.code == "protocol" and repr(name) in close.reason
        ok = ok and isinstance(acts[0], session.Send)  # the server is told why
        if not ok:
            print("lease edit", edit, "->", acts)
            return False
    client, _, acts = _up_pair()
    configure = acts[0]
    return (isinstance(configure, session.Configure)
            and configure.lease == messages.Lease(
                SESSION, KEY, 50000, 1400, 25, True, "10.77.0.2/16", "fd77::2/64",
                ["10.77.0.0/16", "fd77::/64"], b"")
            and configure.lease.addresses() == ["10.77.0.2/16", "fd77::2/64"]
            and messages.decode(protocol.LEASE, protocol.Framer().feed(messages.encode(
                messages.Lease(*(list(configure.lease)[:-1] + [b"p" * 32]))))[0][1]
            ).probe_key == b"p" * 32)


@check
def deeply_nested_json_is_a_protocol_error() -> bool:
    deep = ("[" * 2000 + "]" * 2000).encode()
    frame = struct.pack(">BBH", protocol.VERSION, protocol.HELLO, len(deep)) + deep
    ok = raises(protocol.ProtocolError, protocol.Framer().feed, frame)
    ok = ok and raises(controlwire.CallError, controlwire.parse_request,
                       b'{"method": "status", "args": ' + b"[" * 3000 + b"]" * 3000 + b"}")
    # brackets inside strings do not count
    fine = protocol.encode(protocol.HELLO, {"want": ["[[[[" * 100, "\\\"{{{{"]})
    return ok and protocol.Framer().feed(fine)[0][1]["want"][0] == "[[[[" * 100


@check
def session_misuse_is_a_local_error() -> bool:
    client = session.ClientSession(0.0, ["ipv4"])
    client.start()
    return raises(session.LocalError, client.start)


class _Space:
    """A netlink attribute space as a plain class (what MicroPython uses)."""

    nla_map = (("U", "none"), ("NAME", "asciiz"), ("PORT", "uint16"), ("T", "inner"))

    class inner:  # noqa: N801
        nla_flags = 0x8000
        nla_map = (("U", "none"), ("ID", "uint32"), ("R4", "ip4addr"), ("R6", "ip6addr"))


@check
def netlink_attrs_both_orders() -> bool:
    ok = True
    for order in "<>":
        body = nlcodec.encode_attrs(_Space, [("NAME", "lvn0"), ("PORT", 5000), ("T", {"attrs": [
            ("ID", 7), ("R4", "10.0.0.1"), ("R6", "fd00::1")]})], order)
        top = nlcodec.attrs(body, 0, order)
        inner = nlcodec.attrs(top[2][1], 0, order)
        ok = ok and top[0] == (1, b"lvn0\0") and top[1][1] == (
            b"\x13\x88" if order == ">" else b"\x88\x13") and inner[1] == (2, b"\n\0\0\x01")
        ok = ok and inner[2][1] == b"\xfd" + bytes(14) + b"\x01"
    return ok


@check
def netlink_extended_ack_both_orders() -> bool:
    ok = True
    for order in "<>":
        req = nlcodec.message(0x1E, 5, 3, bytes(6), order)
        # NLMSGERR_ATTR_MSG is type 1, as NAME is in _Space
        tlv = nlcodec.encode_attrs(_Space, [("NAME", "missing attribute")], order)
        payload = struct.pack(order + "i", -22) + req + bytes(2) + tlv
        ((mtype, flags, seq, body),) = nlcodec.split(nlcodec.message(
            nlcodec.NLMSG_ERROR, nlcodec.NLM_F_ACK_TLVS, 3, payload, order), order)
        ack = nlcodec.parse_ack(flags, seq, body, order)
        ok = ok and (mtype, ack.errno, ack.seq, ack.message) == (2, 22, 3, "missing attribute")
    return ok


@check
def netlink_refuses_bad_framing() -> bool:
    return (raises(nlcodec.NetlinkFormatError, nlcodec.split, b"\x10\0\0")
            and raises(ValueError, nlcodec.ip6_packed, "1::2::3")
            and nlcodec.ip6_packed("::ffff:1.2.3.4") == bytes(10) + b"\xff\xff\x01\x02\x03\x04")


if __name__ == "__main__":
    sys.exit(SUITE.main())
