"""The server's tunnels (pure): one policy that says which kernel calls
make each client's tunnel and routes, and keeps the books that decide
them.

Three books, each in a module of its own: the tunnel ids (lvn/tunnelids.py:
a free list, lowest first), the tunnels whose control channel is gone and
when they go (lvn/expiry.py, which also remembers the tunnels an earlier
run left, by endpoint, for adoption), and which tunnel owns which prefix
(lvn/rulebook.py).  ``place``, ``route`` and ``remove`` answer with the
typed kernel actions below; the shell (lvn/agent.py) carries them out in
order and then reports them ``done``, and only then do the rule and id
books record them, so a refused call leaves the books as the kernel is.

Tunnels are keyed by name: a client's identity, or lvn/mesh.py's name for
another server.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .expiry import CheckRx, DetachedTunnels, RemoveTunnel
from .rulebook import RuleBook
from .tunnelids import TunnelIds


class SetTunnel(namedtuple("SetTunnel", ["tunnel_id", "address", "port"])):
    """Make tunnel ``tunnel_id`` to ``address`` port ``port``, or move it there."""

    __slots__ = ()
    tunnel_id: int
    address: str
    port: int


class DelTunnel(namedtuple("DelTunnel", ["tunnel_id", "what"])):
    """Delete the tunnel (the kernel deletes its rules with it); ``what``
    names it for a message if the kernel refuses, which is not fatal."""

    __slots__ = ()
    tunnel_id: int
    what: str


class DelRule(namedtuple("DelRule", ["prefix"])):
    """Delete the rule of ``prefix`` (one already gone is no error)."""

    __slots__ = ()
    prefix: str


class AddRules(namedtuple("AddRules", ["tunnel_id", "prefixes"])):
    """Route each of ``prefixes`` to the tunnel: one batch."""

    __slots__ = ()
    tunnel_id: int
    prefixes: list[str]


if TYPE_CHECKING:
    Action = SetTunnel | DelTunnel | DelRule | AddRules


class ServerTunnels:
    def __init__(self, idle_timeout: float) -> None:
        self.ids = TunnelIds()
        self.detached = DetachedTunnels(idle_timeout)
        self.rules = RuleBook()

    def adopt_leftovers(self, tunnels: Iterable[tuple[int, tuple[str, int]]],
                        rules: Iterable[tuple[str, int]], now: float) -> None:
        """What an earlier run left in the kernel, (id, endpoint) and (prefix,
        id): the ids stay with the tunnels, which expire like detached
        ones unless their client comes back from the same endpoint."""
        for tid, endpoint in tunnels:
            self.detached.left_by_earlier_run(self.ids.leftover(tid), tid, endpoint, now)
        self.rules.load(rules)

    def tunnel_id(self, name: str) -> int | None:
        return self.ids.get(name)

    def names(self) -> set[str]:
        """Every name with a tunnel (detached ones included)."""
        return self.ids.names()

    def detached_since(self) -> list[tuple[str, float]]:
        """The detached tunnels' names, with when each was last heard."""
        return self.detached.items()

    def set_idle_timeout(self, seconds: float) -> None:
        self.detached.idle_timeout = seconds

    def active(self, tid: int, now: float) -> None:
        """The kernel says tunnel ``tid`` received again (TUNNEL_ACTIVE)."""
        self.detached.on_active(tid, now)

    def place(self, name: str, address: str, port: int) -> tuple[int, list[Action]]:
        """``name``'s tunnel made or moved to ``address``:``port``: its id
        (kept from now on), and the action.  A name without a tunnel takes
        the one an earlier run left at that endpoint, if any."""
        adopted = None if name in self.ids else self.detached.adopt((address, port))
        tid = self.ids.take(name, adopted)
        return tid, [SetTunnel(tid, address, port)]

    def route(self, tid: int, want: Iterable[str]) -> list[Action]:
        """Tunnel ``tid`` to own exactly the prefixes ``want``: stale rules of
        the tunnel (an adopted tunnel's previous owner's) and wanted
        prefixes another tunnel holds go first."""
        delete, add = self.rules.plan(tid, want)
        actions: list[Action] = [DelRule(p) for p in delete]
        if add:
            actions.append(AddRules(tid, add))
        return actions

    def remove(self, name: str, what: str) -> list[DelTunnel]:
        """``name``'s tunnel goes (idle, revoked, a server left the mesh):
        its id is free again; [] if it had none."""
        self.detached.attach(name)
        tid = self.ids.release(name)
        return [] if tid is None else [DelTunnel(tid, what)]

    def attach(self, name: str) -> None:
        """A session of ``name`` began: its tunnel is not detached."""
        self.detached.attach(name)

    def detach(self, name: str, last_heard: float) -> bool:
        """``name``'s last control channel is gone: its tunnel stays until
        idle; False if it has none."""
        tid = self.ids.get(name)
        if tid is None:
            return False
        self.detached.detach(name, tid, last_heard)
        return True

    def due(self, now: float) -> list[CheckRx]:
        """Detached tunnels whose last receive time the shell is to read."""
        return self.detached.due(now)

    def gone(self, name: str, last_rx_ms: int | None, now: float) -> list[RemoveTunnel]:
        """That time (None: the tunnel is not in the kernel): the tunnels
        to remove now (``remove`` each)."""
        return self.detached.on_rx(name, last_rx_ms, now)

    def done(self, actions: Sequence[Action]) -> None:
        """The shell carried ``actions`` out: the rule book records them."""
        book = self.rules
        for act in actions:
            if isinstance(act, DelRule):
                book.commit(0, [act.prefix], [])
            elif isinstance(act, AddRules):
                book.commit(act.tunnel_id, [], act.prefixes)
            elif isinstance(act, DelTunnel):
                book.forget_tunnel(act.tunnel_id)
