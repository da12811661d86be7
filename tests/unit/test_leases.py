"""Overlay address leases: stable, persistent, exhaustion, crash during write."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lvn import LvnError
from lvn.leases import Leases, PoolExhausted


def test_stable_per_identity_and_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "state" / "leases.json"
    leases = Leases(path, "10.77.0.0/24", "fd77::/64")
    a = leases.lease("node-a")
    b = leases.lease("node-b")
    assert a == ["10.77.0.2/24", "fd77::2/64"] and b == ["10.77.0.3/24", "fd77::3/64"]
    assert leases.lease("node-a") == a
    assert leases.gateway() == ["10.77.0.1/24", "fd77::1/64"]
    again = Leases(path, "10.77.0.0/24", "fd77::/64")   # a server restart
    assert again.lease("node-b") == b and again.lease("node-c")[0] == "10.77.0.4/24"


def test_a_pool_added_later_completes_old_leases(tmp_path: Path) -> None:
    path = tmp_path / "leases.json"
    assert Leases(path, "10.77.0.0/24", None).lease("n") == ["10.77.0.2/24"]
    assert Leases(path, "10.77.0.0/24", "fd77::/64").lease("n") == ["10.77.0.2/24",
                                                                   "fd77::2/64"]


def test_exhaustion_refuses_only_the_newcomer(tmp_path: Path) -> None:
    leases = Leases(tmp_path / "l.json", "10.77.0.0/29", None, reserved=("10.77.0.3",))
    got = [leases.lease(f"n{i}")[0] for i in range(4)]   # .2 .4 .5 .6 (.1 gateway, .3 held)
    assert got == ["10.77.0.2/29", "10.77.0.4/29", "10.77.0.5/29", "10.77.0.6/29"]
    with pytest.raises(PoolExhausted, match="10.77.0.0/29 is exhausted"):
        leases.lease("late")
    assert leases.lease("n1") == ["10.77.0.4/29"]
    leases.release("n1")
    assert leases.lease("late") == ["10.77.0.4/29"]


def test_crash_during_write_keeps_the_old_table(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "leases.json"
    leases = Leases(path, "10.77.0.0/24", None)
    leases.lease("a")
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise KeyboardInterrupt("power cut before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        leases.lease("b")
    monkeypatch.undo()
    assert path.read_bytes() == before                # the table is whole and old
    assert Leases(path, "10.77.0.0/24", None).lease("a") == ["10.77.0.2/24"]
    assert json.loads(path.read_text()) == {"a": ["10.77.0.2/24"]}


def test_bad_table_and_no_pool(tmp_path: Path) -> None:
    (tmp_path / "l.json").write_text("[1, 2]")
    with pytest.raises(LvnError, match="not a lease table"):
        Leases(tmp_path / "l.json", "10.0.0.0/24", None)
    (tmp_path / "l.json").write_text("{")
    with pytest.raises(LvnError, match="cannot read the lease table"):
        Leases(tmp_path / "l.json", "10.0.0.0/24", None)
    with pytest.raises(LvnError, match="no address pool"):
        Leases(tmp_path / "x.json", None, None)


def test_lowest_free_address_first_and_reused_after_release(tmp_path: Path) -> None:
    leases = Leases(tmp_path / "l.json", "10.9.0.0/29", "fd09::/125",
                    reserved=("10.9.0.3",))
    assert leases.lease("a") == ["10.9.0.2/29", "fd09::2/125"]
    assert leases.lease("b") == ["10.9.0.4/29", "fd09::3/125"]  # .3 is reserved
    assert leases.lease("c") == ["10.9.0.5/29", "fd09::4/125"]
    leases.release("a")
    assert leases.lease("d") == ["10.9.0.2/29", "fd09::2/125"]
    assert leases.lease("e")[0] == "10.9.0.6/29"  # the last host; .7 is broadcast
    with pytest.raises(PoolExhausted):
        leases.lease("f")
    # a restart rebuilds what is taken from the file
    again = Leases(tmp_path / "l.json", "10.9.0.0/29", "fd09::/125", reserved=("10.9.0.3",))
    again.release("c")
    assert again.lease("g") == ["10.9.0.5/29", "fd09::4/125"]


def test_the_lease_file_is_private(tmp_path: Path) -> None:
    """Identities and their addresses: readable by root only."""
    import stat
    leases = Leases(tmp_path / "leases.json", "10.77.0.0/24", None)
    leases.lease("node-1")
    assert stat.S_IMODE((tmp_path / "leases.json").stat().st_mode) == 0o600


def test_leases_of_long_departed_identities_are_released(tmp_path: Path) -> None:
    day = 86400.0
    leases = Leases(tmp_path / "leases.json", "10.77.0.0/24", None)
    a, b = leases.lease("node-a")[0], leases.lease("node-b")[0]
    leases.lease("node-c")
    leases.touch("node-a", 1000 * day)
    leases.touch("node-b", 1000 * day)
    # node-c has no time yet (a table from before): it starts counting now
    assert leases.expire(1010 * day, 90 * day, active=set()) == []
    assert leases.expire(1095 * day, 90 * day, active={"node-b"}) == ["node-a"]
    assert "node-a" not in leases.table and leases.table["node-b"] == [b]
    # the times survive a restart; node-c's 90 days run from its first check
    again = Leases(tmp_path / "leases.json", "10.77.0.0/24", None)
    assert again.expire(1101 * day, 90 * day, active=set()) == ["node-b", "node-c"]
    assert again.lease("node-d") == [a]   # the lowest free address again
    assert again.expire(5000 * day, 0, active=set()) == []   # 0: kept forever
