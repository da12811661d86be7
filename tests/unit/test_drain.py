"""A draining server's pace (lvn/drain.py): ``rate`` sessions a second,
the first at once, never more than a second's worth in one tick."""

import pytest

from lvn import service, ubus_api
from lvn.drain import Drain


def test_off_ends_nothing() -> None:
    assert Drain().due(100.0, 50) == 0


def test_one_a_second() -> None:
    d = Drain()
    d.start(1, 0.0)
    ended = [d.due(t * 0.5, 10) for t in range(1, 9)]  # ticks every 0.5 s for 4 s
    assert ended == [1, 0, 1, 0, 1, 0, 1, 0]
    assert d.moved == 4


def test_a_late_tick_is_no_burst() -> None:
    """The server's loop stalled 30 s: one second's worth goes, not thirty."""
    d = Drain()
    d.start(2, 0.0)
    assert d.due(0.0, 100) == 1
    assert d.due(30.0, 100) == 2
    assert d.due(30.5, 100) == 1


def test_never_more_than_there_are() -> None:
    d = Drain()
    d.start(10, 0.0)
    assert d.due(1.0, 3) == 3
    assert d.due(2.0, 0) == 0
    assert d.moved == 3


def test_stop_and_restart() -> None:
    d = Drain()
    d.start(1, 0.0)
    assert d.due(0.0, 5) == 1
    d.stop()
    assert d.due(10.0, 5) == 0
    d.start(1, 20.0)        # a new drain counts its own moves, first at once
    assert d.moved == 0 and d.due(20.0, 5) == 1


def test_a_rate_change_keeps_the_count() -> None:
    d = Drain()
    d.start(1, 0.0)
    assert d.due(0.0, 5) == 1
    d.start(4, 0.5)
    assert d.due(1.0, 5) == 2 and d.moved == 3


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="above 0"):
        Drain().start(0, 0.0)


@pytest.mark.parametrize("method", ["drain", "undrain"])
def test_only_a_server_drains(tmp_path, method: str) -> None:  # type: ignore[no-untyped-def]
    """The service's ubus call names the problem (it raised NameError)."""
    svc = service.Service(None, str(tmp_path))  # type: ignore[arg-type]  # (no kernel call)
    with pytest.raises(ubus_api.CallError, match=f"{method}: this agent is not a server"):
        svc.call(method, {})


@pytest.mark.parametrize("rate", [0, 1001, "2", True, 1.5])
def test_drain_rate_is_checked(tmp_path, rate: object) -> None:  # type: ignore[no-untyped-def]
    svc = service.Service(None, str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ubus_api.CallError, match="'rate' must be 1-1000"):
        svc.call("drain", {"rate": rate})
