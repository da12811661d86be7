#!/usr/bin/env python3
"""Turn a bench/results/*.json into docs/benchmarks.md (+ PNG plots).

Every figure is also given as a ratio to raw veth measured in the same run;
the targets of the benchmark issue are checked and a miss says by how much.

Usage: scripts/bench_report.py RESULT.json [--md docs/benchmarks.md]
       [--plots docs/bench] [--no-plots]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

METRICS = [  # key, heading, unit, higher is better
    ("tcp1_mbit_s", "TCP 1 stream", "Mbit/s", True),
    ("tcp4_mbit_s", "TCP 4 streams", "Mbit/s", True),
    ("udp64_kpps", "UDP 64 B", "kpps", True),
    ("udp1400_kpps", "UDP 1400 B", "kpps", True),
    ("ping_median_us", "RTT median", "µs", False),
    ("ping_p99_us", "RTT p99", "µs", False),
    ("tcp1_cpu_s_per_gb", "CPU per GB", "CPU-s/GB", False),
]

FORWARD_METRICS = [m for m in METRICS if m[0] in ("tcp1_mbit_s", "udp64_kpps",
                                                  "udp1400_kpps")]
NIC_METRICS = [m for m in METRICS if m[0] in ("tcp1_mbit_s", "tcp1_cpu_s_per_gb")]

SCHEMA_TOP = {"date": str, "kernel": str, "cpus": int, "quick": bool, "reps": int,
              "scenarios": dict, "scale": list, "footprint": dict, "control_plane": dict,
              "commands": list}


def validate(r: dict[str, Any]) -> list[str]:
    """Problems with a result file (empty: it is well-formed)."""
    # a run of some scenarios (--only) has no scale, footprint or control plane
    partial = ("scale", "footprint", "control_plane") if r.get("only") else ()
    # a stage that failed has no figures, only its error in failed_stages
    partial += tuple(k for k in r.get("failed_stages", {}) if k in SCHEMA_TOP)
    bad = [f"{k}: missing or not {t.__name__}" for k, t in SCHEMA_TOP.items()
           if not isinstance(r.get(k), t) and k not in partial]
    for name, s in r.get("scenarios", {}).items():
        if "error" in s:
            if not isinstance(s["error"], str) or not s["error"]:
                bad.append(f"{name}: empty error")
            continue
        for key, *_ in METRICS:
            v = s.get("metrics", {}).get(key)
            if not (isinstance(v, dict) and isinstance(v.get("median"), (int, float))
                    and v["min"] <= v["median"] <= v["max"] and v["n"] >= 1):
                bad.append(f"{name}.{key}: missing or malformed")
        for key, *_ in FORWARD_METRICS if "forward" in s else ():
            v = s["forward"].get(key)
            if not (isinstance(v, dict) and v["min"] <= v["median"] <= v["max"]):
                bad.append(f"{name}.forward.{key}: missing or malformed")
    for rnd in r.get("control_plane", {}).get("rounds", []):
        if not (isinstance(rnd.get("clients"), int) and isinstance(rnd.get("joined"), int)
                and isinstance(rnd.get("server_rss_kib_after"), (int, float))):
            bad.append(f"control plane round {rnd.get('clients')}: malformed")
    for row in r.get("scale", []):
        for key in ("tunnels", "install_tunnels_s", "slab_bytes_per_tunnel", "tcp1_mbit_s"):
            if not isinstance(row.get(key), (int, float)):
                bad.append(f"scale {row.get('tunnels')}: {key} missing")
    return bad


def med(r: dict[str, Any], scen: str, key: str, part: str = "metrics") -> float | None:
    """Median of a figure; ``part``: "metrics" (A to B) or "forward" (LAN to LAN)."""
    s = r["scenarios"].get(scen, {})
    v = s.get(part, {}).get(key)
    return float(v["median"]) if v else None


def spread(r: dict[str, Any], scen: str, key: str, part: str = "metrics"
           ) -> tuple[float, float] | None:
    v = r["scenarios"].get(scen, {}).get(part, {}).get(key)
    return (float(v["min"]), float(v["max"])) if v else None


def fmt(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def median_cell(v: dict[str, float]) -> str:
    """ "median (min–max)" of one figure."""
    digits = 1 if v["median"] < 100 else 0
    return (f"{fmt(v['median'], digits)} ({fmt(v['min'], digits)}–"
            f"{fmt(v['max'], digits)})")


def ratio_text(r: dict[str, Any], scen: str, key: str, higher: bool,
               part: str = "metrics") -> str:
    v, raw = med(r, scen, key, part), med(r, "raw", key, part)
    if v is None or not raw:
        return "–"
    return f"{v / raw:.2f}"


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict)"""
    out = []

    def ratio(a: str, b: str, key: str = "tcp1_mbit_s") -> float | None:
        x, y = med(r, a, key), med(r, b, key)
        return x / y if x is not None and y else None

    def check(name: str, value: float | None, goal: float, higher: bool, unit: str = "",
              digits: int = 2) -> None:
        if value is None:
            out.append((name, "not measured", "–"))
            return
        ok = value >= goal if higher else value <= goal
        verdict = "met" if ok else f"missed by {abs(value - goal):.{digits}f}{unit}"
        out.append((name, f"{value:.{digits}f}{unit}", verdict))

    check("ipudp ≥ 0.90 × raw veth (TCP 1 stream)", ratio("ipudp4", "raw"), 0.90, True)
    for part, where in (("metrics", "locally"), ("forward", "forwarded")):
        for peer in ("ipip", "l2tpv3"):
            x, y = med(r, "ipudp4", "udp64_kpps", part), med(r, peer, "udp64_kpps", part)
            check(f"UDP 64 B pps ≥ {peer}'s, {where} (ratio ≥ 1){ahead(r, peer, part)}",
                  x / y if x is not None and y else None, 1.0, True)
    for peer in ("fou", "gue", "vxlan"):
        check(f"ipudp ahead of {peer} (ratio > 1)", ratio("ipudp4", peer), 1.0, True)
    check("ipudp ≥ 2 × L2TPv3", ratio("ipudp4", "l2tpv3"), 2.0, True)
    check("ipudp ≥ 10 × fastd null", ratio("ipudp4", "fastd"), 10.0, True)
    cpu = ratio("ipudp4", "ipip", "tcp1_cpu_s_per_gb")
    check("CPU per GB within 10 % of ipip (ratio ≤ 1.10)", cpu, 1.10, False)
    check("CPU per GB ≤ ipip's (ratio ≤ 1.00)", cpu, 1.00, False)
    lat = None
    if med(r, "ipudp4", "ping_median_us") is not None and med(r, "raw", "ping_median_us"):
        lat = med(r, "ipudp4", "ping_median_us") - med(r, "raw", "ping_median_us")  # type: ignore[operator]
    check("added latency ≤ 5 µs (RTT median − raw)", lat, 5.0, False, " µs", 0)
    check("MULTI 10,000 tunnels within 5 % of 1 tunnel (ratio ≥ 0.95)",
          ratio("multi10k", "multi1"), 0.95, True)
    per_tunnel = [row["slab_bytes_per_tunnel"] for row in r.get("scale", [])
                  if row["tunnels"] >= 1000]
    check("≤ 512 B kernel memory per tunnel (slab, ≥ 1,000 tunnels)",
          max(per_tunnel) if per_tunnel else None, 512, False, " B", 0)
    cp = r.get("control_plane", {})
    thousand = [x for x in cp.get("rounds", []) if x["clients"] == 1000]
    check("1,000 clients joined in ≤ 60 s",
          thousand[0]["all_joined_s"] if thousand and thousand[0]["all_joined_s"] else None,
          60, False, " s", 1)
    rss = cp.get("idle_rss_kib")
    check("idle agent RSS ≤ 20 MB", rss / 1024 if rss else None, 20, False, " MiB", 1)
    return out


def ahead(r: dict[str, Any], peer: str, part: str) -> str:
    """Whether the spreads (min–max) of ipudp4 and a peer overlap on UDP 64 B."""
    a, b = spread(r, "ipudp4", "udp64_kpps", part), spread(r, peer, "udp64_kpps", part)
    if not a or not b:
        return ""
    if a[0] > b[1]:
        return "; ranges apart: ahead"
    if a[1] < b[0]:
        return "; ranges apart: behind"
    return "; ranges overlap"


# the IP layer's handlers of a tunnel's packets, outer and inner (bench.py's
# second profile pass): their sum per packet is each peer's receive cost
RECEIVE_HANDLERS = ("tunnel4_rcv", "udp_rcv")


def profile_rows(r: dict[str, Any]) -> list[str]:
    """Per profiled tunnel, its transmit and receive functions' time per
    packet and their direct callees' (function_graph, see bench.py)."""
    L: list[str] = []
    for name, s in r["scenarios"].items():
        prof = s.get("profile")
        if not prof or "functions" not in prof:   # none, or a run of the perf sampler
            continue
        L += ["", f"**{name}** ({prof['packets']:,} packets; {prof['tracer']}):"]
        packets = max(int(prof["packets"]), 1)
        handlers = [f for root, f in prof["functions"].items() if root in RECEIVE_HANDLERS]
        if handlers:
            per = sum(f["calls"] * f["us_per_call"] for f in handlers) / packets
            L += ["", f"Receive from the IP layer to the inner socket's queue "
                  f"({' + '.join(f'`{h}`' for h in RECEIVE_HANDLERS if h in prof['functions'])}):"
                  f" **{per:.1f} µs per packet**"]
        for root, f in prof["functions"].items():
            L += ["", f"`{root}`: {f['calls']:,} calls, **{f['us_per_call']:.2f} µs per call**, "
                  f"{f['calls'] * f['us_per_call'] / packets:.1f} µs per packet",
                  "", "| callee | calls per call | µs per call |", "|---|---|---|"]
            for c in f["callees"]:
                if c["calls_per_call"] < 0.01:  # an interrupt's entry, not the path
                    continue
                L.append(f"| `{c['function']}` | {c['calls_per_call']:.2f} | "
                         f"{c['us_per_call']:.2f} |")
    return L


def section(heading: str, text: str, rows: list[str]) -> list[str]:
    """A report section: ``rows`` under ``heading`` and ``text``; none without rows."""
    return ["", f"## {heading}", "", text, "", *rows] if rows else []


def part_rows(r: dict[str, Any], part: str, metrics: list[tuple[str, str, str, bool]],
              missing: str) -> list[str]:
    """The table of the runs of one ``part`` ("forward", "nic"): each figure's
    median with its spread, then its ratio to raw veth in the same part."""
    rows = [(n, s) for n, s in r["scenarios"].items() if part in s or f"{part}_error" in s]
    if not rows:
        return []
    L = ["| tunnel | " + " | ".join(f"{t} ({u})" for _, t, u, _ in metrics)
         + " | " + " | ".join(f"{t} ratio" for _, t, _, _ in metrics) + " |",
         "|---|" + "---|" * (2 * len(metrics))]
    for name, s in rows:
        if part not in s:
            L.append(f"| {name} | {missing}: {s[part + '_error'][:160]} |"
                     + " |" * (2 * len(metrics) - 1))
            continue
        cells = [median_cell(s[part][key]) for key, _, _, _ in metrics]
        cells += [ratio_text(r, name, k, h, part) for k, _, _, h in metrics]
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    return L


# bench.py's TCP profile: the device's transmit, then the receive from
# veth's backlog and (a tunnel) from its GRO cell
TCP_STAGES = (("transmit", ("veth_xmit", "ipudp_xmit", "ipip_tunnel_xmit")),
              ("backlog", ("process_backlog",)), ("GRO cell", ("gro_cell_poll",)))


def tcp_profile_rows(r: dict[str, Any]) -> list[str]:
    """Per profiled peer, where one TCP stream's time goes, per MB of
    payload; beside it the untraced CPU per GB and TCP ratio to raw."""
    rows = [(n, s["tcp_profile"]) for n, s in r["scenarios"].items() if s.get("tcp_profile")]
    if not rows:
        return []
    L = ["| peer | device transmits per MB | GRO cell polls per MB | "
         + " | ".join(f"{stage} (µs/MB)" for stage, _ in TCP_STAGES)
         + " | total (µs/MB) | added to raw's (µs/MB) | CPU per GB × raw (untraced) | "
         "TCP 1 stream × raw (untraced) |", "|---|" + "---|" * (len(TCP_STAGES) + 6)]
    raw_total = None
    for name, tp in rows:
        fns = tp["functions"]
        stages = [sum(fns[f]["us_per_mb"] for f in roots if f in fns) for _, roots in TCP_STAGES]
        total = sum(stages)
        if name == "raw":
            raw_total = total
        xmit = next((fns[f] for f in TCP_STAGES[0][1] if f in fns), None)
        poll = fns.get("gro_cell_poll")
        cells = [f"{xmit['calls_per_mb']:.1f}" if xmit else "–",
                 f"{poll['calls_per_mb']:.1f}" if poll else "–"]
        cells += [f"{v:,.0f}" if v else "–" for v in stages]
        cells += [f"{total:,.0f}", f"{total - raw_total:,.0f}" if raw_total else "–",
                  ratio_text(r, name, "tcp1_cpu_s_per_gb", False),
                  ratio_text(r, name, "tcp1_mbit_s", True)]
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    return L


def plots(r: dict[str, Any], outdir: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made = []
    names = [n for n, s in r["scenarios"].items() if "metrics" in s]
    for key, title, unit, _ in METRICS[:4]:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        vals = [med(r, n, key) or 0.0 for n in names]
        colors = ["#d62728" if n.startswith(("ipudp", "multi")) else "#7f7f7f" for n in names]
        ax.bar(names, vals, color=colors)
        ax.set_ylabel(unit)
        ax.set_title(f"{title} ({r['kernel']}, {r['cpus']} CPUs, {r['qemu']})")
        ax.tick_params(axis="x", rotation=45)
        fig.tight_layout()
        path = outdir / f"{key}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path.name)
    if r.get("scale"):
        fig, ax1 = plt.subplots(figsize=(7, 3.6))
        xs = [row["tunnels"] for row in r["scale"]]
        ax1.plot(xs, [row["tcp1_mbit_s"] for row in r["scale"]], "o-", color="#d62728")
        ax1.set_xscale("log")
        ax1.set_xlabel("tunnels on the MULTI device (10 rules each)")
        ax1.set_ylabel("TCP 1 stream, Mbit/s")
        ax2 = ax1.twinx()
        ax2.plot(xs, [row["ping_median_us"] for row in r["scale"]], "s--", color="#1f77b4")
        ax2.set_ylabel("RTT median, µs")
        ax1.set_title("ipudp MULTI as the tunnel count grows")
        fig.tight_layout()
        path = outdir / "scale.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path.name)
    return made


def markdown(r: dict[str, Any], result_name: str, pngs: list[str], plot_dir: str) -> str:
    L = ["# Benchmarks", "",
         f"Measured by `make bench` on {r['date']}: kernel {r['kernel']}, {r['cpus']} CPUs, "
         f"qemu {r['qemu']}, {r['reps']} runs of {r['seconds']} s per figure (median, "
         f"spread min–max in `{result_name}`). Raw data and every command run: "
         f"`{result_name}`. The whole run took {r.get('total_wall_s', 0) / 60:.0f} min.", "",
         "## How to read this", "",
         "All tunnels run in the same VM boot over the same two network namespaces "
         "joined by a veth pair, in rounds: each round sets up and measures every "
         "tunnel once, so a figure's spread (min–max over the rounds) includes the "
         "machine's drift during the whole run for every peer alike; the VM emulates "
         "its CPU (qemu TCG, "
         "no KVM here), so absolute figures are far below real hardware and only the "
         "**ratios** to raw veth (same run) carry over. Throughput is iperf3's received "
         "rate; UDP is small/large datagrams at full blast (received packets per second); "
         "RTT is ping through the tunnel; CPU per GB is guest CPU time (/proc/stat, all "
         "CPUs, sender and receiver together) per GB received during the 1-stream TCP run. "
         "Encrypting peers (WireGuard, n2n) pay for their crypto: that is the point of the "
         "comparison, not a flaw of the setup.", ""]
    if r["quick"]:
        L += ["**Quick run** (`--quick`): one short iteration, for the test suite; not "
              "for conclusions.", ""]
    for key, err in r.get("failed_stages", {}).items():
        L += [f"**Stage {key} failed** ({err}): its figures are missing below.", ""]
    if r.get("only"):
        L += [f"**Partial run** (`--only {r['only']}`): no scale, footprint or control "
              "plane; targets that need other peers say \"not measured\".", ""]
    L += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    L += [f"| {a} | {b} | {c} |" for a, b, c in targets(r)]
    raw_rtt, ipip_rtt = med(r, "raw", "ping_median_us"), med(r, "ipip", "ping_median_us")
    ipip_tcp = ratio_text(r, "ipip", "tcp1_mbit_s", True)
    L += ["", "Reading the misses against the kernel's own tunnels in the same run: plain "
          f"ipip reaches {ipip_tcp} × raw veth on one TCP stream"
          + (f" and adds {ipip_rtt - raw_rtt:.0f} µs of RTT" if raw_rtt and ipip_rtt else "")
          + ": under TCG every extra pass through the stack costs tens of µs of emulated "
          "CPU, so the 5 µs latency target can only be judged on real hardware or KVM. "
          "The control-plane load generator shares the VM's two emulated CPUs with the "
          "server. The agent's RSS is CPython with pyOpenSSL/cryptography and pyroute2 "
          "loaded."]
    L += ["", "## Data plane", "",
          "| tunnel | " + " | ".join(f"{t} ({u})" for _, t, u, _ in METRICS) + " |",
          "|---|" + "---|" * len(METRICS)]
    for name, s in r["scenarios"].items():
        if "error" in s:
            L.append(f"| {name} | not set up: {s['error'][:160]} |" + " |" * (len(METRICS) - 1))
            continue
        cells = [median_cell(s["metrics"][key]) for key, _, _, _ in METRICS]
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    L += ["", "Ratios to raw veth in the same run (throughput: higher is better; RTT and "
          "CPU: lower is better):", "",
          "| tunnel | what | " + " | ".join(t for _, t, _, _ in METRICS) + " |",
          "|---|---|" + "---|" * len(METRICS)]
    for name, s in r["scenarios"].items():
        cells = [ratio_text(r, name, k, h) for k, _, _, h in METRICS]
        L.append(f"| {name} | {s['what']} | " + " | ".join(cells) + " |")
    L += section("Forwarding", "Traffic from a LAN namespace behind A, routed by A into "
                 "the tunnel and by B out to a LAN namespace behind B (how a mesh node "
                 "carries its clients' traffic); same runs and spread as above; ratio to "
                 "raw veth forwarded the same way.",
                 part_rows(r, "forward", FORWARD_METRICS, "not forwarded"))
    L += section("Per-packet profile (UDP 64 B, A to B)", "ftrace's function_graph tracer "
                 "(depth 2) on each tunnel's transmit and receive functions while 2,000 UDP "
                 "64-byte packets go from A to B: time per call with its direct callees (the "
                 "tracer's own cost included, alike for every peer; emulated CPU under TCG).",
                 profile_rows(r))
    L += section("Over a NIC-like underlay (TCP 1 stream, A to B)", "The same tunnel after "
                 "the rest of its round, with the underlay as a router's NIC has it: the "
                 "sender's veth without TSO or tunnel segmentation offload (segmentation in "
                 "software, MTU-sized datagrams on the wire), the receiver's veth with GRO "
                 "(`ethtool -K`, scripts/bench.py `NIC_LIKE`); ratio to raw veth set up the "
                 "same way.", part_rows(r, "nic", NIC_METRICS, "not measured"))
    L += section("Where a TCP stream's time goes (1 stream, A to B)", "function_graph "
                 "(depth 2) during 2 s of one TCP stream, data and ACKs alike, per MB of "
                 "payload received: the device's transmit (a tunnel's includes the "
                 "underlay's IP output and veth), the receive from veth's backlog (raw: the "
                 "whole receive; a tunnel: the outer packet up to decapsulation) and a "
                 "tunnel's GRO cell (GRO, IP and TCP for the inner packet). The stream is "
                 "bound by CPU time, so its throughput ratio to raw follows the inverse of "
                 "its CPU per GB (both untraced, same run).", tcp_profile_rows(r))
    if r.get("scale"):
        L += ["", "## Scale (ipudp MULTI)", "",
              "| tunnels | rules | install tunnels (s) | install rules (s) | slab B/tunnel | "
              "slab B/rule | TCP 1 stream (Mbit/s) | RTT median (µs) |",
              "|---|---|---|---|---|---|---|---|"]
        for row in r["scale"]:
            L.append(f"| {row['tunnels']:,} | {row['rules']:,} | {row['install_tunnels_s']:.2f} "
                     f"| {row['install_rules_s']:.2f} | {row['slab_bytes_per_tunnel']:.0f} | "
                     f"{row['slab_bytes_per_rule']:.0f} | {row['tcp1_mbit_s']:.0f} | "
                     f"{row['ping_median_us']:.0f} |")
        L += ["", "Slab per tunnel/rule is the growth of the kernel's `Slab:` "
              "(/proc/meminfo) divided by the count; below 1,000 tunnels it is dominated "
              "by noise."]
    if r.get("footprint"):
        f = r["footprint"]
        L += ["", "## Footprint", "", "| item | value |", "|---|---|"]
        for k, v in f.items():
            L.append(f"| {k} | {v:,.3f} |" if isinstance(v, float) else f"| {k} | {v:,} |")
    cp = r.get("control_plane", {})
    if cp:
        L += ["", "## Control plane", "",
              "N clients (each its own certificate, TLS connection and UDP socket; the "
              "protocol without a kernel device of their own, all in one process, "
              "`scripts/bench_join.py`) start joining one `lvn agent` server at once "
              "(its `conn_rate`/`conn_burst` raised to 1000: they share one source "
              "address). Joined = LEASE, probe, tunnel and rules set, ENDPOINT received.",
              "", "| clients | joined | all joined (s) | median (s) | retries | server CPU (s) | "
              "server RSS after (MiB) | server tunnels |", "|---|---|---|---|---|---|---|---|"]
        for x in cp["rounds"]:
            L.append(f"| {x['clients']:,} | {x['joined']:,} | {fmt(x['all_joined_s'], 1)} | "
                     f"{fmt(x['median_join_s'], 2)} | {x.get('retries', 0)} | "
                     f"{x['server_cpu_s']:.1f} | "
                     f"{x['server_rss_kib_after'] / 1024:.1f} | {x['server_tunnels_after']:,} |"
                     + (f" errors: {'; '.join(x['errors'])}" if x["errors"] else ""))
        L += ["", f"Idle server (no client): RSS {cp['idle_rss_kib'] / 1024:.1f} MiB, "
              f"{cp['idle_wakeups_per_s']:.1f} wake-ups/s (its one-second tick), "
              f"{cp['idle_cpu_s_per_min']:.2f} CPU-s per minute. Issuing one node "
              f"certificate: {cp['issue_certificates_s_each'] * 1000:.0f} ms."]
        node = cp.get("node_idle")
        if node:
            L += ["", f"Idle MicroPython node (`lvn.node`, `-X heapsize=1M`), joined, "
                  f"keepalive {node['keepalive_s']} s, counted over {node['idle_s']} s: "
                  f"{node['agent_wakeups_per_keepalive']:.2f} agent wake-ups and "
                  f"{node['process_wakeups_per_keepalive']:.2f} process wake-ups "
                  "(voluntary context switches) per keepalive interval, "
                  f"{node['cpu_s_per_min']:.3f} CPU-s per minute, heap peak "
                  f"{node['heap_peak']:,} B, in use {node['heap_used']:,} B (RSS "
                  f"{node['rss_kib_in_cpython'] / 1024:.1f} MiB is that of the PyPI build, "
                  "which runs inside a CPython process: not a router's micropython)."]
    L += node_memory_section(cp.get("node_memory", {}))
    L += two_servers_section(r.get("two_servers", {}))
    L += moves_section(r.get("moves", {}))
    L += reliability_section(r.get("reliability", {}))
    L.append("")
    if pngs:
        L += ["## Plots", ""] + [f"![{p}]({plot_dir}/{p})" for p in pngs] + [""]
    return "\n".join(L)


def node_memory_section(nm: dict[str, Any]) -> list[str]:
    """The node on each OpenWrt release's MicroPython: memory per heap size."""
    if not nm:
        return []
    L = ["", "## The node's memory (OpenWrt's MicroPython builds)", "",
         "`lvn.node` joined to the bench's server, on OpenWrt's own MicroPython "
         "of each release (built from its sources with its patches and mbedTLS; "
         "x86_64 glibc here, so absolute figures differ on a router), idle after "
         "the join and after a rejoin (a changed configuration). VmHWM is the "
         "process's peak RSS; RssAnon its private memory.", "",
         "| release | heap | joined | idle RSS (KiB) | idle private (KiB) | after rejoin: "
         "RSS / peak / private (KiB) |", "|---|---|---|---|---|---|"]
    for x in nm.get("runs", []):
        if "error" in x:
            L.append(f"| {x['release']} | | {x['error']} | | | |")
            continue
        idle, after = x.get("idle") or {}, x.get("after_rejoin") or {}
        code = "" if x.get("code", "mpy") == "mpy" else " (source)"
        L.append(f"| {x['release']} | {x['heap']}{code} | "
                 f"{'yes' if x['joined'] else 'no'}"
                 f"{'' if x.get('rejoined', True) else ' (no rejoin)'}"
                 f"{'' if x.get('survived', True) else ' (then died)'} | "
                 f"{idle.get('VmRSS', '–')} | {idle.get('RssAnon', '–')} | "
                 + (f"{after['VmRSS']} / {after['VmHWM']} / {after['RssAnon']} |" if after
                    else "– |"))
    sizes = [f"OpenWrt {rel}: {nm[f'installed_size_{rel}']:,} bytes"
             for rel in ("24.10", "main") if f"installed_size_{rel}" in nm]
    if sizes:
        L += ["", "Installed size of the `lvn` package (OpenWrt's Installed-Size): "
              + "; ".join(sizes) + "."]
    return L


# the fault scenarios' figures (tests/kernel/test_faults.py, test_floods.py)
RELIABILITY_ROWS = [
    ("faults", "detect_silent_server_s", "a silent server (no FIN) detected by both clients", "s"),
    ("faults", "node_status_slowest_answer_s",
     "the node's ubus status meanwhile, slowest answer (rpcd gives up at 3 s)", "s"),
    ("faults", "rejoin_after_server_answers_s", "both joined again after it answered", "s"),
    ("faults", "rejoin_after_power_loss_s", "clients back after a power loss (new addresses)",
     "s"),
    ("faults", "replaced", "old sessions replaced by the rejoin (others expired first)", ""),
    ("faults", "revocation_effective_s", "a revocation ends the live session", "s"),
    ("nat", "rebinding_followed_s", "a NAT's new ports: the tunnels followed", "s"),
    ("nat", "rebinding_pings_lost", "pings lost meanwhile (5/s, CPython client, node)", ""),
    ("nat", "adopted_tunnel", "a reused CGNAT port's tunnel adopted by the newcomer", ""),
    ("floods", "quiet_join_s", "both clients joined without a flood (the baseline)", "s"),
    ("floods", "quiet_connect_to_up_s",
     "of which from the first connection attempt to the tunnel up", "s"),
    ("floods", "tcp_join_s", "both clients joined under 1,000 connections from one /64", "s"),
    ("floods", "tcp_connect_to_up_s", "of which from the first connection attempt", "s"),
    ("floods", "tcp_status_answer_s", "`status` answered under that flood (slowest of 3)", "s"),
    ("floods", "tcp_server_cpu_share", "server CPU under that flood (cores)", ""),
    ("floods", "udp_junk_pps", "junk datagrams at the data port (one sender)", "pps"),
    ("floods", "udp_join_s", "both clients joined under that flood", "s"),
    ("floods", "udp_connect_to_up_s", "of which from the first connection attempt", "s"),
    ("floods", "udp_status_answer_s", "`status` answered under that flood (slowest of 3)", "s"),
    ("floods", "udp_server_cpu_share", "server CPU under that flood (cores)", ""),
]


def two_servers_section(ts: dict[str, Any]) -> list[str]:
    """Two servers sharing etcd: joins over both, then the first loses power."""
    if not ts:
        return []
    j, f = ts["join_both"], ts["failover"]
    return ["", "## Two servers (etcd)", "",
            f"{ts['clients']} clients (`scripts/bench_servers.py`: bench_join's clients "
            "with keepalives, each in turn to the next server of its list as lvn/clientpolicy.py "
            "does) join two `lvn agent` servers sharing their leases in one etcd, half "
            f"listing each first: all joined in {j['all_joined_s']:.1f} s "
            f"({j['rejoins']} went to their other server: the servers take 32 handshakes "
            "at a time from one source address, and these clients share one). Then all "
            f"join the first ({f['on_cut_server']} on it, after {f['rejoins_before_cut']} "
            "tries again), and it loses power "
            f"(nftables drops everything; keepalive {ts['keepalive_s']} s, `dead_after` "
            f"{ts['dead_after']}): each of those clients' tunnel is up on the second server "
            f"{f['median_s']:.1f} s after the cut (median; {f['min_s']:.1f}–{f['max_s']:.1f} "
            f"s over the clients). {ts['leases']} leases in etcd, "
            + ("no address twice." if ts["leases_unique"] else "**an address twice**.")]


def moves_section(mv: dict[str, Any]) -> list[str]:
    """The cost of an endpoint move (a NAT rebinding) per module build."""
    builds = [b for b in ("ipudp", "ipudp-base") if b in mv]
    if not builds:
        return []
    L = ["", "## Endpoint moves (NAT rebinding)", "",
         f"{mv['moves']} moves of one tunnel's endpoint a round (IPUDP_F_REPLACE, same "
         f"id, new port) through the library, {mv['rounds']} rounds, builds interleaved; "
         "median (min–max). Allocations from the kmem and percpu trace events: those "
         "made in ipudp, and every per-CPU one.", "",
         "| build | µs a move | module allocations a move | per-CPU allocations a move |",
         "|---|---|---|---|"]
    for b in builds:
        x = mv[b]
        L.append(f"| {'this build' if b == 'ipudp' else 'base (LVN_KMOD_BASE)'} | "
                 f"{median_cell(x['move_us'])} | {median_cell(x['module_allocs_per_move'])} | "
                 f"{median_cell(x['percpu_allocs_per_move'])} |")
    return L


def reliability_section(rel: dict[str, dict[str, Any]]) -> list[str]:
    """make bench's reliability section: one run of each fault scenario."""
    if not rel:
        return []
    L = ["", "## Reliability", "",
         "One run of each fault scenario of make test (a CPython client and a "
         "MicroPython node; keepalive {k} s, idle timeout {i} s, dead after {d} "
         "unanswered keepalives): times from the fault to the event.".format(
             k=rel.get("faults", {}).get("keepalive_s", "?"),
             i=rel.get("faults", {}).get("idle_timeout_s", "?"),
             d=rel.get("faults", {}).get("dead_after", "?")),
         "", "| scenario | figure |", "|---|---|"]
    for part, key, what, unit in RELIABILITY_ROWS:
        value = rel.get(part, {}).get(key)
        if value is not None:
            shown = (", ".join(map(str, value)) if isinstance(value, list)
                     else ("yes" if value else "no") if isinstance(value, bool) else f"{value:,}")
            L.append(f"| {what} | {shown}{' ' + unit if unit else ''} |")
    return L


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("result", type=Path)
    ap.add_argument("--md", type=Path, default=Path("docs/benchmarks.md"))
    ap.add_argument("--plots", type=Path, default=Path("docs/bench"))
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()
    r = json.loads(args.result.read_text())
    problems = validate(r)
    if problems:
        print("bench_report: malformed result:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    pngs = [] if args.no_plots else plots(r, args.plots)
    try:
        rel = str(args.plots.resolve().relative_to(args.md.resolve().parent))
        name = str(args.result.resolve().relative_to(Path.cwd()))
    except ValueError:
        rel, name = str(args.plots), str(args.result)
    args.md.write_text(markdown(r, name, pngs, rel))
    print(f"bench_report: wrote {args.md}" + (f" and {len(pngs)} plots" if pngs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
