"""Per-source token buckets: how the server limits new control connections.

Many nodes can share one carrier-grade NAT address, so a source over its
rate is slowed down, never banned: its bucket refills at ``rate`` per
second up to ``burst``.  Pure; times come from the caller.
"""

from __future__ import annotations

import ipaddress


class RateLimiter:
    """``allow(key, now)``: True while ``key`` has a token left."""

    def __init__(self, rate: float, burst: int, max_keys: int = 4096) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.refused: dict[str, int] = {}  # refusals since the last report

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self.buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.rate)

    def allow(self, key: str, now: float) -> bool:
        tokens = self._tokens(key, now)
        if len(self.buckets) >= self.max_keys and key not in self.buckets:
            self.prune(now)
        if tokens < 1.0:
            self.buckets[key] = (tokens, now)
            self.refused[key] = self.refused.get(key, 0) + 1
            return False
        self.buckets[key] = (tokens - 1.0, now)
        return True

    def prune(self, now: float) -> None:
        """Forget the sources whose bucket is full again (nothing to remember);
        if that is not enough, the least recently seen half."""
        self.buckets = {k: v for k, v in self.buckets.items()
                        if self._tokens(k, now) < self.burst}
        if len(self.buckets) >= self.max_keys:
            keep = sorted(self.buckets.items(), key=lambda kv: kv[1][1])[len(self.buckets) // 2:]
            self.buckets = dict(keep)

    def report(self) -> dict[str, int]:
        """Refusals per source since the last report (for one log line each)."""
        out, self.refused = self.refused, {}
        return out


def source_key(address: str) -> str:
    """The unit a limit counts: an IPv4 address, or an IPv6 address's /64
    (one subscriber gets a whole /64, so counting single IPv6 addresses
    would give one source 2**64 buckets)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
