#!/usr/bin/env python3
"""`make bench`, the part that runs inside the test VM (as root, module built).

Two network namespaces over a veth underlay; for each tunnel (ipudp and
its peers) the same metrics, A to B and forwarded LAN to LAN, in rounds
that interleave the peers, as medians with spread, written as JSON for
scripts/bench_report.py.  A tunnel that cannot be set up is kept in the
results with the reason.  ``--quick``: one short run of each scenario (the
test suite uses it so the benchmark cannot rot).

Usage: scripts/bench.py OUT.json [--quick] [--only a,b,...] [--reps N]
(LVN_KMOD_BASE=another ipudp.ko: its "ipudp4-base" runs beside "ipudp4")
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from lvn.files import write_atomic  # noqa: E402
from lvn.model import Rule, Tunnel  # noqa: E402
from lvn.netlink import Ipudp, in_netns  # noqa: E402

A, B = "bench-a", "bench-b"
LA, LB = "bench-la", "bench-lb"  # the LANs behind A and B (forwarding)
LANS = ("10.210.1.0/24", "10.210.2.0/24")
UNDER4 = ("10.99.0.1", "10.99.0.2")
UNDER6 = ("fd99::1", "fd99::2")
OVER4 = ("192.168.77.1", "192.168.77.2")
COMMANDS: list[str] = []  # every command run, for the report


def sh(*argv: str, check: bool = True, timeout: float = 300) -> str:
    COMMANDS.append(shlex.join(argv))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)}: {(p.stderr or p.stdout).strip()[-300:]}")
    return p.stdout


def nsx(ns: str, *argv: str, check: bool = True, timeout: float = 300) -> str:
    return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)


DAEMON_LOGS: list[Path] = []


def bg(ns: str, *argv: str) -> subprocess.Popen[bytes]:
    """A daemon in ``ns``; its output goes to a log quoted if its tunnel fails."""
    COMMANDS.append(shlex.join(argv) + " &")
    log = Path(tempfile.mkstemp(suffix=".log")[1])
    DAEMON_LOGS.append(log)
    with open(log, "wb") as out:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=out)


def topology() -> None:
    for ns in (A, B):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
        nsx(ns, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "bench0", "netns", A, "type", "veth", "peer", "name", "bench1",
       "netns", B)
    for ns, dev, i in ((A, "bench0", 0), (B, "bench1", 1)):
        nsx(ns, "ip", "addr", "add", f"{UNDER4[i]}/24", "dev", dev)
        nsx(ns, "ip", "addr", "add", f"{UNDER6[i]}/64", "dev", dev, "nodad")
        nsx(ns, "ip", "link", "set", dev, "up")


def teardown() -> None:
    for ns in (A, B, LA, LB):
        pids = sh("ip", "netns", "pids", ns, check=False).split()
        for pid in pids:
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", ns, check=False)
    sh("ip", "link", "del", "bench0", check=False)


def overlay(ns: str, dev: str, i: int, peer: bool = True) -> None:
    if peer:
        nsx(ns, "ip", "addr", "add", OVER4[i], "peer", OVER4[1 - i], "dev", dev)
    else:
        nsx(ns, "ip", "addr", "add", f"{OVER4[i]}/24", "dev", dev)
    nsx(ns, "ip", "link", "set", dev, "up")


# -- the tunnels --------------------------------------------------------------------
# each sets up a device "t0" (or a daemon) in both namespaces; returns the
# address to send to from A, and what the run should note

def setup_raw() -> str:
    return UNDER4[1]


def _iplink(kind_args: Callable[[int], list[str]], peer: bool = True) -> str:
    for ns, i in ((A, 0), (B, 1)):
        nsx(ns, "ip", "link", "add", "t0", *kind_args(i))
        overlay(ns, "t0", i, peer)
    return OVER4[1]


def setup_ipip() -> str:
    return _iplink(lambda i: ["type", "ipip", "local", UNDER4[i], "remote", UNDER4[1 - i]])


def _fou(gue: bool) -> str:
    sh("modprobe", "fou")
    for ns in (A, B):
        nsx(ns, "ip", "fou", "add", "port", "5555", *(["gue"] if gue else ["ipproto", "4"]))
    return _iplink(lambda i: ["type", "ipip", "local", UNDER4[i], "remote", UNDER4[1 - i],
                              "encap", "gue" if gue else "fou", "encap-sport", "auto",
                              "encap-dport", "5555"])


def setup_fou() -> str:
    return _fou(False)


def setup_gue() -> str:
    return _fou(True)


def setup_vxlan() -> str:
    sh("modprobe", "vxlan")
    return _iplink(lambda i: ["type", "vxlan", "id", "42", "local", UNDER4[i], "remote",
                              UNDER4[1 - i], "dstport", "4789"], peer=False)


def setup_l2tpv3() -> str:
    sh("modprobe", "l2tp_eth")
    sh("modprobe", "l2tp_netlink")
    for ns, i in ((A, 0), (B, 1)):
        nsx(ns, "ip", "l2tp", "add", "tunnel", "tunnel_id", "1", "peer_tunnel_id", "1",
            "encap", "udp", "local", UNDER4[i], "remote", UNDER4[1 - i],
            "udp_sport", "5000", "udp_dport", "5000")
        nsx(ns, "ip", "l2tp", "add", "session", "name", "t0", "tunnel_id", "1",
            "session_id", "1", "peer_session_id", "1")
        overlay(ns, "t0", i, peer=False)
    return OVER4[1]


def setup_wireguard() -> str:
    sh("modprobe", "wireguard")
    tmp = Path(tempfile.mkdtemp())
    keys = []
    for i in (0, 1):
        priv = sh("wg", "genkey").strip()
        (tmp / f"k{i}").write_text(priv + "\n")
        pub = subprocess.run(["wg", "pubkey"], input=priv, capture_output=True,
                             text=True, check=True).stdout.strip()
        keys.append(pub)
    for ns, i in ((A, 0), (B, 1)):
        nsx(ns, "ip", "link", "add", "t0", "type", "wireguard")
        nsx(ns, "wg", "set", "t0", "private-key", str(tmp / f"k{i}"), "listen-port", "51820",
            "peer", keys[1 - i], "endpoint", f"{UNDER4[1 - i]}:51820",
            "allowed-ips", "0.0.0.0/0")
        overlay(ns, "t0", i)
    return OVER4[1]


def _ipudp(outer: tuple[str, str], mode: str = "fixed", extra: int = 0) -> str:
    for ns, i in ((A, 0), (B, 1)):
        nsx(ns, "ip", "link", "add", "t0", "type", "ipudp")
        with Ipudp(netns=ns) as k:
            if mode == "fixed":
                k.set_tunnel("t0", outer[1 - i], local=outer[i])
            else:  # the sender (A) holds the extra tunnels and rules
                k.set_mode("t0", "multi")
                k.add_tunnels("t0", [Tunnel(str(ipaddress.IPv4Address("100.64.0.0") + n),
                                            id=n + 2) for n in range(extra if ns == A else 0)])
                k.add_rules("t0", [Rule(f"{ipaddress.IPv4Address('172.16.0.0') + n}/32",
                                        n // 10 + 2)
                                   for n in range(extra * 10 if ns == A else 0)])
                k.set_tunnel("t0", outer[1 - i], local=outer[i], tunnel_id=1)
                k.add_rule("t0", f"{OVER4[1 - i]}/32", 1)
                k.add_rule("t0", LANS[1 - i], 1)  # the far LAN (forwarding)
        overlay(ns, "t0", i)
        COMMANDS.append(f"lvn: {mode} ipudp t0 in {ns}, {extra} extra tunnels")
    return OVER4[1]


# LVN_KMOD_BASE: another build of ipudp.ko (say, main before a change) whose
# "-base" scenarios interleave with the module's own in the same rounds
MODULES = {"": "LVN_KMOD", "-base": "LVN_KMOD_BASE"}
_loaded: str | None = None  # the ipudp.ko this run loaded last


def use_module(variant: str) -> None:
    """Make the build of ``variant`` the loaded ipudp (between scenarios:
    no device is left, so it unloads at once)."""
    global _loaded
    ko = os.environ[MODULES[variant]]
    if _loaded == ko:
        return
    if Path("/sys/module/ipudp").is_dir():
        sh("rmmod", "ipudp")
    sh("insmod", ko)
    _loaded = ko


def setup_ipudp4() -> str:
    return _ipudp(UNDER4)


def setup_ipudp6() -> str:
    return _ipudp(UNDER6)


def setup_multi1() -> str:
    return _ipudp(UNDER4, "multi")


def setup_multi10k() -> str:
    return _ipudp(UNDER4, "multi", 9999)


def _wait_ping(dst: str, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if "1 received" in nsx(A, "ping", "-c", "1", "-W", "1", dst, check=False):
            return
        time.sleep(0.5)
    logs = " | ".join(p.read_text(errors="replace").strip().replace("\n", " / ")[-200:]
                      for p in DAEMON_LOGS[-2:])
    raise RuntimeError(f"{what}: no ping through the tunnel after {seconds:.0f} s; "
                       f"its log: {logs}")


def setup_fastd() -> str:
    sh("modprobe", "tun")
    tmp = Path(tempfile.mkdtemp())
    keys = [dict(re.findall(r"^(Secret|Public): (\w+)$", sh("fastd", "--generate-key"), re.M))
            for _ in (0, 1)]
    for ns, i in ((A, 0), (B, 1)):
        conf = tmp / f"f{i}.conf"
        conf.write_text(
            f'interface "t0";\nmode tun;\nmethod "null";\nsecret "{keys[i]["Secret"]}";\n'
            f'bind {UNDER4[i]}:10000;\nmtu 1426;\n'
            f'on up "ip addr add {OVER4[i]} peer {OVER4[1 - i]} dev $INTERFACE; '
            f'ip link set up dev $INTERFACE";\n'
            f'peer "p" {{ key "{keys[1 - i]["Public"]}"; remote {UNDER4[1 - i]}:10000; }}\n')
        bg(ns, "fastd", "-c", str(conf))
    _wait_ping(OVER4[1], "fastd")
    return OVER4[1]


def setup_openvpn() -> str:
    sh("modprobe", "tun")
    for ns, i in ((A, 0), (B, 1)):
        bg(ns, "openvpn", "--dev", "t0", "--dev-type", "tun", "--proto", "udp",
           "--local", UNDER4[i], "--lport", "1194", "--remote", UNDER4[1 - i], "--rport", "1194",
           "--ifconfig", OVER4[i], OVER4[1 - i], "--cipher", "none", "--auth", "none",
           "--data-ciphers", "none")
    _wait_ping(OVER4[1], "openvpn")
    return OVER4[1]


def setup_n2n() -> str:
    sh("modprobe", "tun")
    bg(B, "supernode", "-l", "7654")
    for ns, i in ((A, 0), (B, 1)):
        bg(ns, "edge", "-d", "t0", "-a", OVER4[i], "-c", "bench", "-k", "benchkey",
           "-l", f"{UNDER4[1]}:7654", "-f")
    _wait_ping(OVER4[1], "n2n")
    return OVER4[1]


def _with_module(variant: str, setup: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        use_module(variant)
        return setup()
    return run


SCENARIOS: list[tuple[str, str, Callable[[], str]]] = [
    ("raw", "veth underlay, no tunnel (the limit)", setup_raw),
    ("ipudp4", "ipudp FIXED, IPv4 outer", _with_module("", setup_ipudp4)),
    ("ipudp6", "ipudp FIXED, IPv6 outer", _with_module("", setup_ipudp6)),
    ("multi1", "ipudp MULTI, 1 tunnel", _with_module("", setup_multi1)),
    ("multi10k", "ipudp MULTI, 10,000 tunnels + 100,000 rules",
     _with_module("", setup_multi10k)),
    ("ipip", "kernel ipip (no UDP)", setup_ipip),
    ("fou", "kernel FOU (ipip in UDP)", setup_fou),
    ("gue", "kernel GUE (ipip in GUE/UDP)", setup_gue),
    ("vxlan", "kernel VXLAN", setup_vxlan),
    ("l2tpv3", "kernel L2TPv3 over UDP (tunneldigger's data plane)", setup_l2tpv3),
    ("wireguard", "kernel WireGuard (encrypts)", setup_wireguard),
    ("fastd", "fastd, method null (userspace)", setup_fastd),
    ("openvpn", "OpenVPN, cipher none (userspace)", setup_openvpn),
    ("n2n", "n2n 1.x (userspace, always encrypts: twofish)", setup_n2n),
]
if os.environ.get("LVN_KMOD_BASE"):
    SCENARIOS[2:2] = [("ipudp4-base", "ipudp FIXED, IPv4 outer, the baseline build "
                       "(LVN_KMOD_BASE)", _with_module("-base", setup_ipudp4))]


def forward_topology(dst: str) -> str:
    """A LAN namespace behind each side, routed through the tunnel (how a mesh
    node uses it): LA -> A -> tunnel -> B -> LB. Returns LB's address."""
    back = UNDER4[0] if dst == UNDER4[1] else OVER4[0]
    for lan, router, i, gw in ((LA, A, 0, dst), (LB, B, 1, back)):
        sh("ip", "netns", "add", lan)
        nsx(lan, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"fwd{i}r", "netns", router, "type", "veth", "peer", "name",
           f"fwd{i}l", "netns", lan)
        net = LANS[i].rsplit(".", 1)[0]
        nsx(router, "ip", "addr", "add", f"{net}.1/24", "dev", f"fwd{i}r")
        nsx(router, "ip", "link", "set", f"fwd{i}r", "up")
        nsx(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        nsx(router, "ip", "route", "add", LANS[1 - i], "via", gw)
        nsx(lan, "ip", "addr", "add", f"{net}.2/24", "dev", f"fwd{i}l")
        nsx(lan, "ip", "link", "set", f"fwd{i}l", "up")
        nsx(lan, "ip", "route", "add", "default", "via", f"{net}.1")
    far = LANS[1].rsplit(".", 1)[0] + ".2"
    deadline = time.monotonic() + 30
    while "1 received" not in nsx(LA, "ping", "-c", "1", "-W", "1", far, check=False):
        if time.monotonic() > deadline:
            raise RuntimeError("forwarding: no ping from LAN to LAN through the tunnel")
    return far


# -- the metrics --------------------------------------------------------------------

def cpu_busy() -> float:
    """Guest CPU seconds spent not idle, all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def iperf(dst: str, seconds: int | None, *args: str, sender: str = A) -> dict[str, Any]:
    """iperf3's JSON report of a run of ``seconds`` (None: ``args`` say how
    much, e.g. -k packets)."""
    length = ["-t", str(seconds)] if seconds is not None else []
    out = nsx(sender, "iperf3", "-c", dst, *length, "-J", *args, check=False,
              timeout=(seconds or 240) + 60)
    data = json.loads(out)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    return data  # type: ignore[no-any-return]


def tcp(dst: str, seconds: int, streams: int, sender: str = A) -> dict[str, float]:
    c0 = cpu_busy()
    d = iperf(dst, seconds, "-P", str(streams), sender=sender)
    cpu = cpu_busy() - c0
    rx = d["end"]["sum_received"]
    gb = rx["bytes"] / 1e9
    return {"mbit_s": rx["bits_per_second"] / 1e6, "cpu_s_per_gb": cpu / gb if gb else 0.0}


def udp(dst: str, seconds: int, size: int, sender: str = A) -> dict[str, float]:
    d = iperf(dst, seconds, "-u", "-b", "0", "-l", str(size), sender=sender)
    s = d["end"]["sum"]
    got = s["packets"] - s["lost_packets"]
    return {"kpps": got / s["seconds"] / 1e3}


def latency(dst: str, count: int) -> dict[str, float]:
    out = nsx(A, "ping", "-c", str(count), "-i", "0.01", "-W", "1", dst, check=False)
    rtts = sorted(float(m) for m in re.findall(r"time=([\d.]+) ms", out))
    if not rtts:
        raise RuntimeError("ping: no reply")
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
    return {"median_us": statistics.median(rtts) * 1e3, "p99_us": p99 * 1e3,
            "loss": 1 - len(rtts) / count}


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def iperf_server(ns: str) -> None:
    nsx(ns, "iperf3", "-s", "-D")
    deadline = time.monotonic() + 10
    while ":5201" not in nsx(ns, "ss", "-Htln", check=False):
        if time.monotonic() > deadline:
            raise RuntimeError(f"iperf3 server in {ns} did not start")
        time.sleep(0.05)


Runs = dict[str, list[float]]  # figure -> one value per round


def add_runs(runs: Runs, prefix: str, d: dict[str, float]) -> None:
    for k, v in d.items():
        runs.setdefault(f"{prefix}_{k}", []).append(v)


def measure(dst: str, seconds: int, pings: int, runs: Runs) -> None:
    """One round of every figure, A to B."""
    iperf_server(B)
    add_runs(runs, "tcp1", tcp(dst, seconds, 1))
    add_runs(runs, "tcp4", tcp(dst, seconds, 4))
    add_runs(runs, "udp64", udp(dst, seconds, 64))
    add_runs(runs, "udp1400", udp(dst, seconds, 1400))
    add_runs(runs, "ping", latency(dst, pings))


# the underlay as a router's NIC has it: the sender segments in software
# (no TSO, no tunnel segmentation offload), the receiver merges with GRO
NIC_LIKE = {"bench0": ("tso", "off", "tx-udp_tnl-segmentation", "off",
                       "tx-udp_tnl-csum-segmentation", "off", "tx-ipxip4-segmentation", "off",
                       "tx-ipxip6-segmentation", "off"),
            "bench1": ("gro", "on")}


def measure_nic(dst: str, seconds: int, runs: Runs) -> None:
    """One round of one TCP stream, A to B, over a NIC-like underlay (last
    in a round: the underlay stays so until the next topology)."""
    for ns, dev in ((A, "bench0"), (B, "bench1")):
        nsx(ns, "ethtool", "-K", dev, *NIC_LIKE[dev])
    add_runs(runs, "tcp1", tcp(dst, seconds, 1))  # to measure()'s iperf3 server in B


def measure_forward(dst: str, seconds: int, runs: Runs) -> None:
    """One round of the same traffic from the LAN behind A to the LAN behind B."""
    iperf_server(LB)
    add_runs(runs, "tcp1", tcp(dst, seconds, 1, sender=LA))
    add_runs(runs, "udp64", udp(dst, seconds, 64, sender=LA))
    add_runs(runs, "udp1400", udp(dst, seconds, 1400, sender=LA))


# forwarded in --quick too, so that the forwarding set-up cannot rot
QUICK_FORWARD = ("raw", "ipudp4", "multi1", "ipip")


# per-packet profile of these (UDP 64 B, A -> B), in two traced runs:
#  1. the functions that carry a packet through the tunnel on the way out
#     (the device's ndo_start_xmit) and in (the decapsulating receive);
#  2. the IP protocol handlers the receive goes through, outer and inner
#     alike: the same scope for each peer (ipudp: udp_rcv for the outer
#     datagram, decapsulation included, and for the inner one; ipip:
#     tunnel4_rcv, then udp_rcv for the inner datagram)
_IPUDP_PASSES = (("ipudp_xmit", "ipudp_encap_recv"), ("udp_rcv",))
PROFILED = {"ipudp4": _IPUDP_PASSES, "ipudp4-base": _IPUDP_PASSES,
            "ipip": (("ipip_tunnel_xmit", "ipip_rcv"), ("tunnel4_rcv", "udp_rcv"))}
# where one TCP stream's time goes (A to B, data and ACKs alike), per MB of
# payload: the device's transmit (a tunnel's includes the underlay's IP
# output and veth_xmit), the backlog's receive from veth (raw: the whole
# receive; a tunnel: the outer packet up to decapsulation) and a tunnel's
# GRO cell, which delivers the inner packet (GRO, IP, TCP)
_TUNNEL_RECEIVE = ("process_backlog", "gro_cell_poll")
TCP_PROFILED = {"raw": ("veth_xmit", "process_backlog"),
                "ipudp4": ("ipudp_xmit", *_TUNNEL_RECEIVE),
                "ipudp4-base": ("ipudp_xmit", *_TUNNEL_RECEIVE),
                "ipip": ("ipip_tunnel_xmit", *_TUNNEL_RECEIVE)}
TCP_PROFILE_SECONDS = 2
TRACEFS = Path("/sys/kernel/tracing")
PROFILE_PACKETS = 2000
GRAPH_LINE = re.compile(r"^\s*\d+\)\s+(?:[-+!#*@$]\s*)?(?:([\d.]+) us\s+)?\|(\s*)(.*?)\s*$")


def _tracefs(name: str, value: str) -> None:
    try:
        (TRACEFS / name).write_text(value + "\n")
    except OSError as e:
        raise RuntimeError(f"writing {value!r} to {TRACEFS / name}: {e.strerror}") from None


def parse_graph(text: str) -> dict[str, dict[str, Any]]:
    """Per root function of a depth-2 function_graph trace (funcgraph-tail):
    its calls, µs per call, and its direct callees' calls and µs per root call."""
    roots: dict[str, dict[str, Any]] = {}
    stack: list[str] = []
    for line in text.splitlines():
        m = GRAPH_LINE.match(line)
        if not m:
            continue
        dur, indent, body = m[1], len(m[2]), m[3]
        depth = max(0, (indent - 1) // 2)
        if body.endswith("{"):
            name = body.split("(", 1)[0].split(" [", 1)[0]
            del stack[depth:]
            stack.append(name)
            continue
        if body.startswith("}"):
            name = body.split("/*", 1)[1].split("*/", 1)[0].strip() if "/*" in body else ""
        else:
            name = body.split("(", 1)[0]
        name = name.split(" [", 1)[0]  # "ipudp_xmit [ipudp]": a module's function
        if dur is None:
            continue
        if depth == 0:
            r = roots.setdefault(name, {"calls": 0, "us": 0.0, "callees": {}})
            r["calls"] += 1
            r["us"] += float(dur)
            del stack[:]
        elif depth == 1 and stack:
            r = roots.setdefault(stack[0], {"calls": 0, "us": 0.0, "callees": {}})
            c = r["callees"].setdefault(name, [0, 0.0])
            c[0] += 1
            c[1] += float(dur)
    out = {}
    for name, r in roots.items():
        n = r["calls"] or 1
        callees = sorted(r["callees"].items(), key=lambda kv: -kv[1][1])
        out[name] = {"calls": r["calls"], "us_per_call": r["us"] / n,
                     "callees": [{"function": f, "calls_per_call": c / n, "us_per_call": t / n}
                                 for f, (c, t) in callees[:12]]}
    return out


def profile(name: str, dst: str) -> dict[str, Any]:
    """Where a packet's time goes, A to B, UDP 64 B: function_graph (depth 2)
    on the functions of each of PROFILED[name]'s passes, during
    PROFILE_PACKETS packets each.  Counted and timed per call, so TCG's skew
    of sampling (the timer lands in the idle loop) does not apply; the
    tracer's own cost is in every figure, alike for each peer."""
    functions: dict[str, Any] = {}
    packets = 0
    for roots in PROFILED[name]:
        found, d = _trace(roots, lambda: iperf(dst, None, "-u", "-b", "0", "-l", "64",
                                               "-k", str(PROFILE_PACKETS)))
        packets = int(d["end"]["sum"]["packets"])
        missing = [f for f in roots if f not in found]
        if missing:
            raise RuntimeError(f"profile of {name}: no trace of {', '.join(missing)}")
        functions.update({f: found[f] for f in roots})
    return {"packets": packets, "tracer": "function_graph, depth 2",
            "functions": functions}


def profile_tcp(name: str, dst: str) -> dict[str, Any]:
    """Where a TCP stream's time goes, A to B: function_graph (depth 2) on
    TCP_PROFILED[name] during TCP_PROFILE_SECONDS of one stream; calls and
    µs per MB of payload received."""
    roots = TCP_PROFILED[name]
    found, d = _trace(roots, lambda: iperf(dst, TCP_PROFILE_SECONDS))
    missing = [f for f in roots if f not in found]
    if missing:
        raise RuntimeError(f"TCP profile of {name}: no trace of {', '.join(missing)}")
    mb = d["end"]["sum_received"]["bytes"] / 1e6
    return {"mb": round(mb, 1), "seconds": TCP_PROFILE_SECONDS,
            "tracer": "function_graph, depth 2",
            "functions": {f: {"calls_per_mb": found[f]["calls"] / mb,
                              "us_per_mb": found[f]["calls"] * found[f]["us_per_call"] / mb,
                              "callees": found[f]["callees"]} for f in roots}}


@contextlib.contextmanager
def function_graph() -> Iterator[None]:
    """function_graph (depth 2) as the current tracer for the block, with
    nothing recorded until _trace.  Switched on and off once for all the
    profiles: each switch rewrites every kernel function's entry, and under
    TCG a rewrite can race the other vCPU (an int3 Oops seen here when each
    profile pass switched it)."""
    if not (TRACEFS / "trace").exists():
        sh("mount", "-t", "tracefs", "nodev", str(TRACEFS))
    _tracefs("tracing_on", "0")
    _tracefs("current_tracer", "nop")
    _tracefs("buffer_size_kb", "32768")
    # never empty while the tracer runs: empty means every function
    _tracefs("set_graph_function", "veth_xmit")
    _tracefs("max_graph_depth", "2")
    # the tracer's own options exist only while it is the current tracer
    _tracefs("current_tracer", "function_graph")
    try:
        for option in ("funcgraph-tail", "nofuncgraph-irqs", "funcgraph-duration"):
            _tracefs("trace_options", option)
        yield
    finally:
        _tracefs("tracing_on", "0")
        _tracefs("current_tracer", "nop")
        _tracefs("set_graph_function", "")
        _tracefs("trace", "")


def _trace(roots: tuple[str, ...], traffic: Callable[[], dict[str, Any]]
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inside function_graph(): the graph of ``roots`` while ``traffic``
    runs, parsed, and iperf3's report."""
    _tracefs("set_graph_function", " ".join(roots))
    _tracefs("trace", "")
    _tracefs("tracing_on", "1")
    try:
        d = traffic()
    finally:
        _tracefs("tracing_on", "0")
    # one CPU's calls at a time: the merged "trace" interleaves the CPUs'
    # lines, which would put one CPU's calls inside another's
    text = "\n".join(p.read_text() for p in sorted(TRACEFS.glob("per_cpu/cpu*/trace")))
    return parse_graph(text), d


def profile_all(chosen: list[tuple[str, str, Callable[[], str]]],
                entries: dict[str, dict[str, Any]]) -> None:
    """The profiles of the chosen scenarios that have them, after the
    measured rounds (the tracer's hooks slow every kernel function)."""
    todo = [(n, setup) for n, _, setup in chosen
            if (n in PROFILED or n in TCP_PROFILED) and "error" not in entries[n]]
    if not todo:
        return
    with function_graph():
        for name, setup in todo:
            topology()
            try:
                dst = setup()
                iperf_server(B)
                if name in PROFILED:
                    entries[name]["profile"] = profile(name, dst)
                if name in TCP_PROFILED:
                    entries[name]["tcp_profile"] = profile_tcp(name, dst)
            except Exception as e:  # reported beside the measured figures
                entries[name]["profile_error"] = f"{type(e).__name__}: {e}"
            finally:
                teardown()
            print(f"bench: profile {name}: {entries[name].get('profile_error') or 'ok'}",
                  flush=True)


# -- scale, footprint ---------------------------------------------------------------

def slab_kib() -> int:
    sh("sh", "-c", "echo 2 > /proc/sys/vm/drop_caches")
    time.sleep(0.5)
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["Slab"].split()[0])


def scale(counts: list[int], seconds: int, reps: int) -> list[dict[str, Any]]:
    out = []
    for n in counts:
        topology()
        try:
            base = slab_kib()
            for ns, i in ((A, 0), (B, 1)):
                nsx(ns, "ip", "link", "add", "t0", "type", "ipudp")
                with Ipudp(netns=ns) as k:
                    k.set_mode("t0", "multi")
                    k.set_tunnel("t0", UNDER4[1 - i], local=UNDER4[i], tunnel_id=1)
                    k.add_rule("t0", f"{OVER4[1 - i]}/32", 1)
                    if ns == A:
                        t0 = time.monotonic()
                        k.add_tunnels("t0", [Tunnel(str(ipaddress.IPv4Address("100.64.0.0")
                                                        + j), id=j + 2) for j in range(n - 1)])
                        t_tun = time.monotonic() - t0
                        mid = slab_kib()
                        t0 = time.monotonic()
                        k.add_rules("t0", [Rule(f"{ipaddress.IPv4Address('172.16.0.0') + j}/32",
                                                j // 10 + 2) for j in range((n - 1) * 10)])
                        t_rules = time.monotonic() - t0
                        end = slab_kib()
                overlay(ns, "t0", i)
            runs: Runs = {}
            for _ in range(reps):
                measure(OVER4[1], seconds, 100, runs)
            m = {k: summary(v) for k, v in runs.items()}
            out.append({"tunnels": n, "rules": n * 10, "install_tunnels_s": t_tun,
                        "install_rules_s": t_rules,
                        "slab_bytes_per_tunnel": (mid - base) * 1024 / max(1, n - 1),
                        "slab_bytes_per_rule": (end - mid) * 1024 / max(1, (n - 1) * 10),
                        "tcp1_mbit_s": m["tcp1_mbit_s"]["median"],
                        "ping_median_us": m["ping_median_us"]["median"]})
        finally:
            teardown()
    return out



NODE_CONF = """
config agent 'agent'
	option enabled '1'
	option role 'client'
	option state_dir '{d}/node-state'
config client 'client'
	option server '{server}'
	option server_name 'srv'
	option ca '{d}/pki/ca.pem'
	option cert '{d}/pki/issued/node-idle.pem'
	option key '{d}/pki/issued/node-idle.key'
"""
NODE_KEEPALIVE = 5   # s, the server's keepalive option in this bench
NODE_IDLE_S = 60     # s of idle time counted


def node_idle(d: Path) -> dict[str, Any]:
    """One MicroPython node joined and idle: its wake-ups (the agent's own
    loop count from status.json, and the process's voluntary context
    switches) per keepalive interval, and its heap."""
    import bench_join

    from lvn import pki

    pki.issue(d / "pki", "node-idle")
    (d / "node").mkdir()
    (d / "node" / "lvn").write_text(NODE_CONF.format(d=d, server=UNDER4[0]))
    log = open(d / "node" / "log", "wb")
    micropython = str(Path(sys.executable).parent / "micropython")
    COMMANDS.append(f"micropython -X heapsize=1M -m lvn.node (in {B}), idle {NODE_IDLE_S} s")
    node = subprocess.Popen(["ip", "netns", "exec", B, micropython, "-X", "heapsize=1M", "-m",
                             "lvn.node", "--control", str(d / "node" / "control.sock"),
                             str(d / "node" / "lvn")],
                            env=dict(os.environ, MICROPYPATH=f".frozen:{ROOT}"), stdout=log,
                            stderr=log)
    status = d / "node-state" / "status.json"

    def state() -> dict[str, Any]:
        try:
            st: dict[str, Any] = json.loads(status.read_text())
            return st
        except (OSError, ValueError):
            return {}

    try:
        deadline = time.monotonic() + 120
        while (state().get("peers") or [{}])[0].get("state") != "up":
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError("the node did not join: "
                                   + (d / "node" / "log").read_text()[-300:])
            time.sleep(0.5)
        time.sleep(NODE_KEEPALIVE)  # the first keepalive after the join
        w0, p0 = state()["node"]["wakeups"], bench_join.proc_stats(node.pid)
        time.sleep(NODE_IDLE_S)
        st, p1 = state(), bench_join.proc_stats(node.pid)
        intervals = NODE_IDLE_S / NODE_KEEPALIVE
        return {"keepalive_s": NODE_KEEPALIVE, "idle_s": NODE_IDLE_S,
                "agent_wakeups_per_keepalive": (st["node"]["wakeups"] - w0) / intervals,
                "process_wakeups_per_keepalive": (p1["wakeups"] - p0["wakeups"]) / intervals,
                "cpu_s_per_min": (p1["cpu_s"] - p0["cpu_s"]) * 60 / NODE_IDLE_S,
                "heap_peak": st["node"].get("heap_peak"), "heap_used": st["node"].get("heap_used"),
                "rss_kib_in_cpython": p1["rss_kib"]}
    finally:
        node.terminate()
        node.wait(timeout=30)
        log.close()


# OpenWrt's own MicroPython builds (scripts/setup-deps.sh; tests/upy.py):
# 24.10's 1.23.0, and main's 1.28.0 without its TLS-breaking define
NODE_RUNTIMES = {"1.23.0": "host-mbedtls", "1.28.0": "host-mbedtls-nocfgdefine"}
# the OpenWrt release whose package (byte code by its own mpy-cross) each runs
NODE_PACKAGES = {"1.23.0": "24.10", "1.28.0": "main"}
NODE_HEAPS = ("1M", "640K", "512K", "448K", "384K", "256K")


def _memory(pid: int) -> dict[str, int] | None:
    """VmRSS, VmHWM and RssAnon (private) of a process, KiB; None: it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return None
    status = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmRSS" not in status:  # a zombie
        return None
    return {k: int(status[k].split()[0]) for k in ("VmRSS", "VmHWM", "RssAnon")}


def node_memory(d: Path) -> dict[str, Any]:
    """The node on each OpenWrt release's MicroPython, with each heap size:
    whether it joins, its memory idle after the join and after a rejoin
    (a changed configuration), and the node package's installed size."""
    from lvn import nodecontrol

    out: dict[str, Any] = {"runs": []}
    conf_text = NODE_CONF.format(d=d, server=UNDER4[0])
    for release, variant in NODE_RUNTIMES.items():
        binary = ROOT / "build" / "upy" / release / variant / "micropython"
        if not binary.exists():
            out["runs"].append({"release": release, "error": f"{binary} not built"})
            continue
        # the code as the package installs it: .mpy byte code (from source
        # when OpenWrt's build of the feed has not run)
        ipk = ROOT / "build" / "owrt-feed" / NODE_PACKAGES[release] / "ipk" / "lvn_0.1.0-r1_all.ipk"
        code, code_path = "source", str(ROOT)
        if ipk.exists():
            code, code_path = "mpy", str(_unpack_data(ipk, d / f"pkg-{release}") /
                                         "usr" / "lib" / "lvn" / "mpy")
        for heap in NODE_HEAPS:
            run = d / f"node-{release}-{heap}"
            run.mkdir()
            conf = run / "lvn"
            conf.write_text(conf_text.replace(f"{d}/node-state", f"{run}/state"))
            control = str(run / "control.sock")
            log = open(run / "log", "wb")
            node = subprocess.Popen(["ip", "netns", "exec", B, str(binary), "-X",
                                     f"heapsize={heap}", "-m", "lvn.node", "--control", control,
                                     str(conf)],
                                    env=dict(os.environ, MICROPYPATH=f".frozen:{code_path}"),
                                    stdout=log, stderr=log)
            row: dict[str, Any] = {"release": release, "heap": heap, "code": code}
            try:
                row["joined"] = _joins(run / "log", node, 1)
                if row["joined"]:
                    time.sleep(NODE_KEEPALIVE)  # a keepalive after the join
                    row["idle"] = _memory(node.pid)
                    conf.write_text(conf_text.replace(f"{d}/node-state", f"{run}/state")
                                    + "\toption keepalive '7'\n")
                    nodecontrol.call(control, "reload", {})
                    row["rejoined"] = _joins(run / "log", node, 2)
                    time.sleep(NODE_KEEPALIVE)  # and one after the rejoin
                    row["after_rejoin"] = _memory(node.pid)
                # a heap too small fails at import, at the join, or later
                row["survived"] = node.poll() is None
                if not row["survived"] or not row.get("rejoined"):
                    row["log_tail"] = (run / "log").read_text(errors="replace")[-1200:]
            finally:
                node.terminate()
                node.wait(timeout=30)
                log.close()
            out["runs"].append(row)
            print(f"bench: node memory: {row}", flush=True)
    for release in ("24.10", "main"):
        ipk = ROOT / "build" / "owrt-feed" / release / "ipk" / "lvn_0.1.0-r1_all.ipk"
        if ipk.exists():
            out[f"installed_size_{release}"] = _installed_size(ipk)
    return out


def _joins(log: Path, node: subprocess.Popen[bytes], n: int) -> bool:
    """Whether the node's log says "tunnel up" ``n`` times within 120 s."""
    deadline = time.monotonic() + 120
    while log.read_bytes().count(b"tunnel up") < n:
        if time.monotonic() > deadline or node.poll() is not None:
            return False
        time.sleep(0.5)
    return True


def _ipk_member(ipk: Path, name: str) -> bytes:
    """One member of an ipk (a tar.gz of tar.gz files) built by OpenWrt's rules."""
    import tarfile

    with tarfile.open(ipk) as outer:
        member = outer.extractfile(name)
        assert member is not None
        return member.read()


def _installed_size(ipk: Path) -> int:
    """The Installed-Size field of an ipk built by OpenWrt's rules."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(_ipk_member(ipk, "./control.tar.gz"))) as ctrl:
        control = ctrl.extractfile("./control")
        assert control is not None
        text = control.read().decode()
    return int(re.search(r"^Installed-Size: (\d+)", text, re.M).group(1))  # type: ignore[union-attr]


def _unpack_data(ipk: Path, root: Path) -> Path:
    """The files an ipk installs, unpacked under ``root``."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(_ipk_member(ipk, "./data.tar.gz"))) as data:
        if hasattr(tarfile, "data_filter"):  # 3.11.4 on; and the default from 3.14
            data.extractall(root, filter="data")
        else:
            data.extractall(root)  # noqa: S202 (our own package)
    return root


def control_plane(counts: list[int]) -> dict[str, Any]:
    """N clients join one server agent; its RSS, CPU and idle wake-ups."""
    import resource

    import bench_join

    from lvn import pki

    resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    d = Path(tempfile.mkdtemp())
    pki.init(d / "pki")
    pki.issue(d / "pki", "srv", role="server")
    t0 = time.monotonic()
    certs = bench_join.issue_clients(d / "pki", sum(counts))
    out: dict[str, Any] = {"issue_certificates_s_each": (time.monotonic() - t0) / len(certs),
                           "rounds": []}
    (d / "lvn").write_text(bench_join.SERVER_CONF.format(d=d, state=d / "state",
                                                         keepalive=NODE_KEEPALIVE, extra=""))
    topology()
    log = open(d / "log", "wb")
    COMMANDS.append(f"lvn agent -c {d} (server, in {A})")
    srv = subprocess.Popen(["ip", "netns", "exec", A, sys.executable, "-m", "lvn", "agent",
                            "-c", str(d), "--state", str(d / "static.json")],
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while b"server listening" not in (d / "log").read_bytes():
            if time.monotonic() > deadline or srv.poll() is not None:
                raise RuntimeError("the server agent did not start: "
                                   + (d / "log").read_text()[-300:])
            time.sleep(0.2)
        pid = int(sh("pgrep", "-f", f"lvn agent -c {d}").split()[0])
        time.sleep(2)
        s0 = bench_join.proc_stats(pid)
        time.sleep(10)
        s1 = bench_join.proc_stats(pid)
        out["idle_rss_kib"] = s1["rss_kib"]
        out["idle_wakeups_per_s"] = (s1["wakeups"] - s0["wakeups"]) / 10
        out["idle_cpu_s_per_min"] = (s1["cpu_s"] - s0["cpu_s"]) * 6
        out["node_idle"] = node_idle(d)
        print(f"bench: idle node: {out['node_idle']}", flush=True)
        out["node_memory"] = node_memory(d)
        start = 0
        for n in counts:
            before = bench_join.proc_stats(pid)
            with in_netns(B):
                r = bench_join.join(d / "pki", certs[start:start + n], UNDER4[0], 50000,
                                    timeout=300)
            start += n
            after = bench_join.proc_stats(pid)
            r["server_cpu_s"] = after["cpu_s"] - before["cpu_s"]
            r["server_rss_kib_after"] = after["rss_kib"]
            with Ipudp(netns=A) as k:
                r["server_tunnels_after"] = len(k.tunnels("lvn0"))
            out["rounds"].append(r)
            print(f"bench: {n} clients: {r}", flush=True)
        if srv.poll() is not None:
            raise RuntimeError(f"the server agent exited ({srv.returncode})")
    except Exception:
        print("bench: server log (tail):\n" + (d / "log").read_text(errors="replace")[-3000:],
              flush=True)
        raise
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        log.close()
        teardown()
    return out


def footprint() -> dict[str, Any]:
    ko = Path(os.environ.get("LVN_KMOD", ""))
    out: dict[str, Any] = {}
    if ko.is_file():
        stripped = Path(tempfile.mkdtemp()) / "ipudp.ko"
        sh("objcopy", "--strip-debug", str(ko), str(stripped))
        out["ipudp_ko_bytes"] = ko.stat().st_size
        out["ipudp_ko_stripped_bytes"] = stripped.stat().st_size
    lvn_files = [p for p in (ROOT / "lvn").glob("*.py")]
    out["lvn_python_bytes"] = sum(p.stat().st_size for p in lvn_files)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name, code in (("import_lvn_agent_s", "import lvn.agent"),
                       ("import_lvn_protocol_core_s", "import lvn.protocol, lvn.session")):
        best = min(_timed([sys.executable, "-c", code], env) for _ in range(3))
        out[name] = best
    out["cli_help_s"] = min(_timed([sys.executable, "-m", "lvn", "--help"], env)
                            for _ in range(3))
    out["python_startup_s"] = min(_timed([sys.executable, "-c", "pass"], env)
                                  for _ in range(3))
    out.update(node_footprint())
    return out


# the fault suite's scenarios and the figures each writes (docs/testing.md)
RELIABILITY = {"tests/kernel/test_faults.py": "faults.json",
               "tests/kernel/test_nat.py": "nat.json",
               "tests/kernel/test_floods.py": "floods.json"}


MOVES = 500              # endpoint moves a round
MOVE_EVENTS = ("kmem/kmalloc", "kmem/kmem_cache_alloc", "percpu/percpu_alloc_percpu")


def move_cost(reps: int) -> dict[str, Any]:
    """What a NAT rebinding costs the kernel: MOVES moves of one tunnel's
    endpoint (IPUDP_F_REPLACE, same id, a new port each time) through the
    library, timed, with the allocations made meanwhile counted by the
    kmem and percpu trace events: those whose call site is in ipudp, and
    the per-CPU ones (a dst_cache's, made from dst_cache_init).  For this
    build and, with LVN_KMOD_BASE, the base build, in interleaved rounds."""
    if not (TRACEFS / "trace").exists():
        sh("mount", "-t", "tracefs", "nodev", str(TRACEFS))
    variants = [v for v in MODULES if os.environ.get(MODULES[v])]
    runs: dict[str, dict[str, list[float]]] = {
        v: {"move_us": [], "module_allocs_per_move": [], "percpu_allocs_per_move": []}
        for v in variants}
    ns = "bench-move"
    for _ in range(reps):
        for variant in variants:
            use_module(variant)
            sh("ip", "netns", "add", ns)
            try:
                nsx(ns, "ip", "link", "add", "u0", "type", "dummy")
                nsx(ns, "ip", "addr", "add", "10.98.0.1/24", "dev", "u0")
                nsx(ns, "ip", "link", "set", "u0", "up")
                nsx(ns, "ip", "link", "add", "t0", "type", "ipudp")
                with Ipudp(netns=ns) as k:
                    k.set_tunnel("t0", "10.98.0.2", remote_port=40000, tunnel_id=1)
                    _tracefs("trace", "")
                    for event in MOVE_EVENTS:
                        _tracefs(f"events/{event}/enable", "1")
                    _tracefs("tracing_on", "1")
                    t0 = time.perf_counter()
                    for i in range(MOVES):
                        k.set_tunnel("t0", "10.98.0.2", remote_port=40001 + i,
                                     tunnel_id=1, replace=True)
                    took = time.perf_counter() - t0
                    _tracefs("tracing_on", "0")
                    for event in MOVE_EVENTS:
                        _tracefs(f"events/{event}/enable", "0")
                    lines = (TRACEFS / "trace").read_text(errors="replace").splitlines()
                    _tracefs("trace", "")
            finally:
                sh("ip", "netns", "del", ns)
            r = runs[variant]
            r["move_us"].append(took / MOVES * 1e6)
            r["module_allocs_per_move"].append(
                sum("[ipudp]" in ln and "call_site=" in ln for ln in lines) / MOVES)
            r["percpu_allocs_per_move"].append(
                sum("percpu_alloc_percpu:" in ln for ln in lines) / MOVES)
    COMMANDS.append(f"{MOVES} endpoint moves of one tunnel a round, {reps} rounds, "
                    "kmem/percpu trace events on")
    return {"moves": MOVES, "rounds": reps,
            **{"ipudp" + v: {k: summary(x) for k, x in r.items()} for v, r in runs.items()}}


def reliability() -> dict[str, Any]:
    """The fault scenarios, once each, side by side as in make test: the
    times to detect and recover, the joins and answers under the floods."""
    out = ROOT / "build" / "vm" / platform.release()
    for name in RELIABILITY.values():
        (out / name).unlink(missing_ok=True)
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "-n", str(len(RELIABILITY)), *RELIABILITY], cwd=ROOT)
    figures = {Path(name).stem: json.loads((out / name).read_text())
               for name in RELIABILITY.values() if (out / name).exists()}
    if res.returncode != 0:
        raise RuntimeError(f"the fault scenarios failed (pytest exit {res.returncode}); "
                           f"figures of: {', '.join(figures) or 'none'}")
    return figures


# the modules a MicroPython node imports (lvn.node and what it needs)
def _node_modules() -> list[str]:
    """The node package's modules: LVN_NODE_MODULES of feed/lvn/Makefile."""
    text = (ROOT / "feed" / "lvn" / "Makefile").read_text().replace("\\\n", " ")
    m = re.search(r"^LVN_NODE_MODULES:=(.*)$", text, re.M)
    if m is None:
        raise RuntimeError("feed/lvn/Makefile has no LVN_NODE_MODULES")
    return m.group(1).split()


NODE_MODULES = _node_modules()
_NODE_IMPORT = ("import gc, micropython\ngc.collect()\nimport lvn.node\ngc.collect()\n"
                "print(micropython.mem_peak(), gc.mem_alloc())\n")


def node_footprint() -> dict[str, Any]:
    """The MicroPython node's code as source and as mpy-cross byte code:
    bytes on flash, and the heap its import takes (peak, and still used)."""
    bindir = Path(sys.executable).parent
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as run:
        (Path(tmp) / "lvn").mkdir()
        for m in NODE_MODULES:
            sh(str(bindir / "mpy-cross"), "-O3", "-o", f"{tmp}/lvn/{m}.mpy",  # as packaged
               str(ROOT / "lvn" / f"{m}.py"))
        out["node_py_bytes"] = sum((ROOT / "lvn" / f"{m}.py").stat().st_size for m in NODE_MODULES)
        out["node_mpy_bytes"] = sum((Path(tmp) / "lvn" / f"{m}.mpy").stat().st_size
                                    for m in NODE_MODULES)
        script = Path(run) / "import.py"  # its directory comes first in sys.path
        script.write_text(_NODE_IMPORT)
        for kind, path in (("py", str(ROOT)), ("mpy", tmp)):
            env = dict(os.environ, MICROPYPATH=f".frozen:{path}")
            res = subprocess.run([str(bindir / "micropython"), "-X", "heapsize=1M", str(script)],
                                 env=env, capture_output=True, text=True, check=True, cwd=run)
            peak, used = (int(x) for x in res.stdout.split())
            out[f"node_import_heap_peak_{kind}"] = peak
            out[f"node_import_heap_used_{kind}"] = used
    return out


def _timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--quick", action="store_true", help="one short run of each scenario")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--joins", help="comma-separated client counts for the control plane")
    ap.add_argument("--control-plane", action="store_true",
                    help="measure only the control plane, into an existing OUT")
    ap.add_argument("--two-servers", type=int, metavar="N",
                    help="measure only two servers sharing etcd with N clients, into OUT")
    ap.add_argument("--reps", type=int, help="rounds (default 3; --quick: 1)")
    ap.add_argument("--no-profile", action="store_true",
                    help="no per-packet profile (function_graph)")
    ap.add_argument("--profile", action="store_true",
                    help="the per-packet profile in --quick too (make test's smoke run)")
    args = ap.parse_args()
    reps, seconds, pings = (1, 1, 20) if args.quick else (3, 3, 200)
    reps = args.reps or reps
    counts = [1, 100] if args.quick else [1, 100, 1000, 10000]
    joins = [2, 5] if args.quick else [10, 100, 1000]
    if args.joins:
        joins = [int(n) for n in args.joins.split(",")]
    sh("sysctl", "-qw", "kernel.printk=3 3 3 3", check=False)
    if not Path("/sys/module/ipudp").is_dir():
        sh("insmod", os.environ["LVN_KMOD"])
    global _loaded
    _loaded = os.environ["LVN_KMOD"]
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "kernel": platform.release(), "cpus": os.cpu_count(),
        # LVN_BENCH_QEMU: what runs the guest, where /proc/cpuinfo cannot tell
        "qemu": os.environ.get("LVN_BENCH_QEMU") or (
            "TCG (no KVM)" if "hypervisor" in Path("/proc/cpuinfo").read_text() else "?"),
        "quick": args.quick, "reps": reps, "seconds": seconds, "pings": pings,
        "only": args.only or "",
        "scenarios": {}, "scale": [], "footprint": {}, "commands": COMMANDS,
    }
    only = set(args.only.split(",")) if args.only else None
    started = time.monotonic()

    def save() -> None:
        """The result so far, after every stage: a stage that fails (or a
        run that is killed) loses only what it was measuring."""
        result["total_wall_s"] = round(time.monotonic() - started)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, (json.dumps(result, indent=1) + "\n").encode())

    def stage(key: str, fn: Callable[[], Any], store: bool = True) -> None:
        """``result[key] = fn()`` (just ``fn()`` without ``store``); a failure
        is recorded in failed_stages under ``key``."""
        try:
            value = fn()
            if store:
                result[key] = value
        except Exception as e:  # noqa: BLE001 - reported, and the next stage runs
            traceback.print_exc()
            result.setdefault("failed_stages", {})[key] = f"{type(e).__name__}: {e}"
            print(f"bench: stage {key} FAILED: {type(e).__name__}: {e}", flush=True)
        save()
    if args.two_servers:
        import bench_servers
        if args.out.exists():
            result = json.loads(args.out.read_text())
            result.get("failed_stages", {}).pop("two_servers", None)
        else:
            result["only"] = "two_servers"  # a partial result (the report says so)
        stage("two_servers", lambda: bench_servers.two_servers(args.two_servers))
        return 1 if "two_servers" in result.get("failed_stages", {}) else 0
    if args.control_plane:
        result = json.loads(args.out.read_text())
        result.get("failed_stages", {}).pop("control_plane", None)
        stage("control_plane", lambda: control_plane(joins))
        result["commands"] += COMMANDS
        save()
        print(f"bench: control plane written into {args.out}")
        return 1 if "control_plane" in result.get("failed_stages", {}) else 0
    chosen = [(n, w, f) for n, w, f in SCENARIOS if not only or n in only]
    local: dict[str, Runs] = {n: {} for n, _, _ in chosen}
    forward: dict[str, Runs] = {n: {} for n, _, _ in chosen}
    nic: dict[str, Runs] = {n: {} for n, _, _ in chosen}
    entries: dict[str, dict[str, Any]] = {n: {"what": w, "wall_s": 0.0} for n, w, _ in chosen}
    # rounds interleave the peers: each figure's spread then includes the
    # machine's drift over the whole run, the same for every peer
    for rnd in range(reps):
        for name, _, setup in chosen:
            entry = entries[name]
            if "error" in entry:
                continue
            t0 = time.monotonic()
            topology()
            try:
                dst = setup()
                measure(dst, seconds, pings, local[name])
                if "forward_error" not in entry and (not args.quick or name in QUICK_FORWARD):
                    try:
                        measure_forward(forward_topology(dst), seconds, forward[name])
                    except Exception as e:  # reported beside the local figures
                        entry["forward_error"] = f"{type(e).__name__}: {e}"
                if "nic_error" not in entry and (not args.quick or name in QUICK_FORWARD):
                    try:
                        measure_nic(dst, seconds, nic[name])
                    except Exception as e:  # reported beside the local figures
                        entry["nic_error"] = f"{type(e).__name__}: {e}"
            except Exception as e:  # a peer that cannot be set up is reported, not fatal
                entry["error"] = f"{type(e).__name__}: {e}"
            finally:
                teardown()
            entry["wall_s"] = round(entry["wall_s"] + time.monotonic() - t0, 1)
            print(f"bench: round {rnd + 1}/{reps} {name}: {entry.get('error') or 'ok'}",
                  flush=True)
        summarize(chosen, entries, local, forward, nic, result)
        result["rounds_done"] = rnd + 1
        save()  # the rounds so far, summarized
    if chosen and not args.no_profile and (not args.quick or args.profile):
        stage("profile", lambda: profile_all(chosen, entries), store=False)
        summarize(chosen, entries, local, forward, nic, result)
    if not only or "moves" in only:
        stage("moves", lambda: move_cost(reps))
    if not only:
        stage("scale", lambda: scale(counts, seconds, 1))
        stage("footprint", footprint)
        stage("control_plane", lambda: control_plane(joins))
        import bench_servers
        stage("two_servers", lambda: bench_servers.two_servers(20 if args.quick else 100))
    if not only or "reliability" in only:
        stage("reliability", reliability)
    save()
    failed = result.get("failed_stages", {})
    print(f"bench: wrote {args.out}" + (f"; failed stages: {', '.join(failed)}" if failed
                                         else ""))
    return 1 if failed else 0


def summarize(chosen: list[tuple[str, str, Callable[[], str]]],
              entries: dict[str, dict[str, Any]], local: dict[str, Runs],
              forward: dict[str, Runs], nic: dict[str, Runs], result: dict[str, Any]) -> None:
    """Each scenario's figures so far (median, spread) into ``result``."""
    for name, _, _ in chosen:
        entry = entries[name]
        if "error" not in entry and local[name]:
            entry["metrics"] = {k: summary(v) for k, v in local[name].items()}
            if forward[name] and "forward_error" not in entry:
                entry["forward"] = {k: summary(v) for k, v in forward[name].items()}
            if nic[name] and "nic_error" not in entry:
                entry["nic"] = {k: summary(v) for k, v in nic[name].items()}
        result["scenarios"][name] = entry


if __name__ == "__main__":
    sys.exit(main())
