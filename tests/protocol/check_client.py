"""The client's policy (lvn/clientpolicy.py) against a server session
(lvn/session.py) through an in-memory wire, as h11's tests pair a client
and a server: the join, keepalives and a silent server, NAT rebinding, a
server restart, revocation, the clock gate, a malformed LEASE, back-off
and the choice of server by load.  For CPython and MicroPython:

    micropython tests/protocol/check_client.py
Prints one line per failed check and "client policy: N passed, M
failed"; exit status 0 only if all passed.  (pytest runs it both ways.)
"""

import sys

HERE = sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else "."
sys.path.insert(0, HERE + "/../..")

from checks import Checks  # noqa: E402

from lvn import clientpolicy, datagram, messages, protocol, session  # noqa: E402

SUITE = Checks("client policy")
CHECKS = SUITE.all
check = SUITE.check

SERVER_IP = "203.0.113.1"
DATA_PORT = 5555
KEEPALIVE = 25
IDLE = 90
LEASED = ["fd77::2/64", "10.77.0.2/16"]
POOLS = ["10.77.0.0/16", "fd77::/64"]
PROBE_KEY = bytes(range(32, 64))


class Pair:
    """A client policy and the server's session of it, joined by a wire
    that delivers every action at once, in order; ``at`` is where the
    client's datagrams come from (its NAT's mapping)."""

    def __init__(self, servers=("gw1",), rand=0.0, valid_from=0.0):  # type: ignore[no-untyped-def]
        self.now = 1000.0
        self.wall = 1.8e9
        self.client = clientpolicy.ClientPolicy(list(servers), 5000, valid_from,
                                                lambda: rand, KEEPALIVE, 3)
        self.server = None  # type: ignore[var-annotated]
        self.sessions = 0
        self.at = ("192.0.2.7", 40000)
        self.silent = False   # the server hears nothing and says nothing
        self.seen = []        # type: ignore[var-annotated]  # every action, as (side, action)
        self.moved = []       # type: ignore[var-annotated]  # the server's MoveTunnel targets
        self.nonces = 0

    def nonce(self, n):  # type: ignore[no-untyped-def]
        self.nonces += 1
        return bytes([self.nonces]) * n

    def tick(self, seconds=0.0):  # type: ignore[no-untyped-def]
        self.now += seconds
        self.wall += seconds
        self.run("client", self.client.tick(self.now, self.wall, self.nonce))
        if self.server is not None:
            self.run("server", self.server.on_timer(self.now))

    def run(self, side, actions):  # type: ignore[no-untyped-def]
        queue = [(side, a) for a in actions]
        while queue:
            side, act = queue.pop(0)
            self.seen.append((side, act))
            answer = self.client_act(act) if side == "client" else self.server_act(act)
            if answer:
                queue += [("server" if side == "client" else "client", a) for a in answer]

    def client_act(self, act):  # type: ignore[no-untyped-def]
        if isinstance(act, clientpolicy.Connect):
            self.sessions += 1
            self.server = session.ServerSession(bytes([self.sessions]) * 32,
                                                bytes([self.sessions]) * 8, self.now, DATA_PORT,
                                                1400, KEEPALIVE, IDLE)
            self.run("client", self.client.connecting(SERVER_IP, self.now)
                     + self.client.secured(self.now))
        elif isinstance(act, clientpolicy.Disconnect):
            self.server = None
        elif self.server is None or self.silent:
            return []
        elif isinstance(act, session.Send):
            return self.server.receive(act.data, self.now)
        elif isinstance(act, session.SendDatagram):
            return self.server.on_datagram(self.at[0], self.at[1], act.data, self.now)
        return []

    def server_act(self, act):  # type: ignore[no-untyped-def]
        if self.silent:
            return []
        if isinstance(act, session.Allocate):  # the server's own answer to its action
            self.run("server", self.server.leased(LEASED, sources=POOLS, probe_key=PROBE_KEY))
        if isinstance(act, session.Send):
            return self.client.received(act.data, self.now)
        if isinstance(act, session.Answer) and (act.address, act.port) == self.at:
            return self.client.datagram(act.data, self.now)
        if isinstance(act, session.MoveTunnel):
            self.moved.append((act.address, act.port))
        return []

    def client_did(self, kind):  # type: ignore[no-untyped-def]
        return [a for side, a in self.seen if side == "client" and isinstance(a, kind)]

    def hooks(self):  # type: ignore[no-untyped-def]
        return [a.event for a in self.client_did(clientpolicy.Hook)]

    def logged(self, text):  # type: ignore[no-untyped-def]
        return [a.text for a in self.client_did(clientpolicy.Log) if text in a.text]

    def joined(self):  # type: ignore[no-untyped-def]
        """Tick until the client is up (at most a minute of back-off)."""
        for _ in range(60):
            self.tick(1.0)
            if self.client.up:
                return True
        return False


@check
def join_applies_the_lease_and_opens_the_tunnel() -> bool:
    p = Pair()
    p.tick()
    c = p.client
    configure = p.client_did(session.Configure)
    return (c.up and c.peer()["state"] == session.ClientState.UP and p.hooks() == ["up"]
            and p.server.state == session.ServerState.UP and p.moved == [p.at]
            and len(configure) == 1 and configure[0].lease.data_port == DATA_PORT
            and len(p.client_did(session.OpenTunnel)) == 1
            and c.peer() == {"name": "gw1", "state": "up", "tunnel_id": 0,
                             "addresses": sorted(LEASED), "endpoint": [SERVER_IP, DATA_PORT]}
            and c.sources == POOLS and c.rejoin.key == PROBE_KEY
            and p.logged("lease: 10.77.0.2/16, fd77::2/64, mtu 1400") != []
            and c.wake_at(p.now) == p.now + KEEPALIVE)


@check
def keepalives_answered_then_a_silent_server_is_left() -> bool:
    p = Pair()
    p.tick()
    p.tick(KEEPALIVE)
    answered = p.client.session.unanswered == 0 and p.client.up
    p.silent = True
    for _ in range(4):  # dead_after 3: the fourth is not sent, the session ends
        p.tick(KEEPALIVE)
    c = p.client
    gone = (not c.up and c.session is None and p.hooks() == ["up", "down"]
            and len(p.client_did(clientpolicy.Disconnect)) == 1
            and p.logged("the server answered none of the last 3 keepalives") != []
            and c.peer()["state"] == "connecting")
    connects = len(p.client_did(clientpolicy.Connect))
    p.tick(0.5)  # back-off: 1 s (rand 0)
    waited = len(p.client_did(clientpolicy.Connect)) == connects
    p.silent = False
    return answered and gone and waited and p.joined() and p.hooks() == ["up", "down", "up"]


@check
def nat_rebinding_moves_the_tunnel_after_a_challenge() -> bool:
    p = Pair()
    p.tick()
    p.at = ("192.0.2.7", 40001)  # the NAT gave the client a new port
    p.tick(KEEPALIVE)
    responses = [a for a in p.client_did(session.SendDatagram)
                 if datagram.mtype_of(a.data) == datagram.RESPONSE]
    return (p.moved == [("192.0.2.7", 40000), ("192.0.2.7", 40001)] and len(responses) == 1
            and p.client.up and p.hooks() == ["up"])


@check
def server_restart_the_client_joins_again() -> bool:
    p = Pair()
    p.tick()
    p.server = None  # it lost power; after its restart, TLS resets
    p.run("client", p.client.lost("the server closed the connection", p.now))
    down = p.hooks() == ["up", "down"] and not p.client.up
    return (down and p.joined() and p.sessions == 2 and p.hooks() == ["up", "down", "up"]
            and p.client.addresses == sorted(LEASED))


@check
def revocation_sends_the_client_to_its_next_server() -> bool:
    p = Pair(servers=("gw1", "gw2"))
    p.tick()
    p.run("server", [session.Send(messages.encode(messages.Error(
        "revoked", "your certificate was revoked")))])
    c = p.client
    return (not c.up and c.session is None and c.server() == "gw2"
            and p.logged("server: your certificate was revoked; retrying in 1.0 s") != []
            and p.hooks() == ["up", "down"])


@check
def clock_gate_waits_for_the_certificate_to_be_valid() -> bool:
    p = Pair(valid_from=1.8e9 + 3600)  # the router booted before its certificate's start
    p.tick()
    waiting = (p.client_did(clientpolicy.Connect) == []
               and p.client.peer()["state"] == "waiting for a valid clock"
               and len(p.logged("waiting for a valid clock")) == 1)
    p.tick(5.0)
    quiet = len(p.logged("waiting for a valid clock")) == 1   # said once
    p.wall += 7200  # NTP set the clock
    p.tick(5.0)
    return (waiting and quiet and len(p.client_did(clientpolicy.Connect)) == 1
            and p.logged("the clock is valid now") != [] and p.client.up)


def _bad_lease(field, value):  # type: ignore[no-untyped-def]
    """A client that got a LEASE with ``field`` set to ``value``."""
    body = {"session": "01" * 8, "key": "02" * 32, "data_port": DATA_PORT, "mtu": 1400,
            "keepalive": KEEPALIVE, "addr4": "10.77.0.2/16"}
    body[field] = value
    p = Pair()
    p.silent = True  # the server says nothing of its own
    p.tick()
    p.silent = False
    p.run("client", p.client.received(protocol.encode(protocol.LEASE, body), p.now))
    return p


@check
def malformed_or_out_of_range_lease_fields_end_the_session() -> bool:
    ok = True
    for field, value in (("data_port", 70000), ("addr4", "x"), ("mtu", 100),
                         ("addr4", "fd77::2/64"), ("sources", ["10.0.0.0/33"])):
        p = _bad_lease(field, value)
        errors = [messages.decode(*protocol.Framer().feed(a.data)[0])
                  for a in p.client_did(session.Send)
                  if protocol.Framer().feed(a.data)[0][0] == protocol.ERROR]
        ok = ok and (p.client_did(session.Configure) == [] and p.client.session is None
                     and len(errors) == 1 and errors[0].code == "protocol"
                     and "'" + field + "'" in errors[0].text
                     and p.logged("retrying in") != [] and p.hooks() == [])
    return ok


@check
def backoff_doubles_to_a_minute_and_resets_after_a_join() -> bool:
    p = Pair(rand=0.0)
    delays = []
    for _ in range(8):
        p.run("client", p.client.unreachable("no route to host", p.now))
        delays.append(p.client.rejoin.retry_at - p.now)
    p.tick(61.0)  # joins
    p.run("client", p.client.lost("the server closed the connection", p.now))
    return (delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
            and p.client.rejoin.retry_at - p.now == 1.0
            and p.logged("cannot reach gw1: no route to host; retrying in 1.0 s") != [])


@check
def jitter_spreads_the_retries_by_up_to_half() -> bool:
    p = Pair(rand=0.999)
    p.run("client", p.client.unreachable("no route to host", p.now))
    p.run("client", p.client.unreachable("no route to host", p.now))
    return 2.99 < p.client.rejoin.retry_at - p.now < 3.0


@check
def the_least_loaded_server_is_chosen_by_its_load_answer() -> bool:
    p = Pair(servers=("gw1", "gw2"))
    p.tick()  # the first join: no key yet, gw1 in list order
    p.server = None
    p.run("client", p.client.lost("the server closed the connection", p.now))
    p.tick(1.5)
    probes = p.client_did(clientpolicy.Probe)
    sent = [(a.server, datagram.mtype_of(a.data)) for a in probes]
    loads = {"gw1": (900, 1000), "gw2": (10, 1000)}
    for a in probes:  # each server answers with its load, sealed with the key
        figure = datagram.load_figure(*loads[a.server])
        p.run("client", p.client.datagram(datagram.seal(
            datagram.LOAD, datagram.session_of(a.data), figure, PROBE_KEY), p.now))
    p.tick()  # both answered: the choice is made at once
    return (sent == [("gw1", datagram.LOAD_PROBE), ("gw2", datagram.LOAD_PROBE)]
            and p.client.server() == "gw2" and p.client.up and p.sessions == 2
            and p.logged("choosing a server: server 2 answered") != [])


@check
def a_secured_connection_without_a_lease_times_out() -> bool:
    p = Pair()
    p.silent = True
    p.tick()
    p.tick(session.HANDSHAKE_TIMEOUT + 1)
    return (p.client.session is None and p.logged("no lease from the server") != []
            and len(p.client_did(clientpolicy.Disconnect)) == 1)


@check
def a_connection_never_secured_times_out() -> bool:
    """The CPython shell calls ``connecting`` at once and ``secured`` only
    after the TLS handshake: SYNs or a handshake left unanswered end it."""
    p = Pair()
    p.run("client", p.client.connecting(SERVER_IP, p.now))
    p.tick(session.HANDSHAKE_TIMEOUT - 1)
    still = p.client.connected_at is not None
    p.tick(2)
    return (still and p.client.connected_at is None
            and p.logged("no TLS session with 203.0.113.1 after 30 s") != [])


@check
def a_reload_restarts_the_session_on_the_first_server() -> bool:
    p = Pair(servers=("gw1", "gw2"))
    p.tick()
    p.run("client", p.client.restart(["gw3", "gw4"], 0.0, p.now))
    return (p.client.session is None and p.client.server() == "gw3"
            and p.hooks() == ["up", "down"] and p.joined() and p.sessions == 2
            and p.logged("configuration changed: joining gw3 again") != [])


@check
def rejoin_backoff_and_clock_gate() -> bool:
    r = clientpolicy.Rejoin(1000.0, lambda: 0.5)   # the certificate is valid from t=1000
    due, said = r.due(0.0, 10.0)              # a router that booted in 1970
    ok = not due and "waiting for a valid clock" in said and "1970-01-01 00:00:10" in said
    ok = ok and r.due(1.0, 11.0) == (False, "")          # said once; next look at 5 s
    due, said = r.due(5.0, 2000.0)
    ok = ok and due and "the clock is valid now" in said
    delays = [r.failed(100.0) for _ in range(8)]
    ok = ok and delays[:3] == [1.25, 2.5, 5.0] and delays[-1] == 75.0  # capped at 60 + 25 %
    ok = ok and r.due(100.0 + 74.0, 2000.0) == (False, "") and r.due(175.1, 2000.0)[0]
    r.joined()
    return ok and r.failed(0.0) == 1.25


@check
def rejoin_fails_over_to_the_next_server() -> bool:
    r = clientpolicy.Rejoin(0.0, lambda: 0.0, servers=3)
    order = [r.current]
    for _ in range(4):   # a failed join or a lost session: the next server
        r.failed(0.0)
        order.append(r.current)
    ok = order == [0, 1, 2, 0, 1]
    r.joined()           # staying up keeps the server it is on
    ok = ok and r.current == 1
    r.reset(0.0, 2)      # a new configuration starts at its first server
    one = clientpolicy.Rejoin(0.0, lambda: 0.0)
    one.failed(0.0)
    return ok and (r.current, r.servers) == (0, 2) and one.current == 0


def _answer(r, i, clients, capacity, nonce_of, key=b"k" * 32, mtype=7):  # type: ignore[no-untyped-def]
    """Server i's LOAD to the probe it got (``nonce_of``: server -> nonce)."""
    return datagram.seal(mtype, nonce_of[i], datagram.load_figure(clients, capacity), key)


def _probe_round(r, now):  # type: ignore[no-untyped-def]
    """Send a round of load probes: server index -> its nonce."""
    n = [0]

    def nonce(size):  # type: ignore[no-untyped-def]
        n[0] += 1
        return bytes([n[0]]) * size

    sent = r.probes(now, nonce)
    return {i: datagram.session_of(d) for i, d in sent}, sent


@check
def rejoin_chooses_the_least_loaded_server_that_answers() -> bool:
    r = clientpolicy.Rejoin(0.0, lambda: 0.0, servers=3)
    ok = r.probes(0.0, bytes) == []           # no probe key yet: the list in order
    r.key = b"k" * 32                         # (from the last LEASE)
    nonces, sent = _probe_round(r, 10.0)
    ok = ok and [i for i, _ in sent] == [0, 1, 2] and r.retry_at == 11.0
    ok = ok and all(datagram.mtype_of(d) == datagram.LOAD_PROBE for _, d in sent)
    ok = ok and not r.due(10.5, 10.5)[0]      # waiting for the answers
    said = r.on_load(_answer(r, 0, 500, 1000, nonces), 10.2)
    ok = ok and said == "server 1 answered in 200 ms: 500 of 1000 client(s)"
    ok = ok and r.on_load(_answer(r, 0, 0, 1000, nonces), 10.3) is None   # once only
    said = r.on_load(_answer(r, 2, 10, 100, nonces), 10.3)
    ok = ok and said == "server 3 answered in 300 ms: 10 of 100 client(s)"
    ok = ok and r.retry_at == 11.0            # server 2 has not answered: the wait goes on
    ok = ok and r.due(11.0, 11.0)[0] and r.probes(11.0, bytes) == []
    return ok and r.current == 2              # 10 % against 50 %; server 2 (index 1) silent


@check
def rejoin_prefers_the_nearer_of_equal_loads_and_skips_drains_and_forgeries() -> bool:
    r = clientpolicy.Rejoin(0.0, lambda: 0.0, servers=3)
    r.key = b"k" * 32
    nonces, _ = _probe_round(r, 0.0)
    ok = r.on_load(_answer(r, 0, 5, 0, nonces), 0.01) == "server 1 answered in 10 ms: draining"
    ok = ok and r.on_load(_answer(r, 1, 0, 1000, nonces, key=b"x" * 32), 0.02) is None  # forged
    ok = ok and r.on_load(_answer(r, 1, 0, 1000, nonces, mtype=3), 0.02) is None   # not a LOAD
    r2 = clientpolicy.Rejoin(0.0, lambda: 0.0, servers=3)
    r2.key = b"k" * 32
    n2, _ = _probe_round(r2, 0.0)
    r2.on_load(_answer(r2, 2, 105, 1000, n2), 0.01)   # near, 10.5 %
    r2.on_load(_answer(r2, 1, 100, 1000, n2), 0.05)   # far, 10 %: within SAME_LOAD
    r2.on_load(_answer(r2, 0, 5, 0, n2), 0.06)        # draining
    ok = ok and r2.retry_at == 0.06                   # all answered: choose at once
    r2.probes(0.06, bytes)
    return ok and r2.current == 2


@check
def rejoin_does_not_choose_the_server_it_just_left() -> bool:
    r = clientpolicy.Rejoin(0.0, lambda: 0.0, servers=2)
    r.key = b"k" * 32
    r.failed(0.0)                  # server 1 sent it away (drain, rebalance) or failed
    nonces, _ = _probe_round(r, 5.0)
    r.on_load(_answer(r, 0, 0, 1000, nonces), 5.01)   # the one it left: empty, nearest
    r.on_load(_answer(r, 1, 9, 1000, nonces), 5.02)
    r.probes(5.02, bytes)
    ok = r.current == 1
    r.joined()
    r.failed(10.0)                 # now server 2 failed; only server 1 answers
    nonces, _ = _probe_round(r, 20.0)
    r.on_load(_answer(r, 0, 900, 1000, nonces), 20.1)
    r.probes(21.0, bytes)
    return ok and r.current == 0

if __name__ == "__main__":
    sys.exit(SUITE.main())
