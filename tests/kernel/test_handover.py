"""Handing the UDP port between the module and a userspace owner (an agent
restarting) loses no packet: IPUDP_A_FD with an unbound socket takes the
port over, IPUDP_A_RETURN_FD gives it back, under a steady ping."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from lvn.netlink import Ipudp, KernelError

from .conftest import Pair
from .netns import wait_for

CONTROL = b"\xff\xff\xff\xff" + b"lvn-control-test"
SENDERS = 64


def take_port(pair: Pair, k: Ipudp, family: int) -> socket.socket:
    with pair.b.ns.entered():
        s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    # unbound: the kernel binds it to the device's port
    k.set_device("lvn0", fd=s.fileno())
    assert s.getsockname()[1] == 50000
    assert k.device("lvn0").sockets == (pair.outer + "/user",)
    return s


def test_port_handover_loses_nothing(pair: Pair) -> None:
    family = socket.AF_INET if pair.outer == "ipv4" else socket.AF_INET6
    with pair.b.lvn() as k:
        # the module socket of the first tunnel has no SO_REUSEPORT: it
        # yields the port (a short gap, before the ping); afterwards the
        # module's sockets come from RETURN_FD and share the port
        s = take_port(pair, k, family)
        k.set_device("lvn0", return_fd=True)
        s.close()
    ping = pair.a.ns.popen("ping", "-c", "150", "-i", "0.02", "-W", "2", pair.b.overlay4,
                           stdout=-1, stderr=-1)
    with pair.b.lvn() as k:
        for _ in range(10):
            s = take_port(pair, k, family)
            # back to the module, then the owner exits
            k.set_device("lvn0", return_fd=True)
            assert k.device("lvn0").sockets == (pair.outer,)
            s.close()
        assert k.device("lvn0").port == 50000
    out, _ = ping.communicate(timeout=60)
    text = out.decode()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    assert m, text
    sent, got = int(m[1]), int(m[2])
    assert sent == 150 and got == sent, text


def test_return_fd_refusals(pair: Pair) -> None:
    with pair.b.lvn() as k:
        # nothing to return: a no-op
        k.set_device("lvn0", return_fd=True)
        assert k.device("lvn0").sockets == (pair.outer,)
        with pair.b.ns.entered():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with s:
            with pytest.raises(KernelError) as exc:
                k.set_device("lvn0", fd=s.fileno(), return_fd=True)
            assert "exclude each other" in str(exc.value)
            # a bound socket without SO_REUSEPORT cannot be given back
            s.bind(("0.0.0.0", 0))
            k.set_device("lvn0", fd=s.fileno())
            with pytest.raises(KernelError) as exc:
                k.set_device("lvn0", return_fd=True)
            assert "SO_REUSEPORT" in str(exc.value)
            assert "ipv4/user" in k.device("lvn0").sockets
        # its owner closing it empties the slot
        assert "ipv4/user" not in k.device("lvn0").sockets


def test_retired_socket_keeps_its_control_datagrams(pair: Pair) -> None:
    """After IPUDP_A_RETURN_FD the agent's socket still shares the port until
    it is closed: control datagrams that land on it are its owner's, not
    dropped because the device's slot now holds a module socket."""
    family = socket.AF_INET if pair.outer == "ipv4" else socket.AF_INET6
    with pair.b.lvn() as k:
        s = take_port(pair, k, family)
        k.set_device("lvn0", return_fd=True)
        before = k.device("lvn0").drops.rx_control_dropped
    s.setblocking(False)
    senders = []
    with pair.a.ns.entered():
        for _ in range(SENDERS):
            senders.append(socket.socket(family, socket.SOCK_DGRAM))
    for c in senders:
        c.sendto(CONTROL, (pair.b.underlay, 50000))
    got = 0

    def all_accounted() -> bool:
        nonlocal got
        try:
            while True:
                assert s.recv(2048) == CONTROL
                got += 1
        except BlockingIOError:
            pass
        with pair.b.lvn() as k:
            dropped = k.device("lvn0").drops.rx_control_dropped - before
        return got + dropped == SENDERS

    try:
        wait_for(all_accounted, what="every control datagram read or counted as dropped")
    finally:
        for c in senders:
            c.close()
        s.close()
    # the port's group hashes 64 source ports over both sockets
    assert got > 0, "no control datagram reached the retired socket"


def test_port_change_to_a_taken_port_changes_nothing(pair: Pair) -> None:
    """DEV_SET to a port another socket holds: EADDRINUSE with the reason,
    and the device keeps its port and sockets (the old sockets went first:
    the device had none and claimed the new port). A free port works."""
    family = socket.AF_INET if pair.outer == "ipv4" else socket.AF_INET6
    with pair.b.ns.entered():
        squatter = socket.socket(family, socket.SOCK_DGRAM)
    with squatter, pair.b.lvn() as k:
        squatter.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 50009))
        with pytest.raises(KernelError) as exc:
            k.set_device("lvn0", port=50009)
        assert "UDP port already in use" in str(exc.value), exc.value
        dev = k.device("lvn0")
        assert dev.port == 50000 and dev.sockets == (pair.outer,), dev
        pair.a.ping(pair.b.overlay4, count=2)
        # a free port: both ends move, traffic follows
        k.set_device("lvn0", port=50010)
        assert k.device("lvn0").port == 50010
    with pair.a.lvn() as k:
        (t,) = k.device("lvn0").tunnels
        k.set_tunnel("lvn0", t.remote, remote_port=50010, local=t.local, replace=True)
    pair.a.ping(pair.b.overlay4, count=2)


def test_a_socket_of_another_netns_is_refused(pair: Pair) -> None:
    family = socket.AF_INET if pair.outer == "ipv4" else socket.AF_INET6
    with pair.a.ns.entered():
        alien = socket.socket(family, socket.SOCK_DGRAM)
    with alien, pair.b.lvn() as k:
        with pytest.raises(KernelError) as exc:
            k.set_device("lvn0", fd=alien.fileno())
        assert "not in the device's underlay netns" in str(exc.value), exc.value
        assert k.device("lvn0").sockets == (pair.outer,)
    pair.a.ping(pair.b.overlay4, count=2)


def test_new_sockets_route_afresh(pair: Pair) -> None:
    """Routes a tunnel cached through the old socket go with it: a policy
    rule on the new source port applies at once (the cached route of the
    old port carried the replies on)."""
    pair.a.ping(pair.b.overlay4, count=2)  # b's tunnel caches its route
    ip = ["ip", "-6"] if pair.outer == "ipv6" else ["ip"]
    if pair.b.ns.popen(*ip, "rule", "list", stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL).wait() != 0:
        pytest.skip("this kernel has no policy routing for the family "
                    "(make test-debug's: no CONFIG_IPV6_MULTIPLE_TABLES)")
    pair.b.ns.run(*ip, "rule", "add", "sport", "50010", "prohibit")
    with pair.b.lvn() as k:
        k.set_device("lvn0", port=50010)
    with pair.a.lvn() as k:
        (t,) = k.device("lvn0").tunnels
        k.set_tunnel("lvn0", t.remote, remote_port=50010, local=t.local, replace=True)
    out = pair.a.ns.run("ping", "-c", "2", "-i", "0.2", "-W", "1", pair.b.overlay4,
                        check=False)
    assert " 0 received" in out, out  # b's replies meet the rule
    pair.b.ns.run(*ip, "rule", "del", "sport", "50010", "prohibit")
    pair.a.ping(pair.b.overlay4, count=2)
