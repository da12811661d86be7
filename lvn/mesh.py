"""Routes between the servers of one overlay (docs/servers.md, "Mesh") (pure).

A server with a ``mesh_address`` keeps one ipudp tunnel on its MULTI
device to every other live server that publishes one (its data port to
theirs), and routes there the addresses of the clients etcd says are on
that server (``at/IDENTITY``, ``lease/IDENTITY``).  A client with a
session here keeps its own tunnel whatever etcd says (etcd's figures lag
a move by up to two publishing periods); one that left is routed to its
new server once etcd says where it went.  The kernel's receive filter
lets a mesh tunnel bring packets from exactly the addresses routed to it.

This module says what the device must hold; the server's loop makes the
kernel calls (lvn/agent.py).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREFIX = "@"  # a mesh tunnel's name among the clients' (identities begin with a letter or digit)


@dataclass(frozen=True)
class Peer:
    """Another server's end of the mesh, and the host prefixes routed to it."""
    address: str
    port: int
    prefixes: frozenset[str]


def tunnel_name(server: str) -> str:
    return PREFIX + server


def host_prefixes(addresses: Iterable[str]) -> list[str]:
    """A client's leased addresses (``10.77.0.2/16``) as the host prefixes
    its route needs (``10.77.0.2/32``)."""
    out = []
    for a in addresses:
        ip = ipaddress.ip_interface(a).ip
        out.append(f"{ip}/{ip.max_prefixlen}")
    return out


def endpoint(value: Mapping[str, object]) -> tuple[str, int] | None:
    """A server's published mesh end (``"mesh": ["192.0.2.1", 4500]``), or
    None when it has none or it is not an address and a port."""
    mesh = value.get("mesh")
    if not (isinstance(mesh, list) and len(mesh) == 2):
        return None
    address, port = mesh
    if not (isinstance(address, str) and isinstance(port, int) and not isinstance(port, bool)
            and 0 < port < 65536):
        return None
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address, port


def plan(me: str, servers: Mapping[str, Mapping[str, object]], where: Mapping[str, str],
         leases: Mapping[str, list[str]], local: Iterable[str]) -> dict[str, Peer]:
    """The mesh this server (``me``) must hold: every other live server
    (``servers``, as published) with a mesh end, and the prefixes of the
    clients on it (``where``: identity -> server; ``leases``: identity ->
    addresses), leaving out clients with a session here (``local``)."""
    here = set(local)
    ends = {name: end for name, value in servers.items()
            if name != me and (end := endpoint(value)) is not None}
    routed: dict[str, list[str]] = {name: [] for name in ends}
    for identity, server in where.items():
        if server in routed and identity not in here and identity in leases:
            try:
                routed[server] += host_prefixes(leases[identity])
            except ValueError:
                continue  # not addresses: left out, as any malformed value
    return {name: Peer(address, port, frozenset(routed[name]))
            for name, (address, port) in ends.items()}
