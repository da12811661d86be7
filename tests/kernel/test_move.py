"""A tunnel whose endpoint moves (a NAT rebinding, a roam: IPUDP_F_REPLACE
with the same id) stays the same tunnel: every packet sent while it moves,
over and over, is counted once on each side and arrives."""

from __future__ import annotations

import socket
import threading

import pytest

from lvn.netlink import Ipudp

from .conftest import Pair
from .netns import scaled, wait_for

PACKETS = 3000
WINDOW = 50                      # datagrams in flight at most (no backlog drops)
SECOND = {"ipv4": "10.99.0.3", "ipv6": "fd99::3"}  # b's other underlay address


def test_moves_under_traffic_count_every_packet(pair: Pair) -> None:
    b_addrs = (pair.b.underlay, SECOND[pair.outer])
    pair.b.ns.ip("addr", "add", f"{b_addrs[1]}/{24 if pair.outer == 'ipv4' else 64}",
                 "dev", "ul0", "nodad" if pair.outer == "ipv6" else "noprefixroute")
    with pair.a.lvn() as k:
        before_a = k.device("lvn0").tunnels[0]
    with pair.b.lvn() as k:
        before_b = k.device("lvn0").tunnels[0].stats

    with pair.b.ns.entered():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((pair.b.overlay4, 9000))
    rx.settimeout(scaled(30))
    received = 0
    got = threading.Condition()

    def receive() -> None:
        nonlocal received
        try:
            while received < PACKETS:
                rx.recv(64)
                with got:
                    received += 1
                    got.notify()
        except OSError:
            return

    moves = 0
    stop = threading.Event()
    failed: list[BaseException] = []

    def move() -> None:
        nonlocal moves
        try:
            with Ipudp(netns=pair.a.ns.name) as k:
                while not stop.is_set():
                    k.set_tunnel("lvn0", b_addrs[(moves + 1) % 2], local=pair.a.underlay,
                                 tunnel_id=before_a.id, replace=True)
                    moves += 1
        except BaseException as e:  # noqa: BLE001 - reported by the test
            failed.append(e)

    with pair.a.ns.entered():
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    threads = [threading.Thread(target=receive), threading.Thread(target=move)]
    for t in threads:
        t.start()
    try:
        for n in range(PACKETS):
            tx.sendto(n.to_bytes(4, "big"), (pair.b.overlay4, 9000))
            if n % WINDOW == WINDOW - 1:  # the receiver catches up: nothing queues up
                with got:
                    assert got.wait_for(lambda n=n: received > n - WINDOW, scaled(30)), \
                        f"{received} of {n + 1} datagrams arrived"
        wait_for(lambda: received == PACKETS, 60, "the last datagrams")
    finally:
        stop.set()
        rx.close()
        for t in threads:
            t.join()
    assert not failed, failed
    assert moves >= 10, moves

    with pair.a.lvn() as k:
        (after_a,) = k.device("lvn0").tunnels
    with pair.b.lvn() as k:
        after_b = k.device("lvn0").tunnels[0].stats
    # the same tunnel, where the last move put it, every packet counted once
    assert after_a.id == before_a.id
    assert after_a.remote == b_addrs[moves % 2]
    assert after_a.stats.tx_packets - before_a.stats.tx_packets == PACKETS
    assert after_b.rx_packets - before_b.rx_packets == PACKETS
    assert after_a.stats.tx_bytes - before_a.stats.tx_bytes == PACKETS * (20 + 8 + 4)


def test_a_move_to_the_same_endpoint_changes_nothing(pair: Pair) -> None:
    """A REPLACE that names the endpoint the tunnel has (a client rejoining
    from where it was) keeps its path: counters, age and endpoint stay."""
    pair.a.ping(pair.b.overlay4, count=2)
    with pair.a.lvn() as k:
        (t,) = k.device("lvn0").tunnels
        k.set_tunnel("lvn0", t.remote, local=t.local, tunnel_id=t.id, replace=True)
        (again,) = k.device("lvn0").tunnels
    assert (again.id, again.remote, again.remote_port, again.local) == \
        (t.id, t.remote, t.remote_port, t.local)
    assert again.stats.tx_packets >= t.stats.tx_packets >= 2
    assert again.last_rx_ms is not None


@pytest.mark.parametrize("keepalive", [0, 1])
def test_a_move_sets_the_keepalive_asked_for(pair: Pair, keepalive: int) -> None:
    with pair.a.lvn() as k:
        (t,) = k.device("lvn0").tunnels
        k.set_tunnel("lvn0", t.remote, local=t.local, tunnel_id=t.id, keepalive=5,
                     replace=True)
        assert k.device("lvn0").tunnels[0].keepalive == 5
        k.set_tunnel("lvn0", t.remote, local=t.local, tunnel_id=t.id,
                     keepalive=keepalive, replace=True)
        assert k.device("lvn0").tunnels[0].keepalive == keepalive
