"""The ubus object's pure handlers, events and the rpcd ACL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lvn import config, static, ubus_api, uci
from lvn.model import Device, Tunnel, TunnelStats

ROOT = Path(__file__).resolve().parents[2]

DEVS = (Device("lvn1", 5, tunnels=(Tunnel("192.0.2.1", id=0, last_rx_ms=1200,
                                          stats=TunnelStats(rx_packets=4, tx_packets=2)),)),
        Device("lvm", 6, mode="multi", port=50010,
               tunnels=(Tunnel("192.0.2.2", id=1), Tunnel("fd00::3", 50020, id=2))))
CONF = ("config agent 'agent'\n\toption enabled '0'\n"
        "config tunnel 'one'\n\toption ifname 'lvn1'\n\toption remote '192.0.2.1'\n"
        "config tunnel\n\toption ifname 'lvm'\n\toption mode 'multi'\n"
        "\toption port '50010'\n\toption remote '192.0.2.2'\n")


def snap(**kw: object) -> ubus_api.Snapshot:
    conf = config.build(uci.parse(CONF), check_files=False)
    fields: dict[str, object] = dict(confdir="/etc/config", devices=DEVS,
                                     static=ubus_api.static_names(conf))
    fields.update(kw)
    return ubus_api.Snapshot(**fields)  # type: ignore[arg-type]


def test_status() -> None:
    st = ubus_api.status(snap(config_valid=False, config_errors=("x: bad",), last_reload=5.0))
    assert st["config"] == {"path": "/etc/config/lvn", "valid": False, "errors": ["x: bad"]}
    assert (st["devices"], st["tunnels"], st["peers"], st["role"]) == (2, 3, 0, "none")
    assert st["last_reload"] == 5.0
    json.dumps(st)  # blobmsg takes only JSON-like values


def test_tunnels_names_static_sections() -> None:
    out = ubus_api.tunnels(snap())["tunnels"]
    assert [(t["ifname"], t["id"], t["static"]) for t in out] == [
        ("lvn1", 0, "one"), ("lvm", 1, "@tunnel[1]"), ("lvm", 2, None)]
    assert out[0]["stats"]["rx_packets"] == 4 and out[0]["last_rx_ms"] == 1200
    assert out[2]["remote_port"] == 50020 and out[1]["port"] == 50010
    json.dumps(out)


def test_peers_empty_without_agent() -> None:
    assert ubus_api.peers(snap()) == {"peers": []}


def test_tunnel_add_and_del() -> None:
    pkg = uci.parse(CONF)
    new = ubus_api.tunnel_add(pkg, "two", {"ifname": "lvn2", "remote": "fd00::9",
                                           "remote_port": 50009, "address": "10.1.1.1/24",
                                           "enabled": True})
    sec = new.section("two")
    assert sec is not None and sec.get("remote_port") == "50009"
    assert sec.get_list("address") == ["10.1.1.1/24"] and sec.get("enabled") == "1"
    assert pkg.section("two") is None  # the input is not modified
    assert ubus_api.tunnel_del(new, "two") == pkg


@pytest.mark.parametrize("name, options, message", [
    ("bad-name", {"ifname": "x", "remote": "192.0.2.1"}, "invalid tunnel name"),
    ("one", {"ifname": "x", "remote": "192.0.2.1"}, "already exists"),
    ("t", {"ifname": "x", "remote": "192.0.2.1", "color": "red"}, "unknown tunnel option"),
    ("t", {"ifname": "x", "remote": "nowhere"}, "lvn.t.remote: 'nowhere' is not an IPv4"),
    ("t", {"ifname": "x"}, "lvn.t.remote: required option is missing"),
    ("t", {"ifname": "x", "remote": {"a": 1}}, "expected a string or number"),
    ("t", {"ifname": "lvn1", "remote": "192.0.2.7"}, "already has the tunnel of lvn.one"),
])
def test_tunnel_add_refuses(name: str, options: dict[str, object], message: str) -> None:
    with pytest.raises(ubus_api.CallError, match=message):
        ubus_api.tunnel_add(uci.parse(CONF), name, options)


def test_tunnel_del_unknown() -> None:
    with pytest.raises(ubus_api.CallError, match="no tunnel section named 'agent'"):
        ubus_api.tunnel_del(uci.parse(CONF), "agent")


def test_events() -> None:
    acts: list[static.Action] = [
        static.SetTunnel("lvm", 2, "fd00::3", 50020, None, False, 0),
        static.SetTunnel("lvm", 1, "192.0.2.9", 50000, None, True, 0),
        static.DelTunnel("lvm", 3), static.AddRule("lvm", "10.0.0.0/8", 3, "dest"),
        static.DelDevice("old")]
    assert ubus_api.events(acts) == [
        ("lvn.tunnel.add", {"ifname": "lvm", "id": 2, "remote": "fd00::3",
                            "remote_port": 50020}),
        ("lvn.tunnel.update", {"ifname": "lvm", "id": 1, "remote": "192.0.2.9",
                               "remote_port": 50000}),
        ("lvn.tunnel.del", {"ifname": "lvm", "id": 3}),
        ("lvn.tunnel.del", {"ifname": "old"})]


def test_acl_covers_every_method() -> None:
    acl = json.loads((ROOT / "files/usr/share/rpcd/acl.d/lvn.json").read_text())
    group = acl["lvn"]
    assert sorted(group["read"]["ubus"]["lvn"]) == sorted(ubus_api.READ)
    assert sorted(group["write"]["ubus"]["lvn"]) == sorted(ubus_api.WRITE)
    assert set(ubus_api.SIGNATURES) == set(ubus_api.READ) | set(ubus_api.WRITE)
    assert group["read"]["uci"] == ["lvn"] and group["description"]


def test_luci_acl_read_and_write_groups() -> None:
    """luci-app-lvn: the read group reads (its pages), the write group may
    change the configuration and reload; no tunnel_add from the browser."""
    acl = json.loads((ROOT / "feed/luci-app-lvn/root/usr/share/rpcd/acl.d/"
                      "luci-app-lvn.json").read_text())
    read, write = acl["luci-app-lvn"]["read"], acl["luci-app-lvn-write"]["write"]
    assert sorted(read["ubus"]["lvn"]) == sorted(ubus_api.READ) and read["uci"] == ["lvn"]
    assert write["ubus"]["lvn"] == ["reload"] and write["uci"] == ["lvn"]


def test_validate_takes_luci_sections() -> None:
    ok = [{".type": "agent", ".name": "agent", ".anonymous": False, "enabled": "0"},
          {".type": "tunnel", ".name": "cfg0a", ".anonymous": True, "ifname": "lvn1",
           "remote": "192.0.2.1", "address": ["10.9.0.1/30"], ".index": 1}]
    assert ubus_api.validate(ok) == {"valid": True, "errors": []}
    bad = ok + [{".type": "tunnel", ".name": "t2", "ifname": "lvn2", "remote": "x",
                 "enabled": True}]
    assert ubus_api.validate(bad) == {
        "valid": False, "errors": ["lvn.t2.remote: 'x' is not an IPv4 or IPv6 address"]}
    for wrong, message in ((None, "must be a list"), ([{"ifname": "x"}], "section 0: expected"),
                           ([{".type": "tunnel", "mtu": {}}], "option 'mtu': expected")):
        with pytest.raises(ubus_api.CallError, match=message):
            ubus_api.validate(wrong)


def test_ucode_plugin_declares_the_signatures() -> None:
    """lvn.uc declares each method's argument types (rpcd checks them);
    they must be the ones lvn/ubus_api.py SIGNATURES says."""
    import re
    text = (ROOT / "files/usr/share/rpcd/ucode/lvn.uc").read_text()
    kinds = {"'": ubus_api.STRING, "{": ubus_api.TABLE, "[": ubus_api.ARRAY,
             "3": ubus_api.INT32}  # (rpcd: an integer hint other than 8, 16, 64)
    declared = {}
    for name, args in re.findall(r"(\w+): method\('\1', \{(.*?)\}\)", text):
        declared[name] = {arg: kinds[hint[0]] for arg, hint in
                          re.findall(r"(\w+): ('[^']*'|\{\}|\[\]|32)", args)}
    assert declared == ubus_api.SIGNATURES
