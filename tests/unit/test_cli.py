"""CLI argument parsing and output formatting (host, no kernel)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lvn import cli
from lvn.model import Device, DeviceDrops, Event, Rule, Tunnel, TunnelStats
from lvn.netlink import KernelError
from lvn.output import format_devices, human_age, human_bytes

DEV = Device(
    ifname="lvn0", ifindex=4, port=50000, sockets=("ipv4",),
    drops=DeviceDrops(rx_unknown_endpoint=3),
    tunnels=(Tunnel(remote="10.0.0.2", local="10.0.0.1", last_rx_ms=1500, last_tx_ms=None,
                    stats=TunnelStats(rx_packets=5, rx_bytes=2048, tx_packets=7,
                                      tx_bytes=700)),),
)


@dataclass
class Recorder:
    """Records the calls the CLI makes; stands in for lvn.netlink.Ipudp."""

    netns: str | None = None
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    fail: Exception | None = None
    closed: bool = False

    def _rec(self, name: str, *a: Any, **kw: Any) -> None:
        self.calls.append((name, a, kw))
        if self.fail:
            raise self.fail

    def devices(self) -> list[Device]:
        self._rec("devices")
        return [DEV]

    def device(self, ifname: str) -> Device:
        self._rec("device", ifname)
        return DEV

    def add_device(self, ifname: str, *, mtu: int | None = None, mode: str | None = None,
                   port: int | None = None) -> None:
        self._rec("add_device", ifname, mtu=mtu, mode=mode, port=port)

    def del_device(self, ifname: str) -> None:
        self._rec("del_device", ifname)

    def set_device(self, ifname: str, *, port: int | None = None, fd: int | None = None,
                   idle_timeout: int | None = None) -> None:
        if idle_timeout is None:
            self._rec("set_device", ifname, port=port)
        else:
            self._rec("set_device", ifname, idle_timeout=idle_timeout)

    def set_tunnel(self, ifname: str, remote: str, **kw: Any) -> None:
        self._rec("set_tunnel", ifname, remote, **kw)

    def del_tunnel(self, ifname: str, tunnel_id: int | None = None) -> None:
        self._rec("del_tunnel", ifname, tunnel_id)

    def set_mode(self, ifname: str, mode: str) -> None:
        self._rec("set_mode", ifname, mode)

    def rules(self, ifname: str) -> list[Rule]:
        self._rec("rules", ifname)
        return [Rule("10.1.0.0/16", 3), Rule("fd00::/8", 4, "source")]

    def add_rule(self, ifname: str, prefix: str, tunnel_id: int, kind: str = "dest") -> None:
        self._rec("add_rule", ifname, prefix, tunnel_id, kind)

    def del_rule(self, ifname: str, prefix: str, tunnel_id: int | None = None,
                 kind: str = "dest") -> None:
        self._rec("del_rule", ifname, prefix, tunnel_id, kind)

    def route_get(self, ifname: str, address: str, kind: str = "dest") -> int | None:
        self._rec("route_get", ifname, address, kind)
        return 3 if address.startswith("10.1.") else None

    def events(self) -> Iterator[Event]:
        self._rec("events")
        yield Event("tunnel-new", "lvn0", 4, 1, "fd00::2", 50000)
        yield Event("tunnel-active", "lvn0", 4, 1, "fd00::2", 50000)
        yield Event("tunnel-new", "lvn0", 4, 1, "fd00::3", 50000, replaced=True)
        yield Event("tunnel-del", "lvn0", 4, 1, reason="device")

    def close(self) -> None:
        self.closed = True


def run(argv: list[str], rec: Recorder | None = None) -> tuple[int, Recorder]:
    rec = rec or Recorder()

    def factory(netns: str | None) -> Recorder:
        rec.netns = netns
        return rec

    return cli.main(argv, kernel_factory=factory), rec


def test_tunnel_set_parses_all_options() -> None:
    rc, rec = run(["-n", "blue", "tunnel", "set", "lvn0", "--remote", "fd00::0002",
                   "--remote-port", "4000", "--local", "fd00::1", "--replace", "--id", "7",
                   "--keepalive", "25"])
    assert rc == 0 and rec.netns == "blue" and rec.closed
    assert rec.calls == [("set_tunnel", ("lvn0", "fd00::2"),
                          {"remote_port": 4000, "local": "fd00::1", "tunnel_id": 7,
                           "replace": True, "keepalive": 25})]


def test_tunnel_set_defaults() -> None:
    _, rec = run(["tunnel", "set", "lvn0", "--remote", "10.0.0.2"])
    assert rec.calls == [("set_tunnel", ("lvn0", "10.0.0.2"),
                          {"remote_port": 50000, "local": None, "tunnel_id": 0,
                           "replace": False, "keepalive": 0})]


def test_dev_add_with_port_and_mtu() -> None:
    _, rec = run(["dev", "add", "lvn3", "--port", "50001", "--mtu", "1400"])
    assert rec.calls == [("add_device", ("lvn3",), {"mtu": 1400, "mode": None, "port": 50001})]


def test_dev_add_multi_in_one_request() -> None:
    _, rec = run(["dev", "add", "hub0", "--mode", "multi"])
    assert rec.calls == [("add_device", ("hub0",), {"mtu": None, "mode": "multi", "port": None})]


@pytest.mark.parametrize("argv, message", [
    (["tunnel", "set", "lvn0", "--remote", "10.0.0.300"], "not an IPv4 or IPv6 address"),
    (["tunnel", "set", "lvn0", "--remote", "10.0.0.2", "--remote-port", "0"],
     "a port number out of range"),
    (["tunnel", "set", "lvn0", "--remote", "10.0.0.2", "--remote-port", "x"], "not a port number"),
    (["tunnel", "set", "lvn0"], "--remote"),
    (["dev", "add", "a-name-that-is-too-long"], "not a valid interface name"),
    (["dev", "add", "lvn0", "--mtu", "20"], "an MTU out of range 68-65535"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_reason(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_mixed_families_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec = run(["tunnel", "set", "lvn0", "--remote", "10.0.0.2", "--local", "fd00::1"])
    assert rc == 1 and rec.calls == []
    assert "same address family" in capsys.readouterr().err


def test_kernel_error_becomes_message_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    rec = Recorder(fail=KernelError("setting the tunnel of lvn0", 17,
                                    "FIXED device already has a tunnel"))
    rc, _ = run(["tunnel", "set", "lvn0", "--remote", "10.0.0.2"], rec)
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("lvn: setting the tunnel of lvn0: FIXED device already has a tunnel")
    assert "already exists" in err


def test_permission_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(["dev", "del", "lvn0"], Recorder(fail=KernelError("deleting lvn0", 1)))
    assert rc == 1 and "needs root" in capsys.readouterr().err


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run(["-j", "show"])
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["ifname"] == "lvn0"
    assert data[0]["tunnels"][0]["remote"] == "10.0.0.2"
    assert data[0]["tunnels"][0]["stats"]["rx_bytes"] == 2048
    assert data[0]["drops"]["rx_unknown_endpoint"] == 3
    assert data[0]["sockets"] == ["ipv4"]


def test_show_one_device_human(capsys: pytest.CaptureFixture[str]) -> None:
    rc, rec = run(["show", "lvn0"])
    assert rc == 0 and rec.calls == [("device", ("lvn0",), {})]
    assert capsys.readouterr().out == (
        "lvn0: mode fixed, udp port 50000, sockets: ipv4\n"
        "  drops: rx unknown endpoint 3\n"
        "  tunnel 0: remote 10.0.0.2:50000 local 10.0.0.1\n"
        "    rx: 5 packets, 2.0 KiB, last 1 s ago\n"
        "    tx: 7 packets, 700 B, last never\n"
    )


def test_format_ipv6_endpoint_and_no_tunnel() -> None:
    v6 = Device(ifname="lvn1", ifindex=5, tunnels=(Tunnel(remote="fd00::2", remote_port=1),))
    text = format_devices([v6, Device(ifname="lvn2", ifindex=6)])
    assert "remote [fd00::2]:1" in text
    assert "lvn2: mode fixed, udp port 50000, sockets: none yet\n  no tunnel" in text
    assert format_devices([]) == "no ipudp devices"


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"),
                                     (5 * 1024**3, "5.0 GiB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


@pytest.mark.parametrize("ms, text", [(None, "never"), (999, "999 ms ago"),
                                      (119_999, "119 s ago"), (600_000, "10 min ago")])
def test_human_age(ms: int | None, text: str) -> None:
    assert human_age(ms) == text


def test_rule_commands() -> None:
    _, rec = run(["rule", "add", "lvn1", "10.1.0.0/16", "--tunnel", "3"])
    assert rec.calls == [("add_rule", ("lvn1", "10.1.0.0/16", 3, "dest"), {})]
    _, rec = run(["rule", "del", "lvn1", "fd00::/8", "--source"])
    assert rec.calls == [("del_rule", ("lvn1", "fd00::/8", None, "source"), {})]


@pytest.mark.parametrize("argv, message", [
    (["rule", "add", "lvn1", "10.1.0.1/16", "--tunnel", "3"], "has host bits set"),
    (["rule", "add", "lvn1", "10.1.0.0/16"], "--tunnel"),
    (["rule", "add", "lvn1", "10.1.0.0/33", "--tunnel", "1"], "not an IP prefix"),
    (["dev", "set", "lvn1", "--mode", "star"], "invalid choice"),
])
def test_rule_argument_errors(argv: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(argv)
    assert message in capsys.readouterr().err


def test_rule_show_and_route_get(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["rule", "show", "lvn1"])[0] == 0
    assert capsys.readouterr().out == "10.1.0.0/16 via tunnel 3\nfd00::/8 from tunnel 4\n"
    assert run(["route", "get", "lvn1", "10.1.2.3"])[0] == 0
    assert capsys.readouterr().out == "10.1.2.3 via tunnel 3\n"
    assert run(["route", "get", "lvn1", "10.2.0.1"])[0] == 1
    assert "no rule on lvn1 matches 10.2.0.1" in capsys.readouterr().err
    assert run(["-j", "route", "get", "lvn1", "10.2.0.1"])[0] == 0
    assert json.loads(capsys.readouterr().out) == {"address": "10.2.0.1", "tunnel": None}


def test_dev_set_mode_and_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    _, rec = run(["dev", "set", "lvn1", "--mode", "multi"])
    assert rec.calls == [("set_mode", ("lvn1", "multi"), {})]
    rc, rec = run(["dev", "set", "lvn1"])
    assert rc == 1 and rec.calls == [] and "nothing to change" in capsys.readouterr().err


def test_config_show_prints_uci_show_lines(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                           ) -> None:
    (tmp_path / "lvn").write_text("config agent 'agent'\n\toption enabled '1'\n"
                                  "config tunnel\n\tlist route '10.0.0.0/8'\n"
                                  "\tlist route 'fd00::/8'\n")
    rc, rec = run(["config", "show", "-c", str(tmp_path)])
    assert rc == 0 and rec.calls == []  # no kernel needed
    assert capsys.readouterr().out.splitlines() == [
        "lvn.agent=agent", "lvn.agent.enabled='1'", "lvn.@tunnel[0]=tunnel",
        "lvn.@tunnel[0].route='10.0.0.0/8' 'fd00::/8'"]


def test_config_validate_exit_codes(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lvn").write_text("config agent 'agent'\n\toption enabled 'maybe'\n")
    assert run(["config", "validate", "-c", str(tmp_path)])[0] == 1
    assert "lvn.agent.enabled: expected a boolean" in capsys.readouterr().err
    (tmp_path / "lvn").write_text("config agent 'agent'\n\toption enabled '1'\n")
    assert run(["config", "validate", "-c", str(tmp_path)])[0] == 0
    assert "valid" in capsys.readouterr().out
    (tmp_path / "lvn").write_text("config agent 'agent\n")
    assert run(["config", "validate", "-c", str(tmp_path)])[0] == 1
    assert "Parse error (EOF with unterminated ') at line 1" in capsys.readouterr().err


def test_apply_with_invalid_config_touches_nothing(tmp_path: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lvn").write_text("config tunnel 't'\n\toption ifname 'lvn1'\n"
                                  "\toption remote 'nowhere'\n")
    rc, rec = run(["apply", "-c", str(tmp_path), "--state", str(tmp_path / "s.json")])
    assert rc == 1 and rec.calls == []
    assert "lvn.t.remote: 'nowhere' is not an IPv4 or IPv6 address" in capsys.readouterr().err


def test_monitor_prints_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["monitor"])[0] == 0
    assert capsys.readouterr().out.splitlines() == [
        "tunnel-new lvn0 id 1 remote [fd00::2]:50000",
        "tunnel-active lvn0 id 1 remote [fd00::2]:50000",
        "tunnel-new lvn0 id 1 remote [fd00::3]:50000 (replaced)",
        "tunnel-del lvn0 id 1 (device)"]
    assert run(["-j", "monitor", "--count", "1"])[0] == 0
    assert json.loads(capsys.readouterr().out) == {
        "kind": "tunnel-new", "ifname": "lvn0", "ifindex": 4, "tunnel_id": 1,
        "remote": "fd00::2", "remote_port": 50000, "reason": None, "replaced": False}


def test_dev_set_idle_timeout() -> None:
    rc, rec = run(["dev", "set", "lvn0", "--idle-timeout", "5"])
    assert rc == 0 and rec.calls == [("set_device", ("lvn0",), {"idle_timeout": 5})]
    assert run(["dev", "set", "lvn0"])[0] == 1


def test_status_merges_agent_report_and_kernel_counters(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lvn").write_text(
        f"config agent 'agent'\n\toption state_dir '{tmp_path}'\nconfig client 'client'\n"
        "\toption server 'vpn.example.org'\n\toption ca '/c'\n\toption cert '/c'\n"
        "\toption key '/c'\n")
    assert run(["status", "-c", str(tmp_path)])[0] == 1
    assert "the agent is not running" in capsys.readouterr().err
    (tmp_path / "status.json").write_text(json.dumps({"role": "client", "peers": [
        {"name": "vpn.example.org", "state": "up", "addresses": ["10.77.0.2/24"],
         "endpoint": ["192.0.2.1", 50000], "tunnel_id": 0,
         "last_heard": time.time() - 3}]}))
    assert run(["-j", "status", "-c", str(tmp_path)])[0] == 0
    (peer,) = json.loads(capsys.readouterr().out)["peers"]
    assert (peer["rx_packets"], peer["tx_bytes"]) == (5, 700)
    assert run(["status", "-c", str(tmp_path)])[0] == 0
    out = capsys.readouterr().out
    assert "vpn.example.org: up, 10.77.0.2/24, endpoint 192.0.2.1:50000, heard 3." in out


def server_status(tmp_path: Any, capsys: pytest.CaptureFixture[str], **status: Any) -> str:
    """``lvn status`` of a server whose status.json holds ``status``: its output."""
    (tmp_path / "lvn").write_text(
        f"config agent 'agent'\n\toption state_dir '{tmp_path}'\nconfig server 'server'\n"
        "\toption ca '/c'\n\toption cert '/c'\n\toption key '/c'\n")
    (tmp_path / "status.json").write_text(json.dumps({"role": "server", "peers": [], **status}))
    assert run(["status", "-c", str(tmp_path)])[0] == 0
    return capsys.readouterr().out


def test_status_lists_the_servers_in_etcd_with_their_load(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = server_status(tmp_path, capsys, servers={
        "gw2": {"clients": 0, "capacity": 500, "draining": True},
        "gw1": {"clients": 12, "capacity": 1000, "draining": False},
        "gw0": {"clients": 3}})  # (a server of an older version)
    assert ("servers: gw0 (3 client(s)), gw1 (12 of 1000 client(s)), "
            "gw2 (0 of 500 client(s), draining)") in out


def test_status_lists_the_mesh_tunnels_to_the_other_servers(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = server_status(tmp_path, capsys, mesh={
        "gw2": {"address": "fd00::2", "port": 4500, "tunnel": 7, "routes": 4},
        "gw1": {"address": "192.0.2.1", "port": 4500, "tunnel": 3, "routes": 0}})
    assert ("mesh: gw1 at 192.0.2.1:4500 (tunnel 3, 0 route(s)), "
            "gw2 at [fd00::2]:4500 (tunnel 7, 4 route(s))") in out
