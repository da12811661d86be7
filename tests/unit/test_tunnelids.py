"""The server's tunnel ids (lvn/tunnelids.py): lowest free first, reused
after release, leftovers of an earlier run kept until adopted or freed."""

from __future__ import annotations

import pytest

from lvn import LvnError
from lvn.tunnelids import TunnelIds, leftover_name


def test_lowest_free_first_and_reused_after_release() -> None:
    ids = TunnelIds()
    assert [ids.take(n) for n in ("a", "b", "c", "d")] == [1, 2, 3, 4]
    assert ids.take("b") == 2  # a client keeps its id
    assert ids.release("b") == 2 and ids.release("d") == 4
    assert ids.release("b") is None
    assert ids.take("e") == 2 and ids.take("f") == 4 and ids.take("g") == 5
    assert ids.names() == {"a", "c", "e", "f", "g"}


def test_leftovers_stay_taken_until_adopted_or_freed() -> None:
    ids = TunnelIds()
    assert ids.leftover(2) == "#2" == leftover_name(2)
    ids.leftover(7)
    assert [ids.take(n) for n in ("a", "b", "c")] == [1, 3, 4]
    # the client that comes back from a leftover's endpoint gets its id
    assert ids.take("back", adopted=7) == 7 and "#7" not in ids and ids.get("back") == 7
    # a leftover already gone (expired) is not adopted: a fresh id instead
    assert ids.release("#2") == 2
    assert ids.take("late", adopted=2) == 2  # the lowest free, by chance the same
    assert ids.take("later", adopted=2) == 5
    # ids above a leftover are handed out once only
    assert len({ids.get(n) for n in ids.names()}) == len(ids.names())


def test_a_released_leftover_above_the_counter_is_handed_out_once() -> None:
    ids = TunnelIds()
    ids.leftover(3)
    ids.release("#3")
    got = [ids.take(str(i)) for i in range(5)]
    assert got == [1, 2, 3, 4, 5]


def test_exhaustion_is_an_error_naming_it() -> None:
    ids = TunnelIds(max_id=3)
    for n in "abc":
        ids.take(n)
    with pytest.raises(LvnError, match="no free tunnel id: 3 tunnels in use"):
        ids.take("d")
    ids.release("b")
    assert ids.take("d") == 2
