"""Schema validation of /etc/config/lvn, loading errors, docs coverage."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from lvn import LvnError, config, schema, uci

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "files" / "etc" / "config"


# the same checks on the node: lvn.schema under MicroPython
NODE_CHECK = ("import sys, json\nfrom lvn import schema, uci\n"
              "_, found = schema.check(uci.parse(sys.stdin.read()), {files})\n"
              "print(json.dumps([str(p) for p in found]))")


MICROPYTHON: list[str] = []


@pytest.fixture(autouse=True)
def _node_interpreter(micropython: str) -> None:
    MICROPYTHON[:] = [micropython]


def problems(text: str, check_files: bool = True) -> list[str]:
    """The problems CPython's lvn.config finds, which must be exactly those
    that the MicroPython node finds (same schema, same messages)."""
    _, found = config.validate(uci.parse(text), check_files)
    out = [str(p) for p in found]
    res = subprocess.run([MICROPYTHON[0], "-c", NODE_CHECK.format(files=check_files)],
                         input=text, capture_output=True, text=True, timeout=60,
                         env={"MICROPYPATH": f".frozen:{ROOT}"})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == out, "MicroPython's lvn.schema differs"
    return out


def test_default_config_validates_with_file_checks() -> None:
    conf = config.build(config.load(str(DEFAULT)))
    assert conf.agent.enabled is False and conf.agent.role == "none"
    assert conf.server is not None and conf.server.pool4 == "10.77.0.0/16"
    assert [t.enabled for t in conf.tunnels] == [False]


TUNNEL = "config tunnel 't'\n\toption ifname 'lvn1'\n\toption remote '192.0.2.1'\n"


@pytest.mark.parametrize("option, value, where, fragment", [
    ("enabled", "maybe", "lvn.t.enabled", "expected a boolean"),
    ("port", "0", "lvn.t.port", "out of range 1-65535"),
    ("port", "65536", "lvn.t.port", "out of range 1-65535"),
    ("port", "50k", "lvn.t.port", "expected an integer"),
    ("remote_port", "-1", "lvn.t.remote_port", "expected an integer"),
    ("mtu", "100", "lvn.t.mtu", "out of range 576-9000"),
    ("mode", "star", "lvn.t.mode", "expected one of fixed, multi"),
    ("local", "10.0.0.300", "lvn.t.local", "not an IPv4 or IPv6 address"),
    ("ifname", "a-very-long-interface", "lvn.t.ifname", "not a valid interface name"),
    ("ifname", "lvn/1", "lvn.t.ifname", "not a valid interface name"),
    ("id", "0", "lvn.t.id", "out of range"),
    ("colour", "blue", "lvn.t.colour", "unknown option"),
])
def test_option_type_errors(option: str, value: str, where: str, fragment: str) -> None:
    found = problems(TUNNEL + f"\toption {option} '{value}'\n")
    assert any(p.startswith(where + ":") and fragment in p for p in found), found


@pytest.mark.parametrize("item, fragment", [
    ("10.0.0.1/8", "not a valid prefix"),          # host bits set
    ("10.0.0.0/33", "not a valid prefix"),
    ("fd00::/129", "not a valid prefix"),
])
def test_list_items_are_checked(item: str, fragment: str) -> None:
    found = problems(TUNNEL + f"\toption mode 'multi'\n\tlist route '{item}'\n")
    assert any(p.startswith("lvn.t.route:") and fragment in p for p in found), found


def test_address_needs_prefix_length() -> None:
    found = problems(TUNNEL + "\tlist address '10.9.0.1'\n")
    assert any("needs a prefix length" in p for p in found), found


def test_list_where_option_expected() -> None:
    found = problems(TUNNEL + "\tlist remote '192.0.2.2'\n")
    assert any("lvn.t.remote: must be a single 'option'" in p for p in found), found


def test_required_options_per_role(tmp_path: Path) -> None:
    text = ("config agent 'agent'\n\toption role 'client'\n"
            "config client 'client'\n\toption ca '/nonexistent/ca.pem'\n")
    found = problems(text)
    assert "lvn.client.server: required option is missing" in found
    assert "lvn.client.cert: required option is missing" in found
    assert "lvn.client.ca: file /nonexistent/ca.pem does not exist" in found
    assert problems("config agent 'agent'\n\toption role 'server'\n") == [
        "lvn.agent.role: role 'server' needs a 'config server' section"]
    for f in ("ca", "cert", "key"):
        (tmp_path / f).write_text("x")
    server = "".join(f"\toption {f} '{tmp_path / f}'\n" for f in ("ca", "cert", "key"))
    found = problems("config agent 'agent'\n\toption role 'server'\nconfig server 's'\n"
                     + server)
    assert found == ["lvn.s.pool4: a server needs an address pool (pool4 and/or pool6)"]
    assert problems("config agent 'agent'\n\toption role 'server'\nconfig server 's'\n"
                    + server + "\toption pool6 'fd77::/64'\n") == []


def a_server(tmp_path: Path) -> str:
    """A valid server configuration (section 's'), its files in ``tmp_path``."""
    for f in ("ca", "cert", "key"):
        (tmp_path / f).write_text("x")
    return ("config agent 'agent'\n\toption role 'server'\nconfig server 's'\n"
            + "".join(f"\toption {f} '{tmp_path / f}'\n" for f in ("ca", "cert", "key"))
            + "\toption pool4 '10.77.0.0/16'\n")


def test_etcd_lease_store(tmp_path: Path) -> None:
    """lease_store 'etcd' needs its endpoints; endpoints and prefix are checked."""
    server = a_server(tmp_path) + "\toption lease_store 'etcd'\n"
    assert problems(server) == ["lvn.s.etcd: lease_store 'etcd' needs the cluster's endpoints "
                                "(list etcd 'http://host:port')"]
    ok = "\tlist etcd 'http://10.0.0.5:2379'\n\tlist etcd 'http://etcd-2.example.org:2379'\n"
    assert problems(server + ok + "\tlist etcd 'http://[fd00::5]:2379'\n") == []
    conf = config.build(uci.parse(server + ok))
    assert conf.server is not None and conf.server.lease_store == "etcd"
    assert conf.server.etcd == ("http://10.0.0.5:2379", "http://etcd-2.example.org:2379")
    assert conf.server.etcd_prefix == "/lvn"
    for bad in ("https://10.0.0.5:2379", "http://10.0.0.5", "http://10.0.0.5:0", "10.0.0.5:2379",
                "http://bad_host!:2379"):
        assert problems(server + ok + f"\tlist etcd '{bad}'\n") == [
            f"lvn.s.etcd: '{bad}' is not an etcd endpoint (http://host:port)"]
    for bad in ("lvn", "/", "/a b", "/" + "x" * 64):
        assert problems(server + ok + f"\toption etcd_prefix '{bad}'\n") == [
            f"lvn.s.etcd_prefix: '{bad}' is not a key prefix ('/', then up to 63 characters)"]


def test_mesh_address(tmp_path: Path) -> None:
    """A server's mesh end is an address, and needs the directory in etcd."""
    server = a_server(tmp_path) + "\toption mesh_address '192.0.2.1'\n"
    assert problems(server) == ["lvn.s.mesh_address: a mesh between servers needs their "
                                "directory in etcd (lease_store 'etcd')"]
    etcd = "\toption lease_store 'etcd'\n\tlist etcd 'http://10.0.0.5:2379'\n"
    assert problems(server + etcd) == []
    conf = config.build(uci.parse(server + etcd))
    assert conf.server is not None and conf.server.mesh_address == "192.0.2.1"
    assert problems(server.replace("192.0.2.1", "gw1.example.org") + etcd)[0].startswith(
        "lvn.s.mesh_address: ")


def test_files_checked_only_for_the_active_role() -> None:
    text = ("config client 'client'\n\toption server 'vpn.example.org'\n"
            "\toption ca '/x/ca'\n\toption cert '/x/c'\n\toption key '/x/k'\n")
    assert problems(text) == []
    assert problems("config agent 'a'\n\toption role 'client'\n" + text) != []
    assert problems("config agent 'a'\n\toption role 'client'\n" + text, False) == []


def test_host_names() -> None:
    base = "config client 'client'\n\toption ca '/c'\n\toption cert '/c'\n\toption key '/c'\n"
    assert problems(base + "\toption server 'vpn-1.example.org'\n") == []
    assert problems(base + "\toption server 'fd00::1'\n") == []
    found = problems(base + "\toption server 'bad_host!'\n")
    assert found == ["lvn.client.server: 'bad_host!' is neither an IP address nor a host name"]


def test_unknown_and_repeated_sections() -> None:
    found = problems("config agent 'a'\nconfig agent 'b'\nconfig tunel\n")
    assert "lvn.b: only one 'agent' section is allowed" in found
    assert any(p.startswith("lvn.@tunel[0]: unknown section type 'tunel'") for p in found)


def test_tunnel_groups_must_agree() -> None:
    multi = ("config tunnel 'a'\n\toption ifname 'lvn1'\n\toption mode 'multi'\n"
             "\toption remote '192.0.2.1'\n\toption id '1'\n"
             "config tunnel 'b'\n\toption ifname 'lvn1'\n\toption mode 'multi'\n"
             "\toption remote '192.0.2.2'\n\toption id '1'\n\toption port '50002'\n")
    found = problems(multi)
    assert "lvn.b.port: lvn1 is also configured by lvn.a with port 50000, not 50002" in found
    assert "lvn.b.id: tunnel id 1 of lvn1 is also used by lvn.a" in found
    fixed = TUNNEL + TUNNEL.replace("'t'", "'u'")
    assert problems(fixed) == ["lvn.u: lvn1 is in fixed mode and already has the tunnel of lvn.t"]
    # a disabled section does not count
    assert problems(fixed + "\toption enabled '0'\n") == []


def test_load_errors_name_file_and_position(tmp_path: Path) -> None:
    (tmp_path / "lvn").write_text("config agent 'agent'\n\toption enabled '1\n")
    with pytest.raises(LvnError, match=r"/lvn: Parse error \(EOF with unterminated '\) "
                                       r"at line 2, byte 19"):
        config.load(str(tmp_path))
    with pytest.raises(LvnError, match="cannot read .*/missing/lvn: No such file"):
        config.load(str(tmp_path / "missing"))
    (tmp_path / "lvn").write_bytes(b"config agent '\xff'\n")
    with pytest.raises(LvnError, match="not UTF-8"):
        config.load(str(tmp_path))


def test_build_raises_with_every_problem() -> None:
    with pytest.raises(config.ConfigError) as e:
        config.build(uci.parse(TUNNEL + "\toption port 'x'\n\toption mtu '1'\n"))
    assert len(e.value.problems) == 2
    assert "lvn.t.port" in str(e.value) and "lvn.t.mtu" in str(e.value)


def test_docs_describe_every_option() -> None:
    """docs/config.md has a table row `| option | ...` for each schema option."""
    doc = (ROOT / "docs" / "config.md").read_text()
    for section, options in schema.SCHEMA.items():
        part = doc.split(f"## config {section}", 1)
        assert len(part) == 2, f"docs/config.md lacks '## config {section}'"
        body = part[1].split("\n## ", 1)[0]
        documented = set(re.findall(r"^\| `(\w+)`", body, re.M))
        assert documented == set(options), (section, documented ^ set(options))
