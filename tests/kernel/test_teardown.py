"""Deleting a device while packets for it arrive: the receive path may have
found the device through its socket just before the socket let go, so the
device's tables must outlive every such reader. A flood from the peer runs
while one side's device is deleted and re-created over and over; any
use-after-free shows as a KASAN report on the debug kernel and, often
enough, as an Oops here (the harness fails the run on either)."""

from __future__ import annotations

import os
import subprocess
import sys

from lvn.netlink import Ipudp

from .conftest import OVERLAY4, OVERLAY6, build_pair
from .netns import Netns, scaled, wait_for

# make test: 150 rounds per kernel (about 2 minutes under TCG); make
# test-stress: 1,000 (LVN_TEARDOWN_ROUNDS)
ROUNDS = int(os.environ.get("LVN_TEARDOWN_ROUNDS", "150"))

FLOOD = """
import socket, sys
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
while True:
    for _ in range(64):
        s4.sendto(b"x" * 32, (sys.argv[1], 9))
        s6.sendto(b"x" * 32, (sys.argv[2], 9))
"""


def test_delete_and_recreate_under_receive_flood(netns: type[Netns]) -> None:
    pair = build_pair(netns, "ipv4")
    a, b = pair.a, pair.b
    floods = [b.ns.popen(sys.executable, "-c", FLOOD, OVERLAY4[0], OVERLAY6[0],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
              for _ in range(2)]
    try:
        with Ipudp(netns=a.ns.name) as k:
            for _ in range(ROUNDS):
                k.del_device("lvn0")
                k.add_device("lvn0")
                k.set_tunnel("lvn0", b.underlay, local=a.underlay)
                k.set_link("lvn0", up=True)
            # the last device receives the flood: receive is live (the
            # flood's senders, starved on a busy host, may take a while)
            wait_for(lambda: k.device("lvn0").tunnels[0].stats.rx_packets > 0, 60,
                     "the last device to receive the flood")
            received = k.device("lvn0").tunnels[0].stats.rx_packets
            for f in floods:
                assert f.poll() is None, f.stderr.read() if f.stderr else ""
    finally:
        for f in floods:
            f.kill()
            f.wait(timeout=scaled(30))
    # the last device received part of the flood: receive was live throughout
    assert received > 0
