"""When a client joins its server again (sans-I/O, both interpreters): the
back-off with jitter after a failed join or a lost session, and the wait
for a valid clock.  One policy for the CPython client and the MicroPython
node; the shells pass in their clocks and a random source.

Routers without a real-time clock boot in 1970: certificates cannot be
checked until NTP has set the time, so the client waits, calmly, until
the wall clock reaches its own certificate's start.
"""

import time

try:
    from collections.abc import Callable
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
CLOCK_CHECK = 5.0  # s between looks at a clock that is not valid yet


def utc(t: float) -> str:
    y, mo, d, h, mi, sec = time.gmtime(int(t))[:6]
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{sec:02d} UTC"


class Rejoin:
    """``due(now, wall)`` says when to connect; ``failed(now)`` after a join
    failed or a session ended; ``joined()`` once the tunnel is up.  ``now``
    is a monotonic clock, ``wall`` the Unix time."""

    def __init__(self, valid_from: float, rand: "Callable[[], float]", servers: int = 1) -> None:
        self.valid_from = valid_from  # the certificate's start (Unix time)
        self.rand = rand              # uniform in [0, 1)
        self.backoff = BACKOFF_MIN
        self.retry_at = 0.0
        self.waiting_for_clock = False
        self.servers = servers        # how many servers the client may join
        self.current = 0              # the index of the one it joins next

    def failed(self, now: float) -> float:
        """The next try in BACKOFF (doubling from 1 s to 60 s) plus up to
        half of it at random, so that clients of a restarted server do not
        come back all at once; the delay."""
        delay = self.backoff + self.rand() * self.backoff / 2
        self.retry_at = now + delay
        self.backoff = min(self.backoff * 2, BACKOFF_MAX)
        # failover: the next try goes to the next server of the list
        self.current = (self.current + 1) % self.servers
        return delay

    def joined(self) -> None:
        self.backoff = BACKOFF_MIN

    def reset(self, valid_from: float, servers: int = 1) -> None:
        """A new configuration (maybe a new certificate): join the first
        server at once."""
        self.valid_from = valid_from
        self.backoff, self.retry_at = BACKOFF_MIN, 0.0
        self.servers, self.current = servers, 0

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
