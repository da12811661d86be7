"""The ipudp kernel ABI as data: commands, flags and attribute spaces.

From feed/kmod-ipudp/src/uapi/linux/ipudp.h (tests/unit/test_netlink_abi.py
keeps them in sync).  Attribute spaces are pyroute2-style ``nla_map``
tuples (index = attribute type, ``(name, kind)``), used by lvn.netlink's
pyroute2 classes on CPython and, as the plain classes below, by
lvn.nlcodec on MicroPython.  Pure and MicroPython-friendly: no imports.
"""

GENL_NAME = "ipudp"
GENL_VERSION = 1
CMD_DEV_GET = 1
CMD_DEV_SET = 2
CMD_TUNNEL_NEW = 3
CMD_TUNNEL_DEL = 4
CMD_TUNNEL_GET = 5
CMD_RULE_NEW = 6
CMD_RULE_DEL = 7
CMD_RULE_GET = 8
CMD_ROUTE_GET = 9
CMD_TUNNEL_ACTIVE = 10
MCGRP_EVENTS = "events"
DEFAULT_PORT = 50000  # IPUDP_DEFAULT_PORT
MODES = ("fixed", "multi")  # enum ipudp_mode, by value
RULE_KINDS = ("dest", "source")  # enum ipudp_rule_type, by value
DEL_REASONS = ("request", "device")  # enum ipudp_del_reason, by value


def name_of(names: "tuple[str, ...]", value: int) -> str:
    """The name of an enum ``value`` (its number, one this code does not know)."""
    return names[value] if 0 <= value < len(names) else str(value)
F_REPLACE = 1 << 0
SOCK_F_V4 = 1 << 0
SOCK_F_V6 = 1 << 1
SOCK_F_V4_USER = 1 << 2
SOCK_F_V6_USER = 1 << 3
NLA_F_NESTED = 0x8000

STATS_ATTRS = (
    ("IPUDP_STATS_A_UNSPEC", "none"),
    ("IPUDP_STATS_A_RX_PACKETS", "uint64"),
    ("IPUDP_STATS_A_RX_BYTES", "uint64"),
    ("IPUDP_STATS_A_TX_PACKETS", "uint64"),
    ("IPUDP_STATS_A_TX_BYTES", "uint64"),
    ("IPUDP_STATS_A_RX_UNKNOWN_ENDPOINT", "uint64"),
    ("IPUDP_STATS_A_RX_MALFORMED", "uint64"),
    ("IPUDP_STATS_A_RX_CONTROL_DROPPED", "uint64"),
    ("IPUDP_STATS_A_TX_NO_TUNNEL", "uint64"),
    ("IPUDP_STATS_A_TX_NO_ROUTE", "uint64"),
    ("IPUDP_STATS_A_RX_SPOOFED", "uint64"),
    ("IPUDP_STATS_A_PAD", "none"),
    ("IPUDP_STATS_A_TX_TOO_BIG", "uint64"),
)

RULE_ATTRS = (
    ("IPUDP_RULE_A_UNSPEC", "none"),
    ("IPUDP_RULE_A_TUNNEL_ID", "uint32"),
    ("IPUDP_RULE_A_PREFIX4", "ip4addr"),
    ("IPUDP_RULE_A_PREFIX6", "ip6addr"),
    ("IPUDP_RULE_A_PREFIX_LEN", "uint8"),
    ("IPUDP_RULE_A_TYPE", "uint8"),
)

TUNNEL_ATTRS = (
    ("IPUDP_TUNNEL_A_UNSPEC", "none"),
    ("IPUDP_TUNNEL_A_ID", "uint32"),
    ("IPUDP_TUNNEL_A_LOCAL4", "ip4addr"),
    ("IPUDP_TUNNEL_A_LOCAL6", "ip6addr"),
    ("IPUDP_TUNNEL_A_REMOTE4", "ip4addr"),
    ("IPUDP_TUNNEL_A_REMOTE6", "ip6addr"),
    ("IPUDP_TUNNEL_A_REMOTE_PORT", "uint16"),
    ("IPUDP_TUNNEL_A_LAST_RX_MS", "uint64"),
    ("IPUDP_TUNNEL_A_LAST_TX_MS", "uint64"),
    ("IPUDP_TUNNEL_A_STATS", "stats"),
    ("IPUDP_TUNNEL_A_PAD", "none"),
    ("IPUDP_TUNNEL_A_KEEPALIVE", "uint16"),
)

ATTRS = (
    ("IPUDP_A_UNSPEC", "none"),
    ("IPUDP_A_IFINDEX", "uint32"),
    ("IPUDP_A_IFNAME", "asciiz"),
    ("IPUDP_A_MODE", "uint8"),
    ("IPUDP_A_PORT", "uint16"),
    ("IPUDP_A_FD", "uint32"),
    ("IPUDP_A_SOCK_FLAGS", "uint32"),
    ("IPUDP_A_STATS", "stats"),
    ("IPUDP_A_TUNNEL", "tunnel"),
    ("IPUDP_A_FLAGS", "uint32"),
    ("IPUDP_A_RULE", "rule"),
    ("IPUDP_A_N_TUNNELS", "uint32"),
    ("IPUDP_A_N_RULES", "uint32"),
    ("IPUDP_A_IDLE_TIMEOUT", "uint16"),
    ("IPUDP_A_RETURN_FD", "flag"),
    ("IPUDP_A_REASON", "uint8"),
)

# IFLA_INFO_DATA of link kind "ipudp" (enum ipudp_link_attr)
LINK_ATTRS = (
    ("IFLA_IPUDP_UNSPEC", "none"),
    ("IFLA_IPUDP_MODE", "uint8"),
    ("IFLA_IPUDP_PORT", "uint16"),
)


class Stats:
    nla_flags = NLA_F_NESTED
    nla_map = STATS_ATTRS


class Rule:
    nla_flags = NLA_F_NESTED
    nla_map = RULE_ATTRS


class Tunnel:
    nla_flags = NLA_F_NESTED
    nla_map = TUNNEL_ATTRS
    stats = Stats


class Msg:
    """The top-level attribute space of every ipudp genetlink message."""

    nla_map = ATTRS
    stats = Stats
    tunnel = Tunnel
    rule = Rule
