"""Stress: tunnels and rules change under traffic in both directions for
30 s, then the module is unloaded with everything live.  Any WARN, BUG,
Oops, lockdep or KASAN report fails the run (checked here and by the VM
harness)."""

from __future__ import annotations

import random
import subprocess
import threading
import time

import pytest

from lvn.model import Rule, Tunnel
from lvn.netlink import Ipudp

from .conftest import OVERLAY4, OVERLAY6, build_pair
from .netns import Netns, sh

# serial: unloads the module at the end
pytestmark = pytest.mark.serial

DURATION = 30.0
BAD = ("WARNING:", "BUG:", "Oops", "general protection", "KASAN", "possible recursive locking",
       "circular locking", "suspicious RCU usage", "refcount_t")


def kernel_log() -> list[str]:
    return sh("dmesg").splitlines()


@pytest.mark.long
def test_churn_under_traffic_then_rmmod(netns: type[Netns]) -> None:
    pair = build_pair(netns, "ipv4")
    a, b = pair.a, pair.b
    # side a: MULTI, tunnel 1 carries the real traffic; the rest is churn
    with a.lvn() as k:
        k.del_tunnel("lvn0")
        k.set_mode("lvn0", "multi")
        k.set_tunnel("lvn0", "10.99.0.2", local="10.99.0.1", tunnel_id=1)
        k.add_rules("lvn0", [Rule(f"{OVERLAY4[1]}/32", 1), Rule(f"{OVERLAY6[1]}/128", 1)])
    log_start = len(kernel_log())
    floods = [a.ns.popen("ping", "-f", "-q", "-w", str(int(DURATION)), OVERLAY4[1],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT),
              b.ns.popen("ping", "-6", "-f", "-q", "-w", str(int(DURATION)), OVERLAY6[0],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
    stop = time.monotonic() + DURATION
    rounds = {"churn": 0, "replace": 0}
    errors: list[BaseException] = []

    def churn() -> None:
        rnd = random.Random(3)
        try:
            with Ipudp(netns=a.ns.name) as k:
                while time.monotonic() < stop:
                    ids = list(range(100, 100 + rnd.randrange(10, 60)))
                    k.add_tunnels("lvn0", [Tunnel(f"10.98.{rnd.randrange(250)}.{i}", id=i)
                                           for i in ids])
                    k.add_rules("lvn0", [Rule(f"10.{i}.{j}.0/24", i) for i in ids
                                         for j in range(4)])
                    # the live tunnel's rule moves away and back
                    k.del_rule("lvn0", f"{OVERLAY4[1]}/32", 1)
                    k.add_rule("lvn0", f"{OVERLAY4[1]}/32", 1)
                    k.del_tunnels("lvn0", ids)
                    rounds["churn"] += 1
        except BaseException as e:  # reported below
            errors.append(e)

    def replace() -> None:
        try:
            with Ipudp(netns=a.ns.name) as k:
                while time.monotonic() < stop:
                    k.set_tunnel("lvn0", "10.99.0.2", local="10.99.0.1", tunnel_id=1,
                                 replace=True)
                    rounds["replace"] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=churn), threading.Thread(target=replace)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DURATION + 60)
    outputs = [f.communicate(timeout=60)[0].decode() for f in floods]
    assert not errors, errors
    assert rounds["churn"] >= 3 and rounds["replace"] >= 10, rounds
    for out in outputs:  # traffic flowed in both directions throughout
        received = int(out.split(" received")[0].rsplit(",", 1)[1])
        assert received > 100, out

    # unload with devices, tunnels, rules and sockets all live
    sh("rmmod", "ipudp")
    new = kernel_log()[log_start:]
    assert not [line for line in new if any(bad in line for bad in BAD)], new
