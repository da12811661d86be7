"""make bench's per-packet profile: reading ftrace's function_graph output."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench  # noqa: E402

# the shape of a depth-2 function_graph trace with funcgraph-tail, as 6.12
# writes it: a module's functions carry "[module]", long calls a marker
TRACE = """\
# tracer: function_graph
#
# CPU  DURATION                  FUNCTION CALLS
# |     |   |                     |   |   |   |
 1)               |  ipudp_xmit [ipudp]() {
 1)   0.500 us    |    skb_pull();
 1)               |    udp_tunnel_xmit_skb [udp_tunnel]() {
 1) + 12.000 us   |    } /* udp_tunnel_xmit_skb [udp_tunnel] */
 1) + 14.000 us   |  } /* ipudp_xmit [ipudp] */
 ------------------------------------------
 0)  iperf3-123   =>  ksoftir-15
 ------------------------------------------
 0)               |  ipudp_encap_recv [ipudp]() {
 0)   1.000 us    |    ipudp_lookup [ipudp]();
 0)   3.000 us    |  } /* ipudp_encap_recv [ipudp] */
 1)               |  ipudp_xmit [ipudp]() {
 1)   0.700 us    |    skb_pull();
 1)   0.300 us    |    skb_pull();
 1) ! 110.000 us  |    udp_tunnel_xmit_skb [udp_tunnel]();
 1) ! 112.000 us  |  } /* ipudp_xmit [ipudp] */
"""


def test_parse_graph_per_root_and_callee() -> None:
    roots = bench.parse_graph(TRACE)
    assert set(roots) == {"ipudp_xmit", "ipudp_encap_recv"}
    x = roots["ipudp_xmit"]
    assert x["calls"] == 2 and x["us_per_call"] == pytest.approx(63.0)
    callees = {c["function"]: c for c in x["callees"]}
    assert callees["udp_tunnel_xmit_skb"]["us_per_call"] == pytest.approx(61.0)
    assert callees["skb_pull"]["calls_per_call"] == pytest.approx(1.5)
    assert callees["skb_pull"]["us_per_call"] == pytest.approx(0.75)
    assert [c["function"] for c in x["callees"]][0] == "udp_tunnel_xmit_skb"  # costliest first
    r = roots["ipudp_encap_recv"]
    assert r["calls"] == 1 and r["callees"][0]["function"] == "ipudp_lookup"


def test_report_sums_the_ip_layer_handlers_per_packet() -> None:
    import bench_report

    def fn(calls: int, us: float) -> dict[str, object]:
        return {"calls": calls, "us_per_call": us, "callees": []}

    r = {"scenarios": {
        "ipudp4": {"profile": {"packets": 1000, "tracer": "t", "functions": {
            "ipudp_xmit": fn(1000, 40.0), "udp_rcv": fn(2000, 15.0)}}},
        "ipip": {"profile": {"packets": 1000, "tracer": "t", "functions": {
            "ipip_rcv": fn(1000, 12.0), "tunnel4_rcv": fn(1000, 13.0),
            "udp_rcv": fn(1000, 6.0)}}}}}
    text = "\n".join(bench_report.profile_rows(r))
    ipudp, ipip = text.split("**ipip**")
    assert "(`udp_rcv`): **30.0 µs per packet**" in ipudp
    assert "(`tunnel4_rcv` + `udp_rcv`): **19.0 µs per packet**" in ipip
    assert "`ipudp_xmit`: 1,000 calls, **40.00 µs per call**, 40.0 µs per packet" in ipudp


def test_tcp_profile_sums_the_stages_per_mb_against_raw() -> None:
    import bench_report

    def fn(per_mb: float, us: float) -> dict[str, object]:
        return {"calls_per_mb": per_mb, "us_per_mb": us, "callees": []}

    def metrics(mbit: float, cpu: float) -> dict[str, object]:
        return {"tcp1_mbit_s": {"median": mbit}, "tcp1_cpu_s_per_gb": {"median": cpu}}

    r = {"scenarios": {
        "raw": {"metrics": metrics(2000, 7.0), "tcp_profile": {"functions": {
            "veth_xmit": fn(40, 800), "process_backlog": fn(40, 2000)}}},
        "ipudp4": {"metrics": metrics(1600, 8.75), "tcp_profile": {"functions": {
            "ipudp_xmit": fn(50, 2500), "process_backlog": fn(50, 3000),
            "gro_cell_poll": fn(45, 2500)}}},
        "fastd": {"metrics": metrics(100, 70.0)}}}
    rows = bench_report.tcp_profile_rows(r)
    ipudp = next(row for row in rows if row.startswith("| ipudp4 |"))
    # transmits and polls per MB; the stages; total; added to raw's 2,800;
    # CPU per GB and throughput as ratios to raw
    assert ipudp == ("| ipudp4 | 50.0 | 45.0 | 2,500 | 3,000 | 2,500 | 8,000 | 5,200 "
                     "| 1.25 | 0.80 |")
    assert not any(row.startswith("| fastd |") for row in rows)  # not profiled
    assert bench_report.tcp_profile_rows({"scenarios": {"raw": {"metrics": {}}}}) == []


def test_a_failed_stage_is_reported_not_fatal() -> None:
    """make bench writes what it measured after each stage; the report
    accepts a result whose control plane failed and says so."""
    import bench_report
    r = {"date": "d", "kernel": "k", "cpus": 2, "quick": True, "reps": 1, "scenarios": {},
         "scale": [], "footprint": {}, "commands": [],
         "failed_stages": {"control_plane": "RuntimeError: the server died"}}
    assert bench_report.validate(r) == []
    del r["failed_stages"]
    assert bench_report.validate(r) == ["control_plane: missing or not dict"]


def test_reliability_section_lists_the_fault_figures() -> None:
    """make bench's reliability section: the fault scenarios' own figures
    (faults.json, floods.json), each with its unit; none when not run."""
    import bench_report
    assert bench_report.reliability_section({}) == []
    text = "\n".join(bench_report.reliability_section({
        "faults": {"detect_silent_server_s": 7.1, "keepalive_s": 2, "idle_timeout_s": 12,
                   "dead_after": 3},
        "floods": {"udp_junk_pps": 23456, "tcp_join_s": 4.2}}))
    assert "keepalive 2 s, idle timeout 12 s, dead after 3" in text
    assert "| a silent server (no FIN) detected by both clients | 7.1 s |" in text
    assert "| junk datagrams at the data port (one sender) | 23,456 pps |" in text
    assert "| both clients joined under 1,000 connections from one /64 | 4.2 s |" in text
    assert "revocation" not in text  # not measured: no row
    assert set(bench.RELIABILITY.values()) == {"faults.json", "nat.json", "floods.json"}


def test_node_memory_section_per_release_and_heap() -> None:
    import bench_report
    assert bench_report.node_memory_section({}) == []
    text = "\n".join(bench_report.node_memory_section({
        "runs": [{"release": "1.23.0", "heap": "1M", "joined": True, "rejoined": True,
                  "idle": {"VmRSS": 4100, "VmHWM": 4200, "RssAnon": 900},
                  "after_rejoin": {"VmRSS": 4150, "VmHWM": 4300, "RssAnon": 950}},
                 {"release": "1.23.0", "heap": "160K", "joined": False},
                 {"release": "1.28.0", "error": "not built"}],
        "installed_size_24.10": 92160}))
    assert "| 1.23.0 | 1M | yes | 4100 | 900 | 4150 / 4300 / 950 |" in text
    assert "| 1.23.0 | 160K | no | – | – | – |" in text
    assert "| 1.28.0 | | not built |" in text
    assert "OpenWrt 24.10: 92,160 bytes" in text
