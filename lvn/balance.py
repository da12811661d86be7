"""Sending clients to a server with room (docs/servers.md, "Rebalancing").

Servers that share etcd publish their clients and capacity there
(lvn/presence.py).  A server whose load is above the least loaded other
live server's (not draining) by more than ``margin`` clients ends
sessions with ERROR ``rebalance``, one at a time at its drain rate; each
client joins the next server of its list.  So clients come back to a
server that returns after a failure or a drain, and spread over servers
that all of them list first.

No flapping: a client is sent only while this server, one client
lighter, stays at least as loaded as the other one client heavier, so
that server never has a reason to send it back.  etcd's figures lag (up
to two publishing periods and the client's rejoin): clients sent in the
last ``SETTLE`` seconds are counted as already there.  A client that is
back within SETTLE (it lists this server only, or cannot reach the
other) is left alone for ``STAY`` seconds.  Pure: the server asks
``pick()`` on every tick and tells ``joined()`` of each new session.
"""

from __future__ import annotations

CODE = "rebalance"
TEXT = "another server has room: join the next one"
SETTLE = 15.0  # s until a client sent away shows in etcd's figures
STAY = 3600.0  # s a client that came straight back is not sent again


class Balance:
    def __init__(self, margin: int, rate: float) -> None:
        self.margin = margin   # clients above another server's load that start a move; 0: never
        self.rate = rate       # clients sent a second at most
        self.next_at = 0.0
        self.sent: list[float] = []  # when the clients of the last SETTLE seconds were sent
        self.moved = 0               # clients sent since the server started
        self.away: dict[str, float] = {}  # client -> when it was sent (last SETTLE s)
        self.stay: dict[str, float] = {}  # client -> until when it is left alone

    def joined(self, name: str, now: float) -> bool:
        """A new session of ``name``; True: it came back at once after it
        was sent away, and now stays."""
        sent = self.away.pop(name, None)
        if sent is not None and now - sent < SETTLE:
            self.stay[name] = now + STAY
            return True
        return False

    def pick(self, now: float, names: list[str], capacity: int,
             others: list[tuple[int, int]]) -> str | None:
        """The client to send away now (of this server's ``names``, oldest
        first), or None; ``others`` as for ``due()``."""
        self.away = {n: t for n, t in self.away.items() if now - t < SETTLE}
        self.stay = {n: t for n, t in self.stay.items() if t > now}
        movable = [n for n in names if n not in self.stay]
        if not movable or not self.due(now, len(names), capacity, others):
            return None
        self.away[movable[0]] = now
        return movable[0]

    def due(self, now: float, clients: int, capacity: int,
            others: list[tuple[int, int]]) -> bool:
        """Whether to send one of this server's ``clients`` away now;
        ``others``: (clients, capacity) of every other live server that
        does not drain, as last read from etcd."""
        self.sent = [t for t in self.sent if now - t < SETTLE]
        if self.margin <= 0 or clients == 0 or not others or now < self.next_at:
            return False
        theirs, their_capacity = min(others, key=lambda o: o[0] / max(o[1], 1))
        their_capacity = max(their_capacity, 1)
        theirs += len(self.sent)  # on their way there
        above = clients - theirs * capacity / their_capacity
        if above <= self.margin or (clients - 1) * their_capacity < (theirs + 1) * capacity:
            return False
        self.sent.append(now)
        self.moved += 1
        self.next_at = now + 1.0 / self.rate
        return True
