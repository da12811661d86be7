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
last ``SETTLE`` seconds are counted as already there.  Pure: the server
asks ``due()`` on every tick.
"""

from __future__ import annotations

CODE = "rebalance"
TEXT = "another server has room: join the next one"
SETTLE = 15.0  # s until a client sent away shows in etcd's figures


class Balance:
    def __init__(self, margin: int, rate: float) -> None:
        self.margin = margin   # clients above another server's load that start a move; 0: never
        self.rate = rate       # clients sent a second at most
        self.next_at = 0.0
        self.sent: list[float] = []  # when the clients of the last SETTLE seconds were sent
        self.moved = 0               # clients sent since the server started

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
