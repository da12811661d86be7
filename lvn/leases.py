"""Overlay address leases: stable per certificate identity, persisted atomically.

The server hands each client one address from each configured pool (IPv4
and/or IPv6).  The same identity gets the same addresses after reconnects
and server restarts: the table is a JSON file replaced atomically on every
change (write to a temporary file, fsync, rename, fsync the directory), so
a crash leaves the old table or the new one, never a mix.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from pathlib import Path

from . import LvnError
from .files import write_atomic

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface

log = logging.getLogger("lvn")


class PoolExhausted(LvnError):
    """No free address left for a new identity (only that client is refused)."""


class Pools:
    """The overlay's address pools and the addresses taken in them: the
    lowest free host address of a pool in O(1) amortised.  The stores of
    leases (a file here, etcd in lvn.etcdleases) build on it."""

    def __init__(self, pool4: str | None, pool6: str | None,
                 reserved: tuple[str, ...] = ()) -> None:
        """``reserved``: addresses never handed out (e.g. the server's own)."""
        self.pools = [ipaddress.ip_network(p) for p in (pool4, pool6) if p]
        if not self.pools:
            raise LvnError("no address pool configured (pool4 and/or pool6)")
        self.reserved = {ipaddress.ip_address(a) for a in reserved}
        self.forget_taken()

    def forget_taken(self) -> None:
        """Nothing taken but the reserved addresses (before reading a table)."""
        # addresses in use as integers, and per pool the lowest offset that
        # may be free: a new lease costs O(1), not a scan of the pool
        self.taken = {(a.version, int(a)) for a in self.reserved}
        self.lowest = {p: 2 for p in self.pools}  # offset 1 is the gateway

    def take(self, addresses: list[str]) -> None:
        for a in addresses:
            ip = ipaddress.ip_interface(a).ip
            self.taken.add((ip.version, int(ip)))

    def give_back(self, addresses: list[str]) -> None:
        for a in addresses:
            ip = ipaddress.ip_interface(a).ip
            self.taken.discard((ip.version, int(ip)))
            for pool in self.pools:
                if ip in pool:
                    self.lowest[pool] = min(self.lowest[pool],
                                            int(ip) - int(pool.network_address))

    def complete(self, current: list[str] | None) -> bool:
        """Whether ``current`` has an address of every pool's family."""
        return bool(current) and {ipaddress.ip_interface(a).version
                                  for a in current or []} == {p.version for p in self.pools}

    def choose(self, current: list[str] | None,
               spread: Callable[[int], int] | None = None) -> list[str]:
        """The addresses of an identity that holds ``current``: its own in
        each pool's family, else that pool's lowest free one (not taken
        yet: the store takes them once they are recorded).  ``spread(n)``
        (a random offset below n) starts the search there instead, so that
        servers that lost a race to each other do not meet again on the
        next lowest address."""
        out = []
        for pool in self.pools:
            mine = [a for a in current or [] if ipaddress.ip_interface(a).version == pool.version]
            if mine:
                out += mine
                continue
            free = self._lowest_free(pool) if spread is None else self._free_after(pool, spread)
            if free is None:
                raise PoolExhausted(f"address pool {pool} is exhausted")
            out.append(f"{free}/{pool.prefixlen}")
        return out

    def _lowest_free(self, pool: ipaddress.IPv4Network | ipaddress.IPv6Network
                     ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The lowest host address of ``pool`` not taken, gateway excluded."""
        base = int(pool.network_address)
        # hosts: IPv4 without network and broadcast, IPv6 without the network
        last = pool.num_addresses - (2 if pool.version == 4 else 1)
        off = self.lowest[pool]
        while off <= last and (pool.version, base + off) in self.taken:
            off += 1
        self.lowest[pool] = off
        return ipaddress.ip_address(base + off) if off <= last else None

    def _free_after(self, pool: ipaddress.IPv4Network | ipaddress.IPv6Network,
                    spread: Callable[[int], int]
                    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The first free host address from a random one on (wrapping
        around), among at most 2^16 (an IPv6 pool's hosts are not all
        looked at)."""
        base = int(pool.network_address)
        last = pool.num_addresses - (2 if pool.version == 4 else 1)
        span = min(last - 1, 1 << 16)  # offsets 2 .. span + 1
        if span < 1:
            return None
        start = spread(span)
        for i in range(span):
            off = 2 + (start + i) % span
            if (pool.version, base + off) not in self.taken:
                return ipaddress.ip_address(base + off)
        return None

    def networks(self) -> list[str]:
        """The pools, as prefixes: the overlay's sources."""
        return [str(p) for p in self.pools]

    def gateway(self) -> list[str]:
        """The server's own overlay addresses: the first host of each pool."""
        return [f"{p[1]}/{p.prefixlen}" for p in self.pools]


class Leases(Pools):
    """The leases of one server, in a file of its state directory."""

    def __init__(self, path: Path, pool4: str | None, pool6: str | None,
                 reserved: tuple[str, ...] = ()) -> None:
        super().__init__(pool4, pool6, reserved)
        self.path = path
        self.table: dict[str, list[str]] = self._load()
        # when each identity was last connected (Unix time): leases of
        # identities absent for the lease TTL are released (expire())
        self.seen_path = path.with_name(path.stem + "-seen.json")
        self.seen: dict[str, float] = self._load_seen()
        for addresses in self.table.values():
            self.take(addresses)

    def _load(self) -> dict[str, list[str]]:
        return {k: v for k, v in _read_table(self.path, list, "lease table").items()
                if isinstance(v, list)}

    def _load_seen(self) -> dict[str, float]:
        return {k: float(v) for k, v in _read_table(self.seen_path, (int, float),
                                                    "table of times").items()
                if isinstance(v, (int, float))}

    def touch(self, identity: str, wall: float) -> None:
        """``identity`` is connected at ``wall`` (at a session's start and end).
        The times are kept in memory first: a file that cannot be written now
        (out of descriptors under a flood) is written by a later touch."""
        self.seen[identity] = wall
        try:
            write_atomic(self.seen_path,
                         json.dumps(self.seen, indent=1, sort_keys=True).encode(), 0o600)
        except OSError as e:
            log.warning("writing %s: %s (written again at the next join)", self.seen_path,
                        e.strerror)

    def expire(self, wall: float, ttl: float, active: set[str]) -> list[str]:
        """Release the leases of identities not in ``active`` and not seen
        for ``ttl`` seconds; the names released.  An identity without a
        time (a table from before times were kept) starts counting now."""
        if ttl <= 0:
            return []
        new = [n for n in self.table if n not in self.seen]
        for n in new:
            self.seen[n] = wall
        gone = sorted(n for n in self.table
                      if n not in active and wall - self.seen[n] > ttl)
        for n in gone:
            self.release(n)
            del self.seen[n]
        if new or gone:
            write_atomic(self.seen_path,
                         json.dumps(self.seen, indent=1, sort_keys=True).encode(), 0o600)
        return gone

    def _save(self) -> None:
        write_atomic(self.path, json.dumps(self.table, indent=1, sort_keys=True).encode(), 0o600)

    def lease(self, identity: str) -> list[str]:
        """The identity's addresses ("10.77.0.2/16", "fd77::2/64"), allocated once."""
        current = self.table.get(identity)
        if current and self.complete(current):
            return list(current)
        out = self.choose(current)
        self.take(out)
        self.table[identity] = out
        self._save()
        return list(out)

    def release(self, identity: str) -> None:
        """Forget an identity's lease (e.g. its certificate was revoked)."""
        gone = self.table.pop(identity, None)
        if gone is not None:
            self.give_back(gone)
            self._save()


def _read_table(path: Path, kind: type | tuple[type, ...], what: str) -> dict[str, object]:
    """A JSON object of ``kind`` values at ``path`` ({} if there is none);
    LvnError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise LvnError(f"cannot read the {what} {path}: {e}") from None
    if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, kind) for k, v in data.items()):
        raise LvnError(f"{path}: not a {what}")
    return data
