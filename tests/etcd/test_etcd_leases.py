"""Leases shared by several servers in a real etcd (lvn.etcdleases):
servers joining clients at once never hand out one address twice, an
identity gets the same addresses on every server, etcd going away refuses
new leases with a clear error and loses nothing, a three-member cluster
survives the loss of a member."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from etcdcluster import Cluster

from lvn import LvnError
from lvn.etcd import Etcd
from lvn.etcdleases import EtcdLeases, LeasesUnavailable

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/lvn-test"


class Joiner:
    """A server process (tests/etcd/joiner.py) that leases names on request."""

    def __init__(self, endpoints: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("joiner.py")), ",".join(endpoints),
             PREFIX], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def send(self, names: list[str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{n}\n" for n in names))
        self.proc.stdin.flush()

    def answers(self, n: int) -> list[dict[str, Any]]:
        assert self.proc.stdout is not None
        return [json.loads(self.proc.stdout.readline()) for _ in range(n)]

    def join(self, names: list[str]) -> list[dict[str, Any]]:
        self.send(names)
        return self.answers(len(names))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def stored(endpoints: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Every lease and every address key in etcd."""
    e = Etcd(endpoints)
    leases = {kv.key.rpartition("/")[2]: json.loads(kv.value)
              for kv in e.get_prefix(f"{PREFIX}/lease/")}
    owners = {kv.key.rpartition("/")[2]: kv.value for kv in e.get_prefix(f"{PREFIX}/addr/")}
    return leases, owners


def assert_consistent(leases: dict[str, list[str]], owners: dict[str, str]) -> None:
    """No address in two leases, and the address keys are the leases' exactly."""
    every = [ipaddress.ip_interface(a).ip for v in leases.values() for a in v]
    dup = [a for a, n in Counter(every).items() if n > 1]
    assert not dup, f"addresses handed out twice: {dup[:5]}"
    assert owners == {str(ipaddress.ip_interface(a).ip): name
                      for name, v in leases.items() for a in v}


def test_two_servers_joining_at_once_never_share_an_address(cluster1: Cluster) -> None:
    """600 joins on two server processes at once, 100 identities joining
    both: one address per identity across the servers, never one twice."""
    a, b = Joiner(cluster1.endpoints), Joiner(cluster1.endpoints)
    only_a = [f"a{i}" for i in range(200)]
    only_b = [f"b{i}" for i in range(200)]
    both = [f"n{i}" for i in range(100)]
    try:
        a.send(only_a[:100] + both + only_a[100:])
        b.send(both + only_b)
        got_a, got_b = a.answers(300), b.answers(300)
    finally:
        a.close()
        b.close()
    errors = [r for r in got_a + got_b if "error" in r]
    assert not errors, errors[:3]
    by_a = {r["name"]: r["addresses"] for r in got_a}
    by_b = {r["name"]: r["addresses"] for r in got_b}
    assert all(by_a[n] == by_b[n] for n in both), [(n, by_a[n], by_b[n]) for n in both
                                                    if by_a[n] != by_b[n]][:3]
    leases, owners = stored(cluster1.endpoints)
    assert len(leases) == 500
    assert all(leases[n] == v for n, v in {**by_a, **by_b}.items())
    assert_consistent(leases, owners)
    assert all(len(v) == 2 for v in leases.values())  # IPv4 and IPv6


def test_etcd_killed_and_restarted_during_joins(cluster1: Cluster) -> None:
    """etcd dies (SIGKILL) between joins: joins are then refused with an
    error that names etcd, nothing leased before is lost, and after the
    restart joins go on with no address handed out twice."""
    j = Joiner(cluster1.endpoints)
    try:
        before = j.join([f"c{i}" for i in range(50)])
        assert all("addresses" in r for r in before)
        cluster1.members[0].stop(signal.SIGKILL)
        during = j.join([f"d{i}" for i in range(3)] + ["c7"])
        assert all("error" in r for r in during), during
        assert "no lease now: etcd unreachable" in during[0]["error"], during[0]
        cluster1.restart(cluster1.members[0])
        after = j.join([f"d{i}" for i in range(3)] + [f"e{i}" for i in range(50)] + ["c7"])
    finally:
        j.close()
    assert all("addresses" in r for r in after), [r for r in after if "error" in r][:3]
    assert after[-1]["addresses"] == before[7]["addresses"]  # c7 kept its addresses
    leases, owners = stored(cluster1.endpoints)
    assert set(leases) == {r["name"] for r in before + after}
    assert all(leases[r["name"]] == r["addresses"] for r in before + after)
    assert_consistent(leases, owners)


def test_one_member_of_three_lost(cluster3: Cluster) -> None:
    """With the cluster's three endpoints configured, the loss of the first
    member costs at most the election of a new leader (when it was the
    leader): joins meanwhile are refused with the reason, as a client's
    back-off expects, and go through once the others have a leader."""
    leases = EtcdLeases(Etcd(cluster3.endpoints, timeout=1.0), PREFIX, "10.77.0.0/24", None)
    first = leases.lease("n1")
    cluster3.members[0].stop(signal.SIGKILL)
    lost = time.monotonic()
    refusals = []
    while True:
        try:
            second = leases.lease("n2")
            break
        except LeasesUnavailable as e:
            refusals.append(str(e))
            assert time.monotonic() - lost < 30, refusals[-3:]
    print(f"joins refused for {time.monotonic() - lost:.1f} s after the loss: "
          f"{len(refusals)} ({refusals[:1]})")
    assert all("no lease now: etcd unreachable" in r for r in refusals)
    assert second != first and leases.lease("n1") == first
    assert set(stored(cluster3.endpoints[1:])[0]) == {"n1", "n2"}


def test_release_frees_the_address_for_every_server(cluster1: Cluster) -> None:
    """A revoked identity's lease released by one server: the address is
    free again, and the identity, back, gets a new one."""
    s1 = EtcdLeases(Etcd(cluster1.endpoints), PREFIX, "10.77.0.0/24", None)
    s2 = EtcdLeases(Etcd(cluster1.endpoints), PREFIX, "10.77.0.0/24", None)
    assert s1.lease("gone") == ["10.77.0.2/24"]
    assert s2.lease("other") == ["10.77.0.3/24"]
    s1.release("gone")
    assert "gone" not in s1.table
    assert s1.lease("new") == ["10.77.0.2/24"]
    # the identity back, on the other server (which still thinks .2 taken:
    # a stale view costs a free address, never a shared one)
    assert s2.lease("gone") == ["10.77.0.4/24"]
    assert_consistent(*stored(cluster1.endpoints))


def test_expiry_keeps_what_another_server_serves(cluster1: Cluster) -> None:
    """Each server's expiry pass marks its own clients seen; an identity no
    server has seen for the TTL is released."""
    s1 = EtcdLeases(Etcd(cluster1.endpoints), PREFIX, "10.77.0.0/24", None)
    s2 = EtcdLeases(Etcd(cluster1.endpoints), PREFIX, "10.77.0.0/24", None)
    s1.lease("on-s1")
    s1.lease("departed")
    s2.lease("on-s2")
    # passes closer together than the TTL (in service: every hour, TTL in days)
    assert s2.expire(1000.0, 60.0, {"on-s2"}) == []  # times start for what has none
    assert s1.expire(1030.0, 60.0, {"on-s1"}) == []
    assert s2.expire(1070.0, 60.0, {"on-s2"}) == ["departed"]  # s1's client seen at 1030
    assert s1.expire(1100.0, 60.0, {"on-s1"}) == []            # s2's client seen at 1070
    assert set(stored(cluster1.endpoints)[0]) == {"on-s1", "on-s2"}


def test_garbage_in_etcd_is_named(cluster1: Cluster) -> None:
    Etcd(cluster1.endpoints).put(f"{PREFIX}/lease/bad", "{not json")
    leases = EtcdLeases(Etcd(cluster1.endpoints), PREFIX, "10.77.0.0/24", None)
    with pytest.raises(LvnError, match=f"etcd key {PREFIX}/lease/bad: not a list of addresses"):
        leases.lease("bad")
    assert leases.lease("good") == ["10.77.0.2/24"]
    # the TTL pass: the malformed lease is logged and left, the others expire
    # (it raised out of the pass, which runs in the server's loop)
    leases.lease("departed")
    for name in ("bad", "departed"):
        Etcd(cluster1.endpoints).put(f"{PREFIX}/seen/{name}", "0.0")
    assert leases.expire(1000.0, 60.0, {"good"}) == ["departed"]
    owners = Etcd(cluster1.endpoints).get_prefix(f"{PREFIX}/addr/")
    assert {kv.value for kv in owners} == {"good"}


def test_unreachable_and_misconfigured_endpoints(tmp_path: Path) -> None:
    with pytest.raises(LvnError, match="expected http://host:port"):
        Etcd(["https://127.0.0.1:2379"])
    with pytest.raises(LvnError, match="no endpoint"):
        Etcd([])
    # a port nothing listens on
    from etcdcluster import free_port
    leases = EtcdLeases(Etcd([f"127.0.0.1:{free_port()}"], timeout=0.5), PREFIX,
                        "10.77.0.0/24", None)
    with pytest.raises(LeasesUnavailable, match="connection refused|Connection refused"):
        leases.lease("n")
    assert leases.expire(0.0, 60.0, set()) == []  # logged, retried at the next check
