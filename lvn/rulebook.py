"""Which tunnel owns which overlay prefix on the server's MULTI device (pure).

The server routes each client's leased addresses (/32, /128) to that
client's tunnel.  The book mirrors the kernel's rules, so a join needs no
rule dump, and answers, for a tunnel and the prefixes it must own now,
exactly which rules to delete and which to add: prefixes the tunnel owned
before but no longer should (a tunnel adopted after a restart by a new
identity behind a reused NAT port must not keep the previous owner's
addresses), and prefixes that move to it from another tunnel.
"""

from __future__ import annotations

from collections.abc import Iterable


class RuleBook:
    def __init__(self) -> None:
        self.owner: dict[str, int] = {}         # prefix -> tunnel id
        self.owned: dict[int, set[str]] = {}    # tunnel id -> its prefixes

    def load(self, rules: Iterable[tuple[str, int]]) -> None:
        """What the kernel has, at start."""
        for prefix, tid in rules:
            self._set(prefix, tid)

    def plan(self, tid: int, want: Iterable[str]) -> tuple[list[str], list[str]]:
        """``(delete, add)`` so that tunnel ``tid`` owns exactly ``want``:
        ``delete`` lists rules to remove first (stale ones of ``tid``, and
        wanted prefixes another tunnel holds), ``add`` the rules to add."""
        wanted = set(want)
        stale = sorted(self.owned.get(tid, set()) - wanted)
        add = sorted(p for p in wanted if self.owner.get(p) != tid)
        taken = [p for p in add if p in self.owner]
        return stale + taken, add

    def commit(self, tid: int, delete: Iterable[str], add: Iterable[str]) -> None:
        """Record a plan the kernel carried out."""
        for p in delete:
            self._drop(p)
        for p in add:
            self._set(p, tid)

    def forget_tunnel(self, tid: int) -> None:
        """The tunnel is gone (the kernel deletes its rules with it)."""
        for p in self.owned.pop(tid, set()):
            self.owner.pop(p, None)

    def prefixes(self, tid: int) -> set[str]:
        return set(self.owned.get(tid, set()))

    def _set(self, prefix: str, tid: int) -> None:
        self._drop(prefix)
        self.owner[prefix] = tid
        self.owned.setdefault(tid, set()).add(prefix)

    def _drop(self, prefix: str) -> None:
        old = self.owner.pop(prefix, None)
        if old is not None:
            rest = self.owned.get(old)
            if rest is not None:
                rest.discard(prefix)
                if not rest:
                    del self.owned[old]
