"""The server's detached-tunnel planner (lvn/expiry.py): deadlines, the
kernel's last-rx answers, TUNNEL_ACTIVE events and adoption after a restart."""

from __future__ import annotations

from lvn.expiry import CheckRx, DetachedTunnels, RemoveTunnel

IDLE = 90.0


def test_a_silent_detached_tunnel_is_asked_about_once_then_removed() -> None:
    d = DetachedTunnels(IDLE)
    d.detach("node-a", 7, last_heard=100.0)
    assert d.next_due() == 190.0
    assert d.due(150.0) == [] and d.due(190.0) == []      # not yet past the deadline
    assert d.due(190.5) == [CheckRx("node-a", 7)]
    assert d.due(191.0) == [] and d.next_due() is None     # one question at a time
    assert d.on_rx("node-a", 95_000, 191.0) == [RemoveTunnel("node-a", 7)]
    assert "node-a" not in d and len(d) == 0


def test_a_receiving_tunnel_is_asked_about_once_per_idle_timeout() -> None:
    d = DetachedTunnels(IDLE)
    d.detach("node-a", 7, last_heard=0.0)
    asked = 0
    now = 0.0
    while now < 1000.0:       # the agent's one-second tick; packets arrive all the time
        now += 1.0
        for check in d.due(now):
            asked += 1
            assert d.on_rx(check.name, 400, now) == []   # last packet 0.4 s ago
    assert 1000 // (IDLE + 1) <= asked <= 1000 // IDLE and "node-a" in d   # not 1000


def test_tunnel_active_event_pushes_the_deadline_without_asking() -> None:
    d = DetachedTunnels(IDLE)
    d.detach("node-a", 7, last_heard=0.0)
    d.detach("node-b", 8, last_heard=0.0)
    d.on_active(7, 80.0)
    assert d.due(91.0) == [CheckRx("node-b", 8)]
    assert d.next_due() == 170.0
    d.on_active(99, 100.0)                           # another device's tunnel: nothing
    assert d.next_due() == 170.0


def test_an_answer_for_a_client_that_came_back_changes_nothing() -> None:
    d = DetachedTunnels(IDLE)
    d.detach("node-a", 7, last_heard=0.0)
    assert d.due(100.0) == [CheckRx("node-a", 7)]
    d.attach("node-a")                               # it reconnected meanwhile
    assert d.on_rx("node-a", None, 100.0) == [] and "node-a" not in d


def test_a_tunnel_gone_from_the_kernel_is_removed() -> None:
    d = DetachedTunnels(IDLE)
    d.detach("node-a", 7, last_heard=0.0)
    (check,) = d.due(100.0)
    assert d.on_rx(check.name, None, 100.0) == [RemoveTunnel("node-a", 7)]


def test_adoption_after_a_restart() -> None:
    d = DetachedTunnels(IDLE)
    d.left_by_earlier_run("#5", 5, ("198.51.100.7", 40001), 0.0)
    d.left_by_earlier_run("#6", 6, ("198.51.100.8", 40001), 0.0)
    assert d.adopt(("203.0.113.1", 1)) is None       # unknown endpoint
    assert d.adopt(("198.51.100.7", 40001)) == 5 and "#5" not in d
    assert d.adopt(("198.51.100.7", 40001)) is None  # once only
    # a left tunnel that expired first is not adopted
    (check,) = d.due(100.0)
    assert d.on_rx(check.name, None, 100.0) == [RemoveTunnel("#6", 6)]
    assert d.adopt(("198.51.100.8", 40001)) is None
