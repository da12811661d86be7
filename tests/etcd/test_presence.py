"""The servers' presence in a real etcd (lvn/presence.py): each server's
load under a lease that dies with it, and which server each client is on."""

from __future__ import annotations

import json
import time

from etcdcluster import Cluster

from lvn.etcd import Etcd
from lvn.presence import STABLE, STALE, Presence

PREFIX = "/lvn-test"


def at(etcd: Etcd) -> dict[str, str]:
    return {kv.key.rpartition("/")[2]: kv.value for kv in etcd.get_prefix(PREFIX + "/at/")}


def test_servers_their_load_and_their_clients(cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    clock = [1000.0]  # the servers' monotonic clock
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100, clock=lambda: clock[0])
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2", 10, clock=lambda: clock[0])
    a.update(frozenset({"x", "y"}), False)
    b.update(frozenset({"z"}), True)
    a.step()
    b.step()
    assert b.servers() == {"gw1": {"clients": 2, "capacity": 100, "draining": False},
                           "gw2": {"clients": 1, "capacity": 10, "draining": True}}
    # the servers a client may be sent to: not itself, not one that
    # drains, and only once seen alive for STABLE seconds
    assert b.others(clock[0]) == []
    clock[0] += STABLE
    b.step()
    assert b.others(clock[0]) == [(2, 100)]
    a.step()
    assert a.others(clock[0]) == []  # gw2 drains
    # etcd unread for STALE s (away): no figure is taken for alive
    assert b.others(clock[0] + STALE + 1) == []
    assert at(etcd) == {"x": "gw1", "y": "gw1", "z": "gw2"}
    # x moves from gw1 to gw2; gw2 says so first: gw1 leaves x's key alone
    b.update(frozenset({"z", "x"}), True)
    b.step()
    a.update(frozenset({"y"}), False)
    a.step()
    assert at(etcd) == {"x": "gw2", "y": "gw1", "z": "gw2"}
    # y leaves gw1 for good: its key goes
    a.update(frozenset(), False)
    a.step()
    assert at(etcd) == {"x": "gw2", "z": "gw2"}
    assert json.loads(etcd.get(PREFIX + "/server/gw1").value) == {  # type: ignore[union-attr]
        "clients": 0, "capacity": 100, "draining": False}


def test_a_bad_figure_in_etcd_is_left_out(cluster1: Cluster) -> None:
    """Whatever else writes under the prefix cannot make a server send its
    clients anywhere (or crash its loop)."""
    etcd = Etcd(cluster1.endpoints)
    clock = [0.0]
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100, clock=lambda: clock[0])
    for name, value in (("gw2", {"clients": "many", "capacity": 10}),
                        ("gw3", {"clients": 1, "capacity": 0}),
                        ("gw4", {"clients": True}), ("gw5", [1, 2]), ("gw6", "{")):
        etcd.put(f"{PREFIX}/server/{name}", json.dumps(value) if name != "gw6" else "{")
    etcd.put(f"{PREFIX}/server/gw7", json.dumps({"clients": 3}))  # no capacity: as this one's
    a.step()
    clock[0] = STABLE
    a.step()
    assert a.others(STABLE) == [(3, 100)]


def test_a_dead_server_vanishes_after_its_ttl(cluster1: Cluster) -> None:
    clock = [1000.0]  # b's monotonic clock
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100, ttl=3)
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2", 100, ttl=3, clock=lambda: clock[0])
    a.update(frozenset({"x"}), False)
    a.step()
    b.step()
    assert set(b.servers()) == {"gw1", "gw2"}
    died = time.monotonic()
    while "gw1" in b.servers():  # gw1 renews no more; gw2 goes on every second
        assert time.monotonic() - died < 30, "gw1's keys outlived their lease"
        time.sleep(1)
        b.step()
    assert at(Etcd(cluster1.endpoints)) == {}  # x's key went with gw1's lease
    # gw1 is back: no client is sent to it before it has lived STABLE s again
    a.step()
    clock[0] += 100
    b.step()
    clock[0] += STABLE - 1
    b.step()
    assert b.others(clock[0]) == []
    clock[0] += 1
    b.step()
    assert b.others(clock[0]) == [(1, 100)]


def test_an_expired_lease_is_replaced_and_everything_published_again(
        cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100)
    a.update(frozenset({"x"}), False)
    a.step()
    etcd.lease_revoke(a.lease)  # as if etcd had been away longer than the TTL
    assert at(etcd) == {} and etcd.get(PREFIX + "/server/gw1") is None
    a.step()
    assert at(etcd) == {"x": "gw1"} and etcd.get(PREFIX + "/server/gw1") is not None


def test_stop_leaves_at_once_and_etcd_away_is_survived(cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints, timeout=1), PREFIX, "gw1", 100)
    a.update(frozenset({"x"}), False)
    a.start()
    try:
        deadline = time.monotonic() + 30
        while at(etcd) != {"x": "gw1"}:
            assert time.monotonic() < deadline, "the thread published nothing"
            time.sleep(0.1)
        cluster1.members[0].stop()
        a.step()  # logged, no exception
        assert a.problem.startswith("presence not published: etcd unreachable")
        cluster1.restart(cluster1.members[0])
        a.step()
        assert a.problem == ""
    finally:
        a.stop()
    assert not a.thread.is_alive()
    assert at(etcd) == {} and etcd.get(PREFIX + "/server/gw1") is None


def test_a_server_in_the_mesh_publishes_its_end_and_reads_the_directory(
        cluster1: Cluster) -> None:
    """What lvn/mesh.py plans from: the other servers' mesh ends, where each
    client is and its addresses, all from one read; a server without a
    mesh end reads no directory."""
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100, mesh=("10.0.0.1", 4500))
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2", 100)
    etcd.put(PREFIX + "/lease/x", json.dumps(["10.77.0.2/16", "fd77::2/64"]))
    etcd.put(PREFIX + "/lease/bad", "{")  # left out
    a.update(frozenset({"x"}), False)
    assert a.directory()[0] == 0
    a.step()
    b.step()
    reads, servers, where, leases = a.directory()
    assert reads == 1
    assert servers["gw1"]["mesh"] == ["10.0.0.1", 4500] and "mesh" not in servers.get(
        "gw2", {})
    assert where == {"x": "gw1"}
    assert leases == {"x": ["10.77.0.2/16", "fd77::2/64"]}
    assert b.directory()[2:] == ({}, {})


def test_the_servers_share_one_load_probe_key(cluster1: Cluster) -> None:
    """The first server makes the overlay's probe key, the others read it;
    a malformed one is logged and leaves load probes unanswered, and
    presence goes on."""
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", 100)
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2", 100)
    a.step()
    b.step()
    assert len(a.probe_key) == 32 and a.probe_key == b.probe_key
    assert etcd.get(PREFIX + "/probe_key").value == a.probe_key.hex()  # type: ignore[union-attr]
    # a new key (someone deleted the old one) is taken at the next round
    etcd.put(PREFIX + "/probe_key", "ab" * 32)
    a.step()
    assert a.probe_key == b"\xab" * 32
    etcd.put(PREFIX + "/probe_key", "not hex")
    c = Presence(Etcd(cluster1.endpoints), PREFIX, "gw3", 100)
    c.step()
    assert c.problem == ""  # the round worked
    assert c.probe_key == b"" and "gw3" in c.servers()
