"""Static tunnels: desired state from config and the diff against the kernel."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lvn import LvnError, config, schema, static, uci
from lvn.model import Device, Rule, Tunnel


def conf(text: str) -> tuple[schema.StaticTunnel, ...]:
    """The static tunnels of ``text``."""
    return config.build(uci.parse(text), check_files=False).tunnels


FIXED = ("config tunnel 'a'\n\toption ifname 'lvn1'\n\toption remote '192.0.2.1'\n"
         "\tlist address '10.9.0.1/30'\n\tlist allowed_source '10.9.0.0/30'\n")
MULTI = ("config tunnel 'p1'\n\toption ifname 'lvm'\n\toption mode 'multi'\n"
         "\toption port '50010'\n\toption remote '192.0.2.1'\n\tlist route '10.1.0.0/16'\n"
         "config tunnel 'p2'\n\toption ifname 'lvm'\n\toption mode 'multi'\n"
         "\toption port '50010'\n\toption remote 'fd00::2'\n\toption remote_port '50020'\n"
         "\tlist route '10.1.2.0/24'\n\tlist route 'fd01::/64'\n")


def actual_of(spec: static.DeviceSpec, **over: object) -> static.Actual:
    """The kernel state that exactly matches ``spec``."""
    dev = Device(ifname=spec.ifname, ifindex=7, mode=spec.mode, port=spec.port,
                 tunnels=tuple(Tunnel(remote=t.remote, remote_port=t.remote_port,
                                      local=t.local, id=tid)
                               for tid, t in spec.tunnels.items()))
    rules = tuple(Rule(p, tid, kind) for p, tid, kind in spec.rules)
    fields: dict[str, object] = dict(device=dev, rules=rules, mtu=spec.mtu or 1472, up=True,
                                     addresses=spec.addresses)
    fields.update(over)
    return static.Actual(**fields)  # type: ignore[arg-type]


def ops(acts: list[static.Action]) -> list[str]:
    return [str(a) for a in acts]


def test_desired_ids_and_rules() -> None:
    specs = static.desired(conf(FIXED + MULTI))
    assert set(specs) == {"lvn1", "lvm"}
    assert list(specs["lvn1"].tunnels) == [0]
    assert specs["lvn1"].rules == {("10.9.0.0/30", 0, "source")}
    assert specs["lvm"].tunnels[2] == static.TunnelSpec("fd00::2", 50020, None, 0)
    assert ("fd01::/64", 2, "dest") in specs["lvm"].rules


def test_plan_from_nothing() -> None:
    specs = static.desired(conf(MULTI))
    assert ops(static.plan(specs, {}, set())) == [
        "add device lvm None multi 50010",
        "set tunnel lvm 1 192.0.2.1 50000 None False 0",
        "set tunnel lvm 2 fd00::2 50020 None False 0",
        "add rule lvm 10.1.0.0/16 1 dest", "add rule lvm 10.1.2.0/24 2 dest",
        "add rule lvm fd01::/64 2 dest", "set up lvm"]


def test_plan_is_empty_when_kernel_matches() -> None:
    specs = static.desired(conf(FIXED + MULTI))
    actual = {n: actual_of(s) for n, s in specs.items()}
    assert static.plan(specs, actual, set(specs)) == []


def test_plan_changes_only_what_differs() -> None:
    old = static.desired(conf(MULTI))
    new = static.desired(conf(MULTI.replace("192.0.2.1", "192.0.2.9")
                              .replace("\tlist route 'fd01::/64'\n", "")
                              + "\tlist address '10.1.255.1/16'\n"))
    actual = {"lvm": actual_of(old["lvm"])}
    assert ops(static.plan(new, actual, {"lvm"})) == [
        "del rule lvm fd01::/64 2 dest",
        "set tunnel lvm 1 192.0.2.9 50000 None True 0",
        "add address lvm 10.1.255.1/16"]


def test_removed_tunnel_and_its_rules() -> None:
    old = static.desired(conf(MULTI))
    new = static.desired(conf(MULTI.split("config tunnel 'p2'")[0]))
    assert ops(static.plan(new, {"lvm": actual_of(old["lvm"])}, set())) == ["del tunnel lvm 2"]


def test_only_managed_devices_are_deleted() -> None:
    old = static.desired(conf(FIXED))
    actual = {"lvn1": actual_of(old["lvn1"])}
    assert ops(static.plan({}, actual, {"lvn1"})) == ["del device lvn1"]
    assert static.plan({}, actual, set()) == []


def test_mode_change_recreates_and_mtu_and_link() -> None:
    specs = static.desired(conf(MULTI))
    fixed_dev = actual_of(specs["lvm"])
    wrong_mode = static.Actual(device=Device("lvm", 7, mode="fixed", port=50010),
                               rules=(), mtu=1472, up=True, addresses=frozenset())
    acts = ops(static.plan(specs, {"lvm": wrong_mode}, set()))
    assert acts[:2] == ["del device lvm", "add device lvm None multi 50010"]
    down = actual_of(specs["lvm"], up=False)
    assert ops(static.plan(specs, {"lvm": down}, set())) == ["set up lvm"]
    with_mtu = static.desired(conf(MULTI.replace("\toption port", "\toption mtu '1280'\n"
                                                 "\toption port")))
    assert ops(static.plan(with_mtu, {"lvm": fixed_dev}, set())) == ["set mtu lvm 1280"]


def test_state_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "static.json")
    assert static.load_managed(path) == set()
    static.save_managed(path, {"b", "a"})
    assert static.load_managed(path) == {"a", "b"}
    Path(path).write_text("[1]")
    with pytest.raises(LvnError, match="not a static tunnel state file"):
        static.load_managed(path)
    Path(path).write_text("{")
    with pytest.raises(LvnError, match="cannot read the static tunnel state"):
        static.load_managed(path)


NODE_PLAN = """
import json, sys
from lvn import schema, static, uci
typed, problems = schema.check(uci.parse(sys.stdin.read()), False)
assert not problems, problems
specs = static.desired(schema.tunnels(typed))
print(json.dumps([str(a) for a in static.plan(specs, {}, set())]))
static.save_managed(sys.argv[1], {"lvm", "lvn1"})
print(json.dumps(sorted(static.load_managed(sys.argv[1]))))
"""


def test_node_plans_the_same(micropython: str, tmp_path: Path) -> None:
    """The node's `lvn-node apply` (lvn.static under MicroPython) plans what
    `lvn apply` plans, and keeps the same state file."""
    root = Path(__file__).resolve().parents[2]
    state = tmp_path / "run" / "static.json"
    res = subprocess.run([micropython, "-c", NODE_PLAN, str(state)], input=FIXED + MULTI,
                         capture_output=True, text=True, timeout=60,
                         env={"MICROPYPATH": f".frozen:{root}"})
    assert res.returncode == 0, res.stderr
    plan, managed = (json.loads(line) for line in res.stdout.splitlines())
    assert plan == ops(static.plan(static.desired(conf(FIXED + MULTI)), {}, set()))
    assert len(plan) > 10 and managed == ["lvm", "lvn1"]
    assert static.load_managed(str(state)) == {"lvm", "lvn1"}


LEASE_CASES = [  # have (as the kernel lists them), want -> (delete, add)
    (["10.8.0.2/24", "fe80::1/64"], ["10.8.0.2/24", "fd00::2/64"], ([], ["fd00::2/64"])),
    (["10.8.0.9/24", "169.254.3.4/16", "FE80::2/64"], ["10.8.0.2/24"],
     (["10.8.0.9/24"], ["10.8.0.2/24"])),
    (["fec0::1/64", "fe8::/16"], [], (["fec0::1/64", "fe8::/16"], [])),  # not link-local
    ([], [], ([], [])),
]


@pytest.mark.parametrize(("have", "want", "changes"), LEASE_CASES)
def test_lease_changes_keep_link_local(have: list[str], want: list[str],
                                       changes: tuple[list[str], list[str]]) -> None:
    assert static.lease_changes(have, want) == changes


def test_lease_changes_under_micropython(micropython: str) -> None:
    """The node (MicroPython) and the CPython client decide alike."""
    root = Path(__file__).resolve().parents[2]
    code = ("import json, sys\nfrom lvn import static\n"
            "for have, want, _ in json.loads(sys.stdin.read()):\n"
            "    print(json.dumps(static.lease_changes(have, want)))\n")
    res = subprocess.run([micropython, "-c", code], input=json.dumps(LEASE_CASES),
                         capture_output=True, text=True, timeout=60,
                         env={"MICROPYPATH": f".frozen:{root}"})
    assert res.returncode == 0, res.stderr
    assert [json.loads(line) for line in res.stdout.splitlines()] == \
        [[list(d), list(a)] for _, _, (d, a) in LEASE_CASES]
