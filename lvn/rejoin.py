"""When a client joins its server again (sans-I/O, both interpreters): the
back-off with jitter after a failed join or a lost session, the wait for
a valid clock, and which of its servers it joins.  One policy for the
CPython client and the MicroPython node; the shells pass in their clocks
and random sources, and send and receive the datagrams.

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

from . import datagram

try:
    from collections.abc import Callable
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

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
