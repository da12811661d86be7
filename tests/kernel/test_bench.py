"""`make bench` cannot rot: a smoke run (ipudp against raw veth and ipip,
forwarded too) in every `make test`, beside the other tests; the per-packet
profile and the quick mode of every scenario in `make test-long`, alone
(the tracer rewrites every kernel function, which under TCG can race the
other vCPU).  Each result must be well-formed and turn into a report.  No
timing is asserted: figures from a loaded test VM mean nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_report  # noqa: E402

DDC = Path("/sys/kernel/debug/dynamic_debug/control")


def debug_prints(on: bool) -> None:
    """The module's pr_debug lines (one per tunnel created/destroyed): off
    while 10,000 tunnels come and go, so they neither slow the run nor
    push what later tests read out of the kernel log."""
    if DDC.exists():
        DDC.write_text("module ipudp " + ("+p" if on else "-p") + "\n")


def run_bench(out: Path, *args: str) -> dict:
    if "--only" not in args:
        debug_prints(False)
    try:
        res = subprocess.run([sys.executable, str(ROOT / "scripts/bench.py"), str(out),
                              "--quick", *args], capture_output=True, text=True,
                             timeout=2400)
    finally:
        if "--only" not in args:
            debug_prints(True)
    assert res.returncode == 0, res.stdout + res.stderr
    r: dict = json.loads(out.read_text())
    assert bench_report.validate(r) == []
    return r


def report(out: Path, md: Path) -> str:
    rep = subprocess.run([sys.executable, str(ROOT / "scripts/bench_report.py"), str(out),
                          "--md", str(md), "--no-plots"], capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr
    return md.read_text()


@pytest.mark.newest
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    r = run_bench(out, "--only", "raw,ipudp4,ipip")
    assert list(r["scenarios"]) == ["raw", "ipudp4", "ipip"]
    for name in r["scenarios"]:
        assert r["scenarios"][name]["metrics"]["udp64_kpps"]["median"] > 0, name
        assert r["scenarios"][name]["forward"]["udp64_kpps"]["median"] > 0, name
        assert r["scenarios"][name]["nic"]["tcp1_mbit_s"]["median"] > 0, name
    text = report(out, tmp_path / "s.md")
    assert "| ipudp4 |" in text and "| ipip |" in text
    assert "## Over a NIC-like underlay" in text and "| ipudp4 |" in text.split("NIC-like")[1]


@pytest.mark.long
@pytest.mark.serial
def test_bench_profile(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    r = run_bench(out, "--only", "raw,ipudp4,ipip", "--profile")
    # the per-packet profile: both directions of both tunnels, with callees
    for name, roots in (("ipudp4", ("ipudp_xmit", "ipudp_encap_recv", "udp_rcv")),
                        ("ipip", ("ipip_tunnel_xmit", "ipip_rcv", "tunnel4_rcv", "udp_rcv"))):
        functions = r["scenarios"][name]["profile"]["functions"]
        for root in roots:
            assert functions[root]["calls"] >= 1000 and functions[root]["callees"], (name, root)
    # where a TCP stream's time goes: each peer's stages, per MB
    for name, roots in (("raw", ("veth_xmit", "process_backlog")),
                        ("ipudp4", ("ipudp_xmit", "process_backlog", "gro_cell_poll")),
                        ("ipip", ("ipip_tunnel_xmit", "process_backlog", "gro_cell_poll"))):
        tp = r["scenarios"][name]["tcp_profile"]
        assert tp["mb"] > 0, name
        for root in roots:
            assert tp["functions"][root]["us_per_mb"] > 0, (name, root)
    text = report(out, tmp_path / "p.md")
    assert "`ipudp_xmit`" in text and "`ipip_rcv`" in text
    assert "## Where a TCP stream's time goes" in text


@pytest.mark.long
@pytest.mark.serial
def test_quick_bench_runs_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    r = run_bench(out)
    names = [n for n, *_ in __import__("bench").SCENARIOS]
    assert list(r["scenarios"]) == names
    # ipudp and the kernel's own tunnels must work here; only the userspace
    # daemons may be reported as not set up (with the reason)
    for name in ("raw", "ipudp4", "ipudp6", "multi1", "multi10k", "ipip", "fou", "vxlan"):
        assert "metrics" in r["scenarios"][name], (name, r["scenarios"][name].get("error"))
        assert r["scenarios"][name]["metrics"]["tcp1_mbit_s"]["median"] > 0
    # forwarding (LAN -> A -> tunnel -> B -> LAN) is measured in quick mode too
    for name in __import__("bench").QUICK_FORWARD:
        assert r["scenarios"][name]["forward"]["udp64_kpps"]["median"] > 0, name
        assert r["scenarios"][name]["nic"]["tcp1_mbit_s"]["median"] > 0, name
    assert [row["tunnels"] for row in r["scale"]] == [1, 100]
    assert r["footprint"]["ipudp_ko_stripped_bytes"] < r["footprint"]["ipudp_ko_bytes"]
    text = report(out, tmp_path / "b.md")
    assert "## Targets" in text and "| ipudp4 |" in text and "Quick run" in text


@pytest.mark.long
def test_bench_two_servers(tmp_path: Path) -> None:
    """make bench's two servers sharing etcd, with 10 clients: each joins,
    then each fails over to the second server; the report says so."""
    out = tmp_path / "two.json"
    res = subprocess.run([sys.executable, str(ROOT / "scripts/bench.py"), str(out),
                          "--two-servers", "10"], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    ts = json.loads(out.read_text())["two_servers"]
    assert ts["clients"] == ts["leases"] == 10 and ts["leases_unique"], ts
    assert 0 < ts["failover"]["min_s"] <= ts["failover"]["max_s"], ts
    assert "## Two servers (etcd)" in report(out, tmp_path / "t.md")
