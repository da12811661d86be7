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
from pathlib import Path

from .errors import LvnError
from .files import write_atomic

Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface

log = logging.getLogger("lvn")


class PoolExhausted(LvnError):
    """No free address left for a new identity (only that client is refused)."""


class Leases:
    def __init__(self, path: Path, pool4: str | None, pool6: str | None,
                 reserved: tuple[str, ...] = ()) -> None:
        """``reserved``: addresses never handed out (e.g. the server's own)."""
        self.path = path
        self.pools = [ipaddress.ip_network(p) for p in (pool4, pool6) if p]
        if not self.pools:
            raise LvnError("no address pool configured (pool4 and/or pool6)")
        self.reserved = {ipaddress.ip_address(a) for a in reserved}
        self.table: dict[str, list[str]] = self._load()
        # when each identity was last connected (Unix time): leases of
        # identities absent for the lease TTL are released (expire())
        self.seen_path = path.with_name(path.stem + "-seen.json")
        self.seen: dict[str, float] = self._load_seen()
        # addresses in use as integers, and per pool the lowest offset that
        # may be free: a new lease costs O(1), not a scan of the pool
        self.taken = {(a.version, int(a)) for a in self._taken() | self.reserved}
        self.lowest = {p: 2 for p in self.pools}  # offset 1 is the gateway

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

    def _taken(self) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return {ipaddress.ip_interface(a).ip for v in self.table.values() for a in v}

    def lease(self, identity: str) -> list[str]:
        """The identity's addresses ("10.77.0.2/16", "fd77::2/64"), allocated once."""
        current = self.table.get(identity)
        wanted = {p.version for p in self.pools}
        if current and {ipaddress.ip_interface(a).version for a in current} == wanted:
            return list(current)
        out = []
        for pool in self.pools:
            mine = [a for a in current or [] if ipaddress.ip_interface(a).version == pool.version]
            if mine:
                out += mine
                continue
            free = self._lowest_free(pool)
            if free is None:
                raise PoolExhausted(f"address pool {pool} is exhausted")
            out.append(f"{free}/{pool.prefixlen}")
        for a in out:
            ip = ipaddress.ip_interface(a).ip
            self.taken.add((ip.version, int(ip)))
        self.table[identity] = out
        self._save()
        return list(out)

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

    def release(self, identity: str) -> None:
        """Forget an identity's lease (e.g. its certificate was revoked)."""
        gone = self.table.pop(identity, None)
        if gone is not None:
            for a in gone:
                ip = ipaddress.ip_interface(a).ip
                self.taken.discard((ip.version, int(ip)))
                for pool in self.pools:
                    if ip in pool:
                        self.lowest[pool] = min(self.lowest[pool],
                                                int(ip) - int(pool.network_address))
            self._save()

    def networks(self) -> list[str]:
        """The pools, as prefixes: the overlay's sources."""
        return [str(p) for p in self.pools]

    def gateway(self) -> list[str]:
        """The server's own overlay addresses: the first host of each pool."""
        return [f"{p[1]}/{p.prefixlen}" for p in self.pools]


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
