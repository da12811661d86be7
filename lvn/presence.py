"""Which servers are alive, how loaded, and which server each client is on
(docs/servers.md, "Presence in etcd").

Each server with its leases in etcd keeps these keys under
``<etcd_prefix>`` on one etcd lease of ``TTL`` seconds, renewed every
``EVERY`` seconds:

    server/NAME     {"clients": N, "capacity": C, "draining": false}
                    (and "mesh": [ADDRESS, PORT] with a mesh_address)
    at/IDENTITY     NAME (the server the client's session is on)
    probe_key       the key all the servers answer load probes with (hex;
                    made once, by the first server that finds none)

A server that dies without a word stops renewing, and etcd removes its
keys after TTL: that a server's key is there is its liveness.  A client
that moves to another server has its ``at`` key overwritten there; the
server it left deletes the key only while it still names itself.  As
for the revocation list, the etcd calls run in a thread of their own;
the server's loop hands over its clients with ``update()``
(lvn/etcdthread.py).  A server in the mesh (lvn/mesh.py) also reads where
every client is and its leased addresses, every round.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from .etcd import Etcd, EtcdUnavailable, absent, delete, holds, put
from .etcdleases import addresses_or_none
from .etcdthread import EtcdThread

log = logging.getLogger("lvn")

TTL = 15     # s a dead server's keys outlive it
EVERY = 5.0  # s between renewals
STABLE = 30.0  # s a server is seen before clients are sent to it (one that is back)
STALE = 3 * EVERY  # s after the last good read of etcd: no server is taken for alive


class Presence(EtcdThread):
    every = EVERY
    failing = "presence not published"
    recovered = "presence published in etcd again"

    def __init__(self, etcd: Etcd, prefix: str, name: str, capacity: int,
                 ttl: int = TTL, clock: Callable[[], float] = time.monotonic,
                 mesh: tuple[str, int] | None = None) -> None:
        super().__init__(etcd, "presence")
        self.name, self.capacity, self.ttl, self.clock = name, capacity, ttl, clock
        self.mesh = mesh  # this server's mesh end (address, data port), if it has one
        self.prefix = prefix.rstrip("/")
        self.lock = threading.Lock()
        self.clients: frozenset[str] = frozenset()  # as the loop last said
        self.draining = False
        self.lease = 0
        self.published: set[str] = set()  # the at/ keys this server wrote
        self.view: dict[str, dict[str, Any]] = {}  # every live server's key, as last read
        self.since: dict[str, float] = {}  # when each was first seen alive (monotonic)
        self.read_at = float("-inf")  # the last good read of the servers' keys (monotonic)
        self.reads = 0  # good reads so far: the directory below is new when this grows
        self.probe_key = b""  # the servers' load probe key (lvn/clientpolicy.py), as last read
        self.probe_key_warned = False
        self.where: dict[str, str] = {}  # identity -> its server (with a mesh end only)
        self.leases: dict[str, list[str]] = {}  # identity -> its addresses (likewise)

    def update(self, clients: frozenset[str], draining: bool) -> None:
        """The loop's clients now (cheap: the thread publishes them)."""
        with self.lock:
            self.clients, self.draining = clients, draining

    def servers(self) -> dict[str, dict[str, Any]]:
        """Every live server (this one too) as last read from etcd."""
        with self.lock:
            return dict(self.view)

    def directory(self) -> tuple[int, dict[str, dict[str, Any]], dict[str, str],
                                 dict[str, list[str]]]:
        """(reads, servers, where each client is, their addresses) as last
        read (the last two only with a mesh end)."""
        with self.lock:
            return self.reads, dict(self.view), dict(self.where), dict(self.leases)

    def others(self, now: float) -> list[tuple[int, int]]:
        """(clients, capacity) of every other live server that takes
        clients (not draining), seen alive for STABLE seconds (a server
        back from a power cut may be rebooting again), as last read; a
        figure that is not a count is left out.  None while etcd has not
        been read for STALE seconds (what it said may be dead by now)."""
        out: list[tuple[int, int]] = []
        with self.lock:
            view, since = dict(self.view), dict(self.since)
            if now - self.read_at > STALE:
                return out
        for name, v in view.items():
            clients, capacity = v.get("clients"), v.get("capacity", self.capacity)
            if name != self.name and now - since.get(name, now) >= STABLE \
                    and not v.get("draining") and _count(clients) and _count(capacity) \
                    and capacity > 0:
                out.append((clients, capacity))
        return out

    def stop(self) -> None:
        """Leave at once: the keys go now, not after TTL (best effort)."""
        super().stop()
        if self.lease:
            try:
                self.etcd.lease_revoke(self.lease)
            except EtcdUnavailable:
                pass  # they expire after TTL

    def _step(self) -> None:
        with self.lock:
            clients, draining = self.clients, self.draining
        if self.lease and self.etcd.lease_keepalive(self.lease) == 0:
            self.lease = 0  # expired (etcd was away longer than TTL): its keys are gone
        if not self.lease:
            self.lease = self.etcd.lease_grant(self.ttl)
            self.published = set()
        self.probe_key = self._probe_key()  # read every round: a new one is taken at once
        value: dict[str, Any] = {"clients": len(clients), "capacity": self.capacity,
                                 "draining": draining}
        if self.mesh is not None:
            value["mesh"] = list(self.mesh)
        self.etcd.put(f"{self.prefix}/server/{self.name}", json.dumps(value), self.lease)
        for name in sorted(clients - self.published):
            self.etcd.put(f"{self.prefix}/at/{name}", self.name, self.lease)
            self.published.add(name)
        for name in sorted(self.published - clients):
            key = f"{self.prefix}/at/{name}"
            self.etcd.txn([holds(key, self.name)], [delete(key)])  # unless it moved on
            self.published.discard(name)
        view = {}
        for kv in self.etcd.get_prefix(f"{self.prefix}/server/"):
            try:
                value = json.loads(kv.value)
            except ValueError:
                continue
            if isinstance(value, dict):
                view[kv.key.rpartition("/")[2]] = value
        where: dict[str, str] = {}
        leases: dict[str, list[str]] = {}
        if self.mesh is not None:
            where = {kv.key.rpartition("/")[2]: kv.value
                     for kv in self.etcd.get_prefix(f"{self.prefix}/at/")}
            for kv in self.etcd.get_prefix(f"{self.prefix}/lease/"):
                addresses = addresses_or_none(kv.value)
                if addresses is not None:  # a malformed one is left out
                    leases[kv.key.rpartition("/")[2]] = addresses
        now = self.clock()
        with self.lock:
            self.view = view
            self.since = {name: self.since.get(name, now) for name in view}
            self.read_at = now
            self.where, self.leases = where, leases
            self.reads += 1

    def _probe_key(self) -> bytes:
        """The overlay's load probe key: made here if no server made one."""
        key = f"{self.prefix}/probe_key"
        kv = self.etcd.get(key)
        if kv is None:
            self.etcd.txn([absent(key)], [put(key, os.urandom(32).hex())])
            kv = self.etcd.get(key)
        try:
            made = bytes.fromhex(kv.value) if kv is not None else b""
        except ValueError:
            made = b""
        if len(made) != 32:
            if not self.probe_key_warned:  # left alone: no load probes answered
                log.warning("etcd key %s: not 32 bytes in hex; load probes go unanswered "
                            "until it is (delete it: a server makes a new one)", key)
                self.probe_key_warned = True
            return b""
        return made


def _count(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
