"""Rebalancing between servers (lvn/balance.py): a loaded server sends
clients to one with room at its rate, stops within the margin, and two
servers never pass clients back and forth."""

import random

import pytest

from lvn.balance import SETTLE, STAY, Balance


def test_off_when_the_margin_is_zero() -> None:
    assert not Balance(0, 2).due(0.0, 100, 100, [(0, 100)])


def test_nothing_to_do_alone_or_empty() -> None:
    b = Balance(1, 2)
    assert not b.due(0.0, 10, 100, [])
    assert not b.due(0.0, 0, 100, [(0, 100)])


def test_within_the_margin_nobody_moves() -> None:
    b = Balance(4, 2)
    assert not b.due(0.0, 14, 100, [(10, 100)])   # 4 above: not more than the margin
    assert b.due(0.0, 15, 100, [(10, 100)])       # 5 above


def test_at_the_rate() -> None:
    b = Balance(1, 2)
    sent = [t / 10 for t in range(0, 30) if b.due(t / 10, 100, 100, [(0, 100)])]
    assert sent == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert b.moved == 6


def test_the_least_loaded_by_capacity() -> None:
    """2 of 10 is more loaded than 10 of 100: the move is weighed against the latter."""
    assert not Balance(1, 1).due(0.0, 12, 100, [(2, 10)])   # 20 at this scale: no
    b = Balance(1, 1)
    assert not b.due(0.0, 11, 100, [(2, 10), (10, 100)])    # 1 above: within the margin
    assert b.due(0.0, 12, 100, [(2, 10), (10, 100)])        # 2 above: 11 and 11 after


def test_capacity_scales_the_other_load() -> None:
    """A server of 1000 with 100 clients against one of 100 with 5: 50
    above at this server's scale."""
    assert Balance(10, 1).due(0.0, 100, 1000, [(5, 100)])
    assert not Balance(60, 1).due(0.0, 100, 1000, [(5, 100)])


def test_never_the_move_that_reverses_the_order() -> None:
    """3 of 10 against an empty server of 1: sending one would make that
    one the busier (1 of 1 against 2 of 10)."""
    assert not Balance(1, 1).due(0.0, 3, 10, [(0, 1)])
    b = Balance(1, 1)
    assert b.due(0.0, 4, 10, [(1, 10)])       # 3 above; after: 3 and 2
    assert not b.due(5.0, 3, 10, [(1, 10)])   # 3 against 1 + 1 on its way: nothing


def test_clients_on_their_way_count_until_etcd_shows_them() -> None:
    b = Balance(1, 10)
    assert b.due(0.0, 10, 100, [(0, 100)])
    # etcd still says 0 there; this server has 9: 9 vs 0+1 on the way
    sent = sum(b.due(t / 10, 10 - 1 - i, 100, [(0, 100)]) for i, t in enumerate(range(1, 10)))
    # not all at once: the ones sent are counted there
    assert 1 + sent < 10
    assert b.due(SETTLE + 1, 10 - 1 - sent, 100, [(0, 100)])  # they never came: again


@pytest.mark.parametrize("seed", range(20))
def test_two_servers_settle_without_flapping(seed: int) -> None:
    """Two servers, etcd's view lagging 5 to 10 s and clients taking 1 to
    1.5 s to rejoin: from any split they settle within the margin, and no
    client is ever sent in both directions."""
    rnd = random.Random(seed)
    margin = rnd.choice([1, 2, 4])
    capacity = [rnd.choice([10, 100, 1000]), rnd.choice([10, 100, 1000])]
    clients = [rnd.randrange(0, 200), 0]
    rnd.shuffle(clients)
    start = list(clients)
    policy = [Balance(margin, 2), Balance(margin, 2)]
    view = list(clients)             # what etcd says, published every 5 s
    arriving: list[tuple[float, int]] = []  # (when, to which server)
    directions = set()
    t = 0.0
    while t < 2000:
        t += 0.1
        if round(t * 10) % 50 == 0:
            view = list(clients)
        for when, to in [a for a in arriving if a[0] <= t]:
            clients[to] += 1
            arriving.remove((when, to))
        for me in (0, 1):
            other = 1 - me
            if policy[me].due(t, clients[me], capacity[me], [(view[other], capacity[other])]):
                clients[me] -= 1
                arriving.append((t + 1 + rnd.random() / 2, other))
                directions.add(me)
    assert not arriving
    assert len(directions) <= 1, "clients went both ways"
    a, b = clients
    moved = policy[0].moved + policy[1].moved
    assert moved == abs(a - start[0]), "every client sent arrived, none twice"
    # settled: within the margin, or one more move would reverse the order
    above = [a - b * capacity[0] / capacity[1], b - a * capacity[1] / capacity[0]]
    for me, other, mine, theirs in ((0, 1, a, b), (1, 0, b, a)):
        assert above[me] <= margin or (mine - 1) * capacity[other] < (theirs + 1) * capacity[me]


def test_pick_sends_the_oldest_first() -> None:
    b = Balance(1, 1)
    assert b.pick(0.0, ["a", "b", "c", "d"], 10, [(0, 10)]) == "a"
    assert b.pick(0.5, ["b", "c", "d"], 10, [(0, 10)]) is None   # the rate
    assert b.pick(1.0, ["b", "c", "d"], 10, [(0, 10)]) == "b"    # 3 against 0 + 1 on its way
    assert b.pick(2.0, ["c", "d"], 10, [(0, 10)]) is None        # 2 against 0 + 2


def test_a_client_that_comes_straight_back_stays() -> None:
    """It lists this server alone, or cannot reach the other: sending it
    again and again would only cut its tunnel every few seconds."""
    b = Balance(1, 1)
    assert b.pick(0.0, ["a", "b", "c", "d", "e"], 10, [(0, 10)]) == "a"
    assert b.joined("a", 2.0)                      # back after 2 s
    assert b.pick(SETTLE + 1, ["b", "c", "d", "e", "a"], 10, [(0, 10)]) == "b"
    assert b.pick(SETTLE + 3, ["c", "d", "e", "a"], 10, [(0, 10)]) == "c"
    assert not b.joined("b", SETTLE + 1 + SETTLE)  # back, but too late to count
    later = STAY + 10
    assert b.pick(later, ["a", "c"], 10, [(0, 10)]) == "a"  # its stay is over


def test_nobody_left_to_send() -> None:
    b = Balance(1, 1)
    assert b.pick(0.0, ["a", "b", "c"], 10, [(0, 10)]) == "a"
    b.joined("a", 1.0)
    b.pick(SETTLE + 1, ["b", "c", "a"], 10, [(0, 10)])
    b.joined("b", SETTLE + 2)
    b.pick(2 * SETTLE + 3, ["c", "a", "b"], 10, [(0, 10)])
    b.joined("c", 2 * SETTLE + 4)
    # every client here came straight back: nobody is sent, and no move is counted
    moved = b.moved
    assert b.pick(3 * SETTLE + 5, ["a", "b", "c"], 10, [(0, 10)]) is None
    assert b.moved == moved
