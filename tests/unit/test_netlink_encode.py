"""pyroute2 as the oracle of the project's codec: the requests it writes
(batches included) are byte for byte pyroute2's, and what pyroute2
encodes as a reply or event decodes to the same values."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2_oracle import ipudp_msg

from lvn import ipudp_abi as abi
from lvn import netlink, nlcodec
from lvn.model import Device, DeviceDrops, Event, Rule, Tunnel, TunnelStats
from lvn.netlink import _genl_request, _prefix_attrs, _tunnel_attrs


def pyroute2_bytes(cmd: int, seq: int, attrs: list[Any]) -> bytes:
    msg = ipudp_msg()
    msg["cmd"], msg["version"], msg["attrs"] = cmd, 1, attrs
    msg["header"]["type"], msg["header"]["flags"] = 0x1e, 5
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


PREFIXES = st.one_of(
    st.builds(lambda a, n: f"{'.'.join(str(b) for b in a)}/{n}",
              st.lists(st.integers(0, 255), min_size=4, max_size=4), st.integers(0, 32)),
    st.builds(lambda a, n: f"{a:x}::/{n}", st.integers(0, 0xffff), st.integers(0, 128)))


@given(PREFIXES, st.integers(0, 2**32 - 1), st.integers(0, 1), st.text("abc01", min_size=1,
                                                                      max_size=15))
def test_rule_requests(prefix: str, tid: int, kind: int, ifname: str) -> None:
    attrs = [("IPUDP_A_IFNAME", ifname), ("IPUDP_A_RULE", {"attrs": _prefix_attrs(prefix) + [
        ("IPUDP_RULE_A_TYPE", kind), ("IPUDP_RULE_A_TUNNEL_ID", tid)]})]
    assert _genl_request(0x1e, 6, 77, attrs) == pyroute2_bytes(6, 77, attrs)


@pytest.mark.parametrize("tunnel", [Tunnel("192.0.2.1"), Tunnel("fd00::1", 50001, "fd00::2", 7),
                                    Tunnel("10.0.0.1", 1, "10.0.0.2", 2**32 - 1)])
def test_tunnel_requests(tunnel: Tunnel) -> None:
    attrs = [("IPUDP_A_IFNAME", "lvm"), ("IPUDP_A_TUNNEL", {"attrs": _tunnel_attrs(tunnel)}),
             ("IPUDP_A_FLAGS", 1)]
    assert _genl_request(0x1e, 3, 1, attrs) == pyroute2_bytes(3, 1, attrs)


# replies: what pyroute2 encodes, the library decodes to the same values
ADDRS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str)
U64 = st.integers(0, 2**64 - 1)


def pyroute2_reply(cmd: int, attrs: list[Any]) -> tuple[int, bytes]:
    """(command, genetlink payload) of a message pyroute2 encoded."""
    data = pyroute2_bytes(cmd, 1, attrs)
    return data[16], data[16:]


@given(ADDRS, st.integers(1, 65535), st.integers(0, 2**32 - 1), U64, U64, U64, U64,
       st.integers(0, 2**32 - 1), st.integers(0, 65535), st.sampled_from([0, 1]))
def test_device_replies_decode_as_pyroute2_encodes_them(
        remote: str, port: int, tid: int, rxp: int, txb: int, spoofed: int, drops: int,
        last_rx: int, keepalive: int, mode: int) -> None:
    v = "6" if ":" in remote else "4"
    attrs = [("IPUDP_A_IFINDEX", 7), ("IPUDP_A_IFNAME", "lvn0"), ("IPUDP_A_MODE", mode),
             ("IPUDP_A_PORT", port), ("IPUDP_A_SOCK_FLAGS", 0b111), ("IPUDP_A_N_TUNNELS", 1),
             ("IPUDP_A_IDLE_TIMEOUT", 30),
             ("IPUDP_A_STATS", {"attrs": [("IPUDP_STATS_A_RX_SPOOFED", drops)]}),
             ("IPUDP_A_TUNNEL", {"attrs": [
                 ("IPUDP_TUNNEL_A_ID", tid), (f"IPUDP_TUNNEL_A_REMOTE{v}", remote),
                 ("IPUDP_TUNNEL_A_REMOTE_PORT", port), ("IPUDP_TUNNEL_A_LAST_RX_MS", last_rx),
                 ("IPUDP_TUNNEL_A_KEEPALIVE", keepalive),
                 ("IPUDP_TUNNEL_A_STATS", {"attrs": [
                     ("IPUDP_STATS_A_RX_PACKETS", rxp), ("IPUDP_STATS_A_TX_BYTES", txb),
                     ("IPUDP_STATS_A_RX_SPOOFED", spoofed)]})]})]
    cmd, payload = pyroute2_reply(abi.CMD_DEV_GET, attrs)
    dev = netlink._parse_device(nlcodec.decode_attrs(abi.Msg, payload, 4))
    assert cmd == abi.CMD_DEV_GET
    assert dev == Device(
        ifname="lvn0", ifindex=7, mode=abi.MODES[mode], port=port, sockets=("ipv4/user", "ipv6"),
        n_tunnels=1, idle_timeout=30, drops=DeviceDrops(rx_spoofed=drops),
        # (the text form is nlcodec's, the same on every Python: test_nlcodec.py)
        tunnels=(Tunnel(remote=nlcodec.ip_text(ipaddress.ip_address(remote).packed),
                        remote_port=port, id=tid, last_rx_ms=last_rx,
                        keepalive=keepalive,
                        stats=TunnelStats(rx_packets=rxp, tx_bytes=txb, rx_spoofed=spoofed)),))


@given(st.sampled_from(["10.0.0.0/8", "192.0.2.128/25", "fd00::/8", "::/0"]),
       st.integers(0, 2**32 - 1), st.sampled_from([0, 1]))
def test_rule_replies_decode_as_pyroute2_encodes_them(prefix: str, tid: int, kind: int) -> None:
    attrs = [("IPUDP_A_RULE", {"attrs": _prefix_attrs(prefix) + [
        ("IPUDP_RULE_A_TUNNEL_ID", tid), ("IPUDP_RULE_A_TYPE", kind)]})]
    _, payload = pyroute2_reply(abi.CMD_RULE_GET, attrs)
    assert netlink._parse_rule(nlcodec.decode_attrs(abi.Msg, payload, 4)) == Rule(
        prefix=prefix, tunnel_id=tid, kind=abi.RULE_KINDS[kind])


@pytest.mark.parametrize("cmd, reason, flags, kind", [
    (abi.CMD_TUNNEL_NEW, None, abi.F_REPLACE, "tunnel-new"),
    (abi.CMD_TUNNEL_DEL, 1, 0, "tunnel-del"),
    (abi.CMD_TUNNEL_ACTIVE, None, 0, "tunnel-active")])
def test_events_decode_as_pyroute2_encodes_them(cmd: int, reason: int | None, flags: int,
                                                kind: str) -> None:
    attrs: list[Any] = [("IPUDP_A_IFINDEX", 3), ("IPUDP_A_IFNAME", "lvn0")]
    if flags:
        attrs.append(("IPUDP_A_FLAGS", flags))
    if reason is not None:
        attrs.append(("IPUDP_A_REASON", reason))
    attrs.append(("IPUDP_A_TUNNEL", {"attrs": [
        ("IPUDP_TUNNEL_A_ID", 9), ("IPUDP_TUNNEL_A_REMOTE6", "2001:db8::7"),
        ("IPUDP_TUNNEL_A_REMOTE_PORT", 40000)]}))
    got, payload = pyroute2_reply(cmd, attrs)
    assert netlink._parse_event(got, nlcodec.decode_attrs(abi.Msg, payload, 4)) == Event(
        kind=kind, ifname="lvn0", ifindex=3, tunnel_id=9, remote="2001:db8::7",
        remote_port=40000, reason=None if reason is None else abi.DEL_REASONS[reason],
        replaced=bool(flags))
