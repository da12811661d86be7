"""Rendering of kernel state for people (text) and programs (JSON). Pure."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

from .model import Device, Rule, Tunnel


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'; exact below 1 KiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_age(ms: int | None) -> str:
    if ms is None:
        return "never"
    if ms < 1000:
        return f"{ms} ms ago"
    s = ms // 1000
    if s < 120:
        return f"{s} s ago"
    return f"{s // 60} min ago"


def format_endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def format_tunnel(t: Tunnel) -> list[str]:
    local = f" local {t.local}" if t.local else ""
    if t.keepalive:
        local += f", keepalive {t.keepalive}s"
    st = t.stats
    return [
        f"  tunnel {t.id}: remote {format_endpoint(t.remote, t.remote_port)}{local}",
        f"    rx: {st.rx_packets} packets, {human_bytes(st.rx_bytes)}, "
        f"last {human_age(t.last_rx_ms)}",
        f"    tx: {st.tx_packets} packets, {human_bytes(st.tx_bytes)}, "
        f"last {human_age(t.last_tx_ms)}",
    ]


def format_device(d: Device) -> str:
    sockets = ", ".join(d.sockets) if d.sockets else "none yet"
    lines = [f"{d.ifname}: mode {d.mode}, udp port {d.port}, sockets: {sockets}"]
    if d.mode != "fixed":
        lines[0] += f", {d.n_tunnels} tunnels, {d.n_rules} rules"
    drops = {k: v for k, v in vars(d.drops).items() if v}
    if drops:
        lines.append("  drops: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                             for k, v in drops.items()))
    if not d.tunnels:
        lines.append("  no tunnel")
    for t in d.tunnels:
        lines.extend(format_tunnel(t))
    return "\n".join(lines)


def format_devices(devices: Iterable[Device]) -> str:
    out = [format_device(d) for d in devices]
    return "\n".join(out) if out else "no ipudp devices"


def devices_json(devices: Iterable[Device]) -> str:
    return json.dumps([d.to_dict() for d in devices], indent=2, sort_keys=True)


def format_rules(rules: Iterable[Rule]) -> str:
    out = [f"{r.prefix} {'from' if r.kind == 'source' else 'via'} tunnel {r.tunnel_id}"
           for r in rules]
    return "\n".join(out) if out else "no rules"


def rules_json(rules: Iterable[Rule]) -> str:
    return json.dumps([asdict(r) for r in rules], indent=2, sort_keys=True)
