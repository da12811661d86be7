"""The servers' presence in a real etcd (lvn/presence.py): each server's
load under a lease that dies with it, and which server each client is on."""

from __future__ import annotations

import json
import time

from lvn.etcd import Etcd
from lvn.presence import Presence

from .conftest import Cluster

PREFIX = "/lvn-test"


def at(etcd: Etcd) -> dict[str, str]:
    return {kv.key.rpartition("/")[2]: kv.value for kv in etcd.get_prefix(PREFIX + "/at/")}


def test_servers_their_load_and_their_clients(cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1")
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2")
    a.update(frozenset({"x", "y"}), False)
    b.update(frozenset({"z"}), True)
    a.step()
    b.step()
    assert b.servers() == {"gw1": {"clients": 2, "draining": False},
                           "gw2": {"clients": 1, "draining": True}}
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
        "clients": 0, "draining": False}


def test_a_dead_server_vanishes_after_its_ttl(cluster1: Cluster) -> None:
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1", ttl=3)
    b = Presence(Etcd(cluster1.endpoints), PREFIX, "gw2", ttl=3)
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


def test_an_expired_lease_is_replaced_and_everything_published_again(
        cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints), PREFIX, "gw1")
    a.update(frozenset({"x"}), False)
    a.step()
    etcd.lease_revoke(a.lease)  # as if etcd had been away longer than the TTL
    assert at(etcd) == {} and etcd.get(PREFIX + "/server/gw1") is None
    a.step()
    assert at(etcd) == {"x": "gw1"} and etcd.get(PREFIX + "/server/gw1") is not None


def test_stop_leaves_at_once_and_etcd_away_is_survived(cluster1: Cluster) -> None:
    etcd = Etcd(cluster1.endpoints)
    a = Presence(Etcd(cluster1.endpoints, timeout=1), PREFIX, "gw1")
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
