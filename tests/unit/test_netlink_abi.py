"""The positional attribute tables (lvn.ipudp_abi, which pyroute2_oracle
wraps) must match uapi/linux/ipudp.h."""

from __future__ import annotations

import re
from pathlib import Path

import pyroute2_oracle as oracle
import pytest

from lvn import ipudp_abi

HEADER = Path(__file__).parents[2] / "feed/kmod-ipudp/src/uapi/linux/ipudp.h"


def enum_members(name: str) -> list[str]:
    text = HEADER.read_text()
    m = re.search(r"enum " + name + r" \{(.*?)\};", text, re.S)
    assert m, f"enum {name} not found in {HEADER}"
    body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
    names = [x.split("=")[0].strip() for x in body.split(",")]
    return [n for n in names if n and not n.startswith("__")]


def enum_values(name: str) -> dict[str, int]:
    text = HEADER.read_text()
    m = re.search(r"enum " + name + r" \{(.*?)\};", text, re.S)
    assert m
    out = {}
    for k, shift in re.findall(r"\b(IPUDP_\w+)\s*=\s*1U << (\d+),", m.group(1)):
        out[k] = 1 << int(shift)
    assert out, f"no flags parsed from enum {name}"
    return out


@pytest.mark.parametrize("enum, nla_class", [
    ("ipudp_attr", oracle.ipudp_msg),
    ("ipudp_tunnel_attr", oracle.ipudp_msg.tunnel),
    ("ipudp_stats_attr", oracle.ipudp_stats),
    ("ipudp_rule_attr", oracle.ipudp_rule),
    ("ipudp_link_attr", oracle.ipudp_link_data),
])
def test_nla_map_positions(enum: str, nla_class: type) -> None:
    assert [n for n, _ in nla_class.nla_map] == enum_members(enum)


def test_commands_and_flags() -> None:
    cmds = enum_members("ipudp_cmd")
    for name in cmds[1:]:
        assert getattr(ipudp_abi, name.removeprefix("IPUDP_")) == cmds.index(name), name
    flags = enum_values("ipudp_sock_flag") | enum_values("ipudp_flag")
    for name, value in flags.items():
        assert getattr(ipudp_abi, name.removeprefix("IPUDP_")) == value, name
    text = HEADER.read_text()
    assert f'#define IPUDP_GENL_NAME\t\t"{ipudp_abi.GENL_NAME}"' in text
    assert f"#define IPUDP_GENL_VERSION\t{ipudp_abi.GENL_VERSION}" in text


def test_mode_and_rule_kind_names_follow_the_enums() -> None:
    from lvn.model import MODES, RULE_KINDS
    assert [f"IPUDP_MODE_{m.upper()}" for m in MODES] == enum_members("ipudp_mode")
    assert [f"IPUDP_RULE_{k.upper()}" for k in RULE_KINDS] == enum_members("ipudp_rule_type")
