"""Scale: 10,000 tunnels and 100,000 rules on one MULTI device.

Reports (build/vm/scale-<kernel>.json, quoted in docs/testing.md) the time
to add them through the library and the kernel memory they take (slab
delta); checks lookups against the configuration and that deleting the
device gives the memory back.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
import random
import time
from pathlib import Path

import pytest

from lvn.model import Rule, Tunnel
from lvn.netlink import Ipudp

from .netns import Netns, sh

# serial: measures kernel-wide slab memory
pytestmark = pytest.mark.serial

N_TUNNELS = 10_000
RULES_PER_TUNNEL = 10
ROOT = Path(__file__).resolve().parents[2]


def slab_kib() -> int:
    """Kernel slab memory, after letting RCU callbacks free what they can."""
    sh("sh", "-c", "echo 2 > /proc/sys/vm/drop_caches")
    time.sleep(1.0)
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    return int(info["Slab"].split()[0])


def remote(i: int) -> str:
    if i % 2:
        return str(ipaddress.IPv6Address("2001:db8::") + i)
    return str(ipaddress.IPv4Address("100.64.0.0") + i)


def rules_of(i: int) -> list[Rule]:
    """5 IPv4 /32s and 5 IPv6 /64s per tunnel, all distinct."""
    v4 = [Rule(f"{ipaddress.IPv4Address('172.16.0.0') + i * 5 + j}/32", i)
          for j in range(5)]
    v6 = [Rule(f"fd00:{i:x}:{j:x}::/64", i) for j in range(5)]
    return v4 + v6


@pytest.mark.long
def test_ten_thousand_tunnels_hundred_thousand_rules(netns: type[Netns]) -> None:
    ns = netns()
    gc.collect()
    base = slab_kib()
    ns.ip("link", "add", "lvm", "type", "ipudp")
    with Ipudp(netns=ns.name) as k:
        k.set_mode("lvm", "multi")
        tunnels = [Tunnel(remote(i), 50000, id=i) for i in range(1, N_TUNNELS + 1)]
        rules = [r for i in range(1, N_TUNNELS + 1) for r in rules_of(i)]
        t0 = time.monotonic()
        k.add_tunnels("lvm", tunnels)
        t_tunnels = time.monotonic() - t0
        after_tunnels = slab_kib()
        t0 = time.monotonic()
        k.add_rules("lvm", rules)
        t_rules = time.monotonic() - t0
        after_rules = slab_kib()

        dev = k.device("lvm")
        assert (dev.n_tunnels, dev.n_rules) == (N_TUNNELS, N_TUNNELS * RULES_PER_TUNNEL)
        # lookups: random addresses inside and next to the configured prefixes
        rng = random.Random(7)
        for _ in range(300):
            i = rng.randrange(1, N_TUNNELS + 1)
            j = rng.randrange(5)
            assert k.route_get("lvm", str(ipaddress.IPv4Address("172.16.0.0") + i * 5 + j)) == i
            assert k.route_get("lvm", f"fd00:{i:x}:{j:x}::{rng.randrange(1, 1 << 16):x}") == i
        assert k.route_get("lvm", "172.16.0.4") is None  # below tunnel 1's block
        assert k.route_get("lvm", f"fd00:{N_TUNNELS + 1:x}::1") is None
        # a full dump carries every tunnel
        assert len(k.tunnels("lvm")) == N_TUNNELS
    ns.ip("link", "del", "lvm")
    gc.collect()
    end = slab_kib()

    tunnel_bytes = (after_tunnels - base) * 1024 / N_TUNNELS
    rule_bytes = (after_rules - after_tunnels) * 1024 / len(rules)
    report = {
        "kernel": os.uname().release, "cpus": os.cpu_count(),
        "tunnels": N_TUNNELS, "rules": len(rules),
        "add_tunnels_s": round(t_tunnels, 2), "add_rules_s": round(t_rules, 2),
        "slab_kib": {"base": base, "tunnels": after_tunnels, "rules": after_rules,
                     "after_delete": end},
        "bytes_per_tunnel": round(tunnel_bytes), "bytes_per_rule": round(rule_bytes),
    }
    out = ROOT / "build" / "vm" / f"scale-{os.uname().release}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
    # deleting the device returns (nearly) all of it: less than 10 % stays
    assert end - base < 0.1 * (after_rules - base), report


@pytest.mark.long
def test_rule_dump_of_one_tunnel_is_linear(netns: type[Netns]) -> None:
    """The rules of one tunnel dumped at 10,000 and at 100,000: each part
    resumes where the last stopped, so ten times the rules take about ten
    times as long (walking to a position each part made it quadratic).
    Reported in build/vm/rule-dump-<kernel>.json."""
    ns = netns()
    ns.ip("link", "add", "lvm", "type", "ipudp")
    seconds = {}
    with Ipudp(netns=ns.name) as k:
        k.set_mode("lvm", "multi")
        k.set_tunnel("lvm", "100.64.0.1", tunnel_id=1)
        have = 0
        for n in (10_000, 100_000):
            k.add_rules("lvm", [Rule(f"{ipaddress.IPv4Address('10.0.0.0') + i}/32", 1)
                                for i in range(have, n)])
            have = n
            t0 = time.monotonic()
            listed = k.rules("lvm")
            seconds[n] = time.monotonic() - t0
            assert len(listed) == n and len({r.prefix for r in listed}) == n
    report = {"kernel": os.uname().release, "dump_s": seconds,
              "ratio_100k_to_10k": round(seconds[100_000] / seconds[10_000], 1)}
    out = ROOT / "build" / "vm" / f"rule-dump-{os.uname().release}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report))
