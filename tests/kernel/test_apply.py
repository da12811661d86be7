"""`lvn apply`: static tunnels from UCI, applied by diff to real devices."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import upy

from lvn import cli
from lvn.netlink import Ipudp

from .netns import Netns, scaled, veth

B_SIDE = """
config tunnel 'to_a'
	option ifname 'lvs'
	option port '50001'
	option local '10.99.0.2'
	option remote '10.99.0.1'
	option remote_port '50001'
	list address '10.50.0.2/24'
"""

A_SIDE = """
config tunnel 'to_b'
	option ifname 'lvm'
	option mode 'multi'
	option port '50001'
	option remote '10.99.0.2'
	option remote_port '50001'
	list route '10.50.0.2/32'
	list address '10.50.0.1/24'

config tunnel 'to_c'
	option ifname 'lvm'
	option mode 'multi'
	option port '50001'
	option remote 'fd99::3'
	list route '10.60.0.0/16'
	list route 'fd60::/48'
"""


def lvn(ns: Netns, *args: str, subprocess_: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the CLI; in-process unless asked (Python start-up is slow under TCG)."""
    argv = ["-n", ns.name, *args]
    if subprocess_:
        return subprocess.run([sys.executable, "-m", "lvn", *argv],
                              capture_output=True, text=True, timeout=scaled(300))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = cli.main(argv)
    return subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())


MICROPYTHON = str(upy.node())
ROOT = Path(__file__).resolve().parents[2]


def apply(ns: Netns, conf: Path, text: str, subprocess_: bool = False,
          shell: str = "cpython") -> subprocess.CompletedProcess[str]:
    """``lvn apply`` (CPython, lvn-server) or ``lvn-node apply`` (MicroPython,
    a node with the lvn package alone) of ``text``."""
    conf.mkdir(exist_ok=True)
    (conf / "lvn").write_text(text)
    if shell == "micropython":
        return subprocess.run(["ip", "netns", "exec", ns.name, MICROPYTHON, "-m", "lvn.node",
                               "apply", "--state", str(conf / "state.json"), str(conf / "lvn")],
                              capture_output=True, text=True, timeout=120,
                              env={"MICROPYPATH": f".frozen:{ROOT}"})
    return lvn(ns, "apply", "-c", str(conf), "--state", str(conf / "state.json"),
               subprocess_=subprocess_)


def snapshot(ns: Netns) -> tuple[object, ...]:
    with Ipudp(netns=ns.name) as k:
        devs = k.devices()
        return (tuple((d.ifname, d.ifindex, d.mode, d.port,
                       tuple((t.id, t.remote, t.remote_port) for t in d.tunnels))
                      for d in devs),
                tuple(sorted(r for d in devs for r in k.rules(d.ifname))),
                tuple(sorted(a for d in devs for a in k.addresses(d.ifname))))


@pytest.mark.parametrize("shell", ["cpython", "micropython"])
def test_apply_diff_idempotence_and_bad_config(netns: type[Netns], tmp_path: Path,
                                               shell: str) -> None:
    """The same file, the same diff, the same refusals from both shells."""
    a, b = netns(), netns()
    veth(a, b)
    a.ip("addr", "add", "10.99.0.1/24", "dev", "ul0")
    b.ip("addr", "add", "10.99.0.2/24", "dev", "ul0")
    a.ip("link", "add", "byhand", "type", "ipudp")  # not configured: never touched

    res = apply(b, tmp_path / "b", B_SIDE, subprocess_=True)  # the real entry point
    assert res.returncode == 0, res.stderr
    res = apply(a, tmp_path / "a", A_SIDE, shell=shell)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "add device lvm None multi 50001",
        "set tunnel lvm 1 10.99.0.2 50001 None False 0",
        "set tunnel lvm 2 fd99::3 50000 None False 0",
        "add rule lvm 10.50.0.2/32 1 dest", "add rule lvm 10.60.0.0/16 2 dest",
        "add rule lvm fd60::/48 2 dest", "add address lvm 10.50.0.1/24", "set up lvm"]
    a.run("ping", "-c", "3", "-i", "0.2", "-W", "3", "10.50.0.2")

    # a second apply changes nothing
    before = snapshot(a)
    res = apply(a, tmp_path / "a", A_SIDE, shell=shell)
    assert (res.returncode, res.stdout) == (0, "nothing to change\n"), res.stderr
    assert snapshot(a) == before

    # changing one tunnel leaves the other (and its counters) alone
    with Ipudp(netns=a.name) as k:
        rx_before = {t.id: t.stats.rx_packets for t in k.tunnels("lvm")}
    assert rx_before[1] >= 3
    res = apply(a, tmp_path / "a", A_SIDE.replace("fd99::3", "fd99::4"), shell=shell)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["set tunnel lvm 2 fd99::4 50000 None True 0"]
    with Ipudp(netns=a.name) as k:
        after = {t.id: t for t in k.tunnels("lvm")}
        assert after[1].stats.rx_packets >= rx_before[1]
        assert after[2].remote == "fd99::4"
        assert k.route_get("lvm", "fd60::1") == 2
    a.run("ping", "-c", "2", "-i", "0.2", "-W", "3", "10.50.0.2")

    # an invalid file is refused and nothing changes
    before = snapshot(a)
    res = apply(a, tmp_path / "a", A_SIDE.replace("'10.60.0.0/16'", "'10.60.0.1/16'"),
                shell=shell)
    assert res.returncode == 1
    assert "lvn.to_c.route: '10.60.0.1/16' is not a valid prefix" in res.stderr
    res = apply(a, tmp_path / "a", A_SIDE + "config tunnel\n\toption remote 'x\n", shell=shell)
    assert res.returncode == 1 and "Parse error (EOF with unterminated ')" in res.stderr
    assert snapshot(a) == before
    a.run("ping", "-c", "2", "-i", "0.2", "-W", "3", "10.50.0.2")

    # dropping a tunnel removes it and its rules; dropping all removes the device
    res = apply(a, tmp_path / "a", A_SIDE.split("config tunnel 'to_c'")[0], shell=shell)
    assert res.stdout.splitlines() == ["del tunnel lvm 2"], res.stderr
    with Ipudp(netns=a.name) as k:
        assert {r.prefix for r in k.rules("lvm")} == {"10.50.0.2/32"}
    res = apply(a, tmp_path / "a", "", shell=shell)
    assert res.stdout.splitlines() == ["del device lvm"], res.stderr
    with Ipudp(netns=a.name) as k:
        assert [d.ifname for d in k.devices()] == ["byhand"]
