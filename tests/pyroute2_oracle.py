"""pyroute2's view of the ipudp netlink ABI, for the tests only: its own
encoder and decoder are the byte-for-byte oracle for the project's codec
(lvn.nlcodec), which lvn.netlink and the node use.  Built from the same
attribute tables (lvn.ipudp_abi), so a table that is wrong shows up in
test_netlink_abi.py against uapi/linux/ipudp.h."""

from __future__ import annotations

from pyroute2.netlink import genlmsg, nla

from lvn import ipudp_abi as abi


class ipudp_stats(nla):  # noqa: N801 - pyroute2 naming convention
    prefix = "IPUDP_STATS_A_"
    nla_flags = 0x8000  # NLA_F_NESTED
    nla_map = abi.STATS_ATTRS


class ipudp_rule(nla):  # noqa: N801
    prefix = "IPUDP_RULE_A_"
    nla_flags = 0x8000
    nla_map = abi.RULE_ATTRS


class ipudp_link_data(nla):  # noqa: N801
    """IFLA_INFO_DATA of link kind "ipudp" (enum ipudp_link_attr)."""

    prefix = "IFLA_"
    nla_map = abi.LINK_ATTRS


class ipudp_msg(genlmsg):  # noqa: N801
    prefix = "IPUDP_A_"
    nla_map = abi.ATTRS

    stats = ipudp_stats
    rule = ipudp_rule

    class tunnel(nla):  # noqa: N801
        prefix = "IPUDP_TUNNEL_A_"
        nla_flags = 0x8000
        nla_map = abi.TUNNEL_ATTRS

        stats = ipudp_stats
