"""The fast batch encoder writes exactly the bytes pyroute2 writes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lvn.model import Tunnel
from lvn.netlink import _genl_request, _prefix_attrs, _tunnel_attrs, ipudp_msg


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
