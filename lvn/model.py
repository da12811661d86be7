"""Plain values describing kernel state: what the library returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .ipudp_abi import DEFAULT_PORT, MODES, RULE_KINDS

__all__ = ["DEFAULT_PORT", "MODES", "RULE_KINDS", "TunnelStats", "DeviceDrops", "Tunnel",
           "Rule", "Device", "Event"]


@dataclass(frozen=True)
class TunnelStats:
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    rx_spoofed: int = 0
    rx_malformed: int = 0


@dataclass(frozen=True)
class DeviceDrops:
    rx_unknown_endpoint: int = 0
    rx_malformed: int = 0
    rx_control_dropped: int = 0
    tx_no_tunnel: int = 0
    tx_no_route: int = 0
    rx_spoofed: int = 0
    tx_too_big: int = 0  # did not fit the path MTU: ICMP sent back


@dataclass(frozen=True)
class Tunnel:
    remote: str
    remote_port: int = DEFAULT_PORT
    local: str | None = None
    id: int = 0
    last_rx_ms: int | None = None  # None: never
    last_tx_ms: int | None = None
    stats: TunnelStats = field(default_factory=TunnelStats)
    keepalive: int = 0  # seconds between kernel keepalives; 0: none


@dataclass(frozen=True, order=True)
class Rule:
    prefix: str  # "10.1.0.0/16"
    tunnel_id: int
    kind: str = "dest"  # "dest": route to the tunnel; "source": allowed from it


@dataclass(frozen=True)
class Device:
    ifname: str
    ifindex: int
    mode: str = "fixed"
    port: int = DEFAULT_PORT
    sockets: tuple[str, ...] = ()  # e.g. ("ipv4", "ipv6/user")
    n_tunnels: int = 0
    n_rules: int = 0
    idle_timeout: int = 30  # s of silence before a tunnel's next rx is announced
    drops: DeviceDrops = field(default_factory=DeviceDrops)
    tunnels: tuple[Tunnel, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sockets"] = list(self.sockets)
        d["tunnels"] = [asdict(t) for t in self.tunnels]
        return d


@dataclass(frozen=True)
class Event:
    """A kernel notification from the ``events`` multicast group."""

    kind: str  # "tunnel-new", "tunnel-del", "tunnel-active" (first packet after idle)
    ifname: str
    ifindex: int
    tunnel_id: int
    remote: str | None = None
    remote_port: int | None = None
    # tunnel-del: why ("request": a TUNNEL_DEL command; "device": its device
    # went, the module's unload included); tunnel-new: whether it replaced
    # the tunnel of that id in place
    reason: str | None = None
    replaced: bool = False
