"""The per-source connection limiter: slows a source down, never bans it."""

from __future__ import annotations

import pytest

from lvn.ratelimit import RateLimiter


def test_burst_then_rate() -> None:
    rl = RateLimiter(rate=2, burst=5)
    assert [rl.allow("a", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert rl.allow("b", 0.0)  # other sources are not affected
    assert not rl.allow("a", 0.2)  # 0.4 token
    assert rl.allow("a", 0.5)      # 1 token after 0.5 s at 2/s
    assert not rl.allow("a", 0.5)
    assert rl.report() == {"a": 4}
    assert rl.report() == {}


def test_refills_to_burst_only() -> None:
    rl = RateLimiter(rate=1, burst=3)
    assert all(rl.allow("a", 0.0) for _ in range(3))
    # a long pause refills to the burst, not beyond
    assert [rl.allow("a", 1000.0) for _ in range(4)] == [True, True, True, False]


def test_memory_is_bounded() -> None:
    rl = RateLimiter(rate=1, burst=2, max_keys=100)
    for i in range(1000):
        rl.allow(f"10.0.{i // 256}.{i % 256}", float(i) / 1000)
    assert len(rl.buckets) <= 100
    # a source that is still being limited is remembered after a prune
    rl2 = RateLimiter(rate=0.001, burst=1, max_keys=10)
    assert rl2.allow("x", 0.0) and not rl2.allow("x", 0.0)
    for i in range(50):
        rl2.allow(f"y{i}", 0.0)
    assert "x" in rl2.buckets or len(rl2.buckets) <= 10


@pytest.mark.parametrize("rate,burst", [(0, 1), (1, 0), (-1, 5)])
def test_bad_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


def test_limits_count_ipv4_addresses_and_ipv6_64s() -> None:
    from lvn.ratelimit import source_key
    assert source_key("192.0.2.1") == "192.0.2.1"
    assert source_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
