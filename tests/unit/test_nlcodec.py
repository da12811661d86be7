"""lvn.nlcodec: acks with extended-ack text in both byte orders, framing
errors, attribute and address encoding (against pyroute2 and ipaddress)."""

from __future__ import annotations

import errno
import ipaddress
import struct
from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lvn import ipudp_abi, nlcodec, rawnl
from lvn.model import Tunnel, TunnelStats
from lvn.nlcodec import (
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLMSG_ERROR,
    NetlinkFormatError,
    parse_ack,
    parse_done,
)

ORDERS = ["<", ">"]


def attr(order: str, atype: int, payload: bytes) -> bytes:
    return struct.pack(order + "HH", 4 + len(payload), atype) + payload + b"\0" * (
        -len(payload) % 4)


def kernel_ack(order: str, err: int, request: bytes, *, capped: bool,
               msg: str | None = None, offs: int | None = None) -> tuple[int, bytes]:
    """(flags, payload) of an NLMSG_ERROR as net/netlink/af_netlink.c builds it."""
    payload = struct.pack(order + "i", -err) + (request[:16] if capped else request)
    payload += b"\0" * (-len(payload) % 4)
    tlvs = b""
    if msg is not None:
        tlvs += attr(order, nlcodec.NLMSGERR_ATTR_MSG, msg.encode() + b"\0")
    if offs is not None:
        tlvs += attr(order, nlcodec.NLMSGERR_ATTR_OFFS, struct.pack(order + "I", offs))
    flags = (NLM_F_CAPPED if capped else 0) | (NLM_F_ACK_TLVS if tlvs else 0)
    return flags, payload + tlvs


def a_request(order: str, payload_size: int) -> bytes:
    return nlcodec.message(0x1E, 5, 9, bytes(range(payload_size)), order)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("capped", [False, True])
@pytest.mark.parametrize("size", [0, 4, 7, 30])
def test_extended_ack_message_in_both_byte_orders(order: str, capped: bool, size: int) -> None:
    """The kernel's message survives whatever the request's length and the
    byte order (pyroute2 loses it on big-endian machines)."""
    flags, payload = kernel_ack(order, errno.EINVAL, a_request(order, size), capped=capped,
                                msg="missing attribute: IPUDP_A_IFINDEX", offs=20)
    ack = parse_ack(flags, 9, payload, order)
    assert (ack.errno, ack.seq, ack.message, ack.offset) == (
        errno.EINVAL, 9, "missing attribute: IPUDP_A_IFINDEX", 20)


@pytest.mark.parametrize("order", ORDERS)
def test_plain_ack_and_plain_error(order: str) -> None:
    flags, payload = kernel_ack(order, 0, a_request(order, 8), capped=True)
    assert parse_ack(flags, 1, payload, order).errno == 0
    flags, payload = kernel_ack(order, errno.ENODEV, a_request(order, 8), capped=False)
    ack = parse_ack(flags, 1, payload, order)
    assert (ack.errno, ack.message, ack.offset) == (errno.ENODEV, None, None)


@pytest.mark.parametrize("order", ORDERS)
def test_dump_done_with_error_and_message(order: str) -> None:
    payload = struct.pack(order + "i", -errno.EMSGSIZE) + attr(
        order, nlcodec.NLMSGERR_ATTR_MSG, b"too big\0")
    ack = parse_done(NLM_F_ACK_TLVS, 3, payload, order)
    assert (ack.errno, ack.message) == (errno.EMSGSIZE, "too big")
    assert parse_done(0, 3, struct.pack(order + "i", 0), order).errno == 0


def test_wrong_byte_order_does_not_pass_for_the_message() -> None:
    """Reading a big-endian ack as little-endian must not invent the text
    (what pyroute2 does on the other side): errno is wrong and loud."""
    flags, payload = kernel_ack(">", errno.EINVAL, a_request(">", 8), capped=False, msg="x")
    with pytest.raises(NetlinkFormatError):
        parse_ack(flags, 1, payload, "<")


@pytest.mark.parametrize("buf, words", [
    (b"\x10\0\0", "truncated netlink header"),
    (struct.pack("=IHHII", 40, 2, 0, 1, 0), "does not fit"),
    (struct.pack("=IHHII", 8, 2, 0, 1, 0), "does not fit"),
])
def test_badly_framed_datagrams(buf: bytes, words: str) -> None:
    with pytest.raises(NetlinkFormatError, match=words):
        nlcodec.split(buf)


def test_short_error_message() -> None:
    with pytest.raises(NetlinkFormatError, match="netlink error message of 4 bytes"):
        parse_ack(0, 1, b"\0" * 4)


def test_split_and_attrs_round_trip() -> None:
    body = nlcodec.encode_attrs(ipudp_abi.Msg, [("IPUDP_A_IFNAME", "lvn0"), ("IPUDP_A_PORT", 5000),
                                                ("IPUDP_A_RETURN_FD", True)])
    buf = nlcodec.message(0x1E, 2, 4, body) + nlcodec.message(NLMSG_ERROR, 0, 5, bytes(20))
    (m1, m2) = nlcodec.split(buf)
    assert m1[:3] == (0x1E, 2, 4) and m2[:3] == (NLMSG_ERROR, 0, 5)
    assert nlcodec.attrs(m1[3]) == [(2, b"lvn0\0"), (4, struct.pack("=H", 5000)), (14, b"")]


V6 = st.integers(0, 2**128 - 1).map(lambda n: ipaddress.IPv6Address(n))


@given(V6)
def test_ipv6_text_forms(addr: ipaddress.IPv6Address) -> None:
    forms = {addr.compressed, addr.exploded}
    if addr.ipv4_mapped:
        forms.add(f"::ffff:{addr.ipv4_mapped}")
    for text in forms:
        assert nlcodec.ip6_packed(text) == addr.packed


@pytest.mark.parametrize("text", ["", ":", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
                                  "12345::", "g::", "1:2:3:4:5:6:7:8::", "::1.2.3"])
def test_ipv6_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an IPv6 address"):
        nlcodec.ip6_packed(text)


@pytest.mark.parametrize("text", ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", ""])
def test_ipv4_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an IPv4 address"):
        nlcodec.ip4_packed(text)
@given(V6)
def test_ipv6_text_is_canonical(addr: ipaddress.IPv6Address) -> None:
    # RFC 5952 section 5: IPv4-mapped in mixed notation, as ip(8) and Python
    # 3.13's ipaddress print it (3.11's prints ::ffff:0:0 for ::ffff:0.0.0.0)
    mapped = addr.ipv4_mapped
    assert nlcodec.ip_text(addr.packed) == (f"::ffff:{mapped}" if mapped is not None
                                            else str(addr))


def test_ipv4_mapped_text() -> None:
    for text in ("::ffff:0.0.0.0", "::ffff:192.0.2.1"):
        assert nlcodec.ip_text(ipaddress.IPv6Address(text).packed) == text


@given(st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address))
def test_ipv4_text(addr: ipaddress.IPv4Address) -> None:
    assert nlcodec.ip_text(addr.packed) == str(addr)


TUNNEL_REPLY = [("IPUDP_A_IFNAME", "lvn0"), ("IPUDP_A_PORT", 50000), ("IPUDP_A_TUNNEL", {"attrs": [
    ("IPUDP_TUNNEL_A_ID", 7), ("IPUDP_TUNNEL_A_REMOTE6", "2001:db8::1"),
    ("IPUDP_TUNNEL_A_REMOTE_PORT", 4000), ("IPUDP_TUNNEL_A_LAST_RX_MS", 2**40 + 5),
    ("IPUDP_TUNNEL_A_STATS", {"attrs": [("IPUDP_STATS_A_RX_PACKETS", 3),
                                        ("IPUDP_STATS_A_TX_BYTES", 2**33)]})]}),
    ("IPUDP_A_RETURN_FD", True)]


@pytest.mark.parametrize("order", ["<", ">"])
def test_decode_attrs_inverts_encode_attrs(order: str) -> None:
    body = nlcodec.encode_attrs(ipudp_abi.Msg, TUNNEL_REPLY, order)
    assert nlcodec.decode_attrs(ipudp_abi.Msg, body, 0, order) == {
        "IPUDP_A_IFNAME": "lvn0", "IPUDP_A_PORT": 50000, "IPUDP_A_RETURN_FD": True,
        "IPUDP_A_TUNNEL": {"IPUDP_TUNNEL_A_ID": 7, "IPUDP_TUNNEL_A_REMOTE6": "2001:db8::1",
                           "IPUDP_TUNNEL_A_REMOTE_PORT": 4000,
                           "IPUDP_TUNNEL_A_LAST_RX_MS": 2**40 + 5,
                           "IPUDP_TUNNEL_A_STATS": {"IPUDP_STATS_A_RX_PACKETS": 3,
                                                    "IPUDP_STATS_A_TX_BYTES": 2**33}}}


def test_decode_attrs_names_a_short_payload_and_skips_unknown_types() -> None:
    short = nlcodec.attr(4, b"\x01")                  # IPUDP_A_PORT, 1 byte
    with pytest.raises(nlcodec.NetlinkFormatError, match="IPUDP_A_PORT: payload of 1 bytes"):
        nlcodec.decode_attrs(ipudp_abi.Msg, short)
    unknown = nlcodec.attr(200, b"abcd") + nlcodec.attr(1, struct.pack("I", 9))
    assert nlcodec.decode_attrs(ipudp_abi.Msg, unknown) == {"IPUDP_A_IFINDEX": 9}


def test_the_nodes_tunnel_entry_has_the_librarys_shape() -> None:
    """rawnl.tunnel_entry (MicroPython's ``tunnels`` reply) matches asdict(model.Tunnel)."""
    decoded = nlcodec.decode_attrs(ipudp_abi.Msg, nlcodec.encode_attrs(ipudp_abi.Msg, TUNNEL_REPLY))
    assert rawnl.tunnel_entry(decoded["IPUDP_A_TUNNEL"]) == asdict(Tunnel(
        remote="2001:db8::1", remote_port=4000, id=7, last_rx_ms=2**40 + 5,
        stats=TunnelStats(rx_packets=3, tx_bytes=2**33)))
