"""Which tunnel id each client has on the server's MULTI device (pure).

The kernel keys a MULTI device's tunnels by a small integer.  A client
keeps its id while it has a tunnel; a freed id goes back to a free list and
is reused lowest first, so a join costs O(log N), not a scan of every id
in use.  Tunnels an earlier run of the server left in the kernel keep
their ids under the name ``#ID`` (lvn/expiry.py's name for them) until
their client comes back (``take`` with ``adopted``) or they expire.
"""

from __future__ import annotations

import heapq

from . import LvnError

MAX_ID = (1 << 20) - 1  # a generous ceiling: a server's clients are far fewer


def leftover_name(tunnel_id: int) -> str:
    return "#" + str(tunnel_id)


class TunnelIds:
    def __init__(self, max_id: int = MAX_ID) -> None:
        self.max_id = max_id
        self.by_name: dict[str, int] = {}
        self.used: set[int] = set()
        self.next_id = 1        # every id from here up is free unless in used
        self.free: list[int] = []  # a heap of released ids (lazily: may hold used ones)

    def __contains__(self, name: str) -> bool:
        return name in self.by_name

    def get(self, name: str) -> int | None:
        return self.by_name.get(name)

    def names(self) -> set[str]:
        return set(self.by_name)

    def leftover(self, tunnel_id: int) -> str:
        """A tunnel found in the kernel at start-up: its id stays taken."""
        name = leftover_name(tunnel_id)
        self.by_name[name] = tunnel_id
        self.used.add(tunnel_id)
        return name

    def take(self, name: str, adopted: int | None = None) -> int:
        """The id of ``name``'s tunnel: the one it has, the leftover
        ``adopted`` (lvn/expiry.py found one at its endpoint), or the lowest
        free one.  LvnError when every id is in use."""
        tid = self.by_name.get(name)
        if tid is not None:
            return tid
        if adopted is not None and self.by_name.get(leftover_name(adopted)) == adopted:
            del self.by_name[leftover_name(adopted)]
            self.by_name[name] = adopted
            return adopted
        tid = self._lowest_free()
        self.by_name[name] = tid
        self.used.add(tid)
        return tid

    def release(self, name: str) -> int | None:
        """``name``'s tunnel is gone: its id is free again (None: it had none)."""
        tid = self.by_name.pop(name, None)
        if tid is not None:
            self.used.discard(tid)
            heapq.heappush(self.free, tid)
        return tid

    def _lowest_free(self) -> int:
        while self.free and self.free[0] in self.used:
            heapq.heappop(self.free)  # taken again through next_id meanwhile
        while self.next_id in self.used:
            self.next_id += 1
        if self.free and self.free[0] < self.next_id:
            return heapq.heappop(self.free)
        if self.next_id > self.max_id:
            raise LvnError("no free tunnel id: " + str(len(self.used)) + " tunnels in use")
        self.next_id += 1
        return self.next_id - 1
