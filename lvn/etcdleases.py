"""Overlay address leases shared by several servers, in etcd.

Keys under the configured prefix (docs/servers.md):

- ``lease/IDENTITY``: the identity's addresses, a JSON list;
- ``addr/ADDRESS``: the identity that holds the address.  A lease is
  written in one transaction with the address keys it adds, each on the
  condition that it does not exist yet: two servers can never hand out
  one address, and a lease is never half written;
- ``seen/IDENTITY``: when a server last saw the identity (Unix time).

Reading etcd blocks the server's loop for at most the client's timeout per
endpoint.  When etcd cannot be reached, a join that needs a lease is
refused with an error that says so; sessions already up keep theirs.
"""

from __future__ import annotations

import json
import logging
import random

from . import LvnError, etcd
from .etcd import Etcd, EtcdUnavailable, KeyValue
from .leases import Pools

log = logging.getLogger("lvn")

TRIES = 8  # transactions a lease may lose to other servers before it is refused


class LeasesUnavailable(LvnError):
    """etcd could not be reached: no new lease now."""


class EtcdLeases(Pools):
    def __init__(self, store: Etcd, prefix: str, pool4: str | None, pool6: str | None,
                 reserved: tuple[str, ...] = ()) -> None:
        super().__init__(pool4, pool6, reserved)
        self.etcd = store
        self.prefix = prefix.rstrip("/") + "/"
        # the leases this server handed out or read (its status shows them)
        self.table: dict[str, list[str]] = {}
        self.taken_read = False

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}/{name}"

    def _addr_key(self, address: str) -> str:
        return self._key("addr", address.partition("/")[0])

    def _read_taken(self) -> None:
        """Every address any server holds (after a lost transaction: some
        other server took an address this one thought free)."""
        held = self.etcd.get_prefix(self._key("addr", ""))
        self.forget_taken()
        self.take([kv.key.rpartition("/")[2] for kv in held])
        self.taken_read = True

    def _addresses(self, kv: KeyValue | None) -> list[str] | None:
        if kv is None:
            return None
        value = addresses_or_none(kv.value)
        if value is None:
            raise LvnError(f"etcd key {kv.key}: not a list of addresses")
        return value

    def lease(self, identity: str) -> list[str]:
        """The identity's addresses, allocated once for all the servers."""
        key = self._key("lease", identity)
        try:
            if not self.taken_read:
                self._read_taken()
            for attempt in range(TRIES):
                kv = self.etcd.get(key)
                current = self._addresses(kv)
                if current is not None and self.complete(current):
                    self.take(current)
                    self.table[identity] = current
                    return list(current)
                # after a lost race, somewhere else in the pool
                out = self.choose(current, random.randrange if attempt else None)
                new = [a for a in out if a not in (current or [])]
                compare = [etcd.unchanged(kv, key)] + [etcd.absent(self._addr_key(a))
                                                       for a in new]
                success = [etcd.put(key, json.dumps(out))] + [
                    etcd.put(self._addr_key(a), identity) for a in new]
                if self.etcd.txn(compare, success):
                    self.take(out)
                    self.table[identity] = out
                    return list(out)
                self._read_taken()
        except EtcdUnavailable as e:
            raise LeasesUnavailable(f"no lease now: {e}") from None
        raise LeasesUnavailable(f"no lease for {identity!r}: other servers took the "
                                f"addresses {TRIES} times in a row")

    def release(self, identity: str) -> None:
        """Forget the identity's lease on every server (revoked, or gone for
        the lease TTL); its addresses become free."""
        key = self._key("lease", identity)
        for _ in range(TRIES):
            kv = self.etcd.get(key)
            addresses = self._addresses(kv) or []
            if kv is None or self.etcd.txn(
                    [etcd.unchanged(kv, key)],
                    [etcd.delete(key), etcd.delete(self._key("seen", identity))]
                    + [etcd.delete(self._addr_key(a)) for a in addresses]):
                self.give_back(addresses)
                self.table.pop(identity, None)
                return
        raise LeasesUnavailable(f"releasing the lease of {identity!r}: it kept changing")

    def touch(self, identity: str, wall: float) -> None:
        """``identity`` is connected at ``wall``."""
        try:
            self.etcd.put(self._key("seen", identity), repr(wall))
        except EtcdUnavailable as e:
            log.warning("recording when %r was seen: %s", identity, e)

    def expire(self, wall: float, ttl: float, active: set[str]) -> list[str]:
        """Release the leases of identities that no server has seen for
        ``ttl`` seconds.  This server's ``active`` identities are seen now
        (so each server keeps its own clients' leases alive); an identity
        without a time starts counting now."""
        if ttl <= 0:
            return []
        try:
            for name in active:
                self.touch(name, wall)
            leased = [kv.key.rpartition("/")[2]
                      for kv in self.etcd.get_prefix(self._key("lease", ""))]
            seen = {}
            for kv in self.etcd.get_prefix(self._key("seen", "")):
                try:
                    seen[kv.key.rpartition("/")[2]] = float(kv.value)
                except ValueError:
                    pass  # rewritten below
            gone = []
            for name in sorted(leased):
                if name not in seen:
                    self.touch(name, wall)
                elif name not in active and wall - seen[name] > ttl:
                    try:
                        self.release(name)
                    except EtcdUnavailable:
                        raise
                    except LvnError as e:  # a malformed lease: the others still go
                        log.warning("releasing the lease of %r: %s", name, e)
                        continue
                    gone.append(name)
            return gone
        except EtcdUnavailable as e:
            log.warning("looking for expired leases: %s (again at the next check)", e)
            return []


def addresses_or_none(text: str) -> list[str] | None:
    """A lease's value (a JSON list of address strings), None if it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(a, str) for a in value):
        return value
    return None
