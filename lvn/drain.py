"""A server leaving in a trickle (docs/servers.md, "Draining a server").

While a server drains, it refuses new sessions with ERROR ``draining``
and ends its sessions, at most ``rate`` a second, with the same error;
each client then joins the next server of its list.  Pure: the server
asks ``due(now)`` on every tick how many sessions to end.
"""

from __future__ import annotations

CODE = "draining"
TEXT = "this server is leaving: join another"


class Drain:
    def __init__(self) -> None:
        self.on = False
        self.rate = 1.0    # sessions ended a second
        self.credit = 0.0  # sessions that may be ended now (a fraction carries over)
        self.last = 0.0
        self.moved = 0     # sessions ended since the drain began

    def start(self, rate: float, now: float) -> None:
        """Begin (or change the rate of) a drain; the first session may go at once."""
        if rate <= 0:
            raise ValueError(f"drain rate must be above 0 (got {rate})")
        if not self.on:
            self.on, self.credit, self.moved = True, 1.0, 0
        self.rate, self.last = rate, now

    def stop(self) -> None:
        self.on = False

    def due(self, now: float, sessions: int) -> int:
        """How many of ``sessions`` to end now: ``rate`` a second on
        average, never a burst of more than a second's worth."""
        if not self.on:
            return 0
        self.credit = min(self.credit + max(0.0, now - self.last) * self.rate,
                          max(1.0, self.rate))
        self.last = now
        n = min(int(self.credit), sessions)
        self.credit -= n
        self.moved += n
        return n
