"""Fixtures of the VM kernel tests: the module, namespaces, a tunnel pair.

Topology of ``pair`` (outer family parametrised)::

    ns a                                    ns b
    lvn0 192.168.99.1/30 fd98::1/64         lvn0 192.168.99.2/30 fd98::2/64
      | ipudp, UDP 50000 <-> 50000            |
    ul0  10.99.0.1/24 fd99::1/64  ---veth---  ul0 10.99.0.2/24 fd99::2/64
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lvn.netlink import Ipudp

from .netns import Netns, scaled, veth, wait_for

UNDERLAY = {"ipv4": ("10.99.0.1", "10.99.0.2", 24), "ipv6": ("fd99::1", "fd99::2", 64)}
OVERLAY4 = ("192.168.99.1", "192.168.99.2")
OVERLAY6 = ("fd98::1", "fd98::2")
ROOT = Path(__file__).resolve().parents[2]


def file_seconds() -> dict[str, float]:
    """Seconds each test file took in this kernel's last VM stage
    (build/vm/RELEASE/junit.prev.xml: scripts/test-vm.sh keeps it), keyed
    by module; empty when there was none.  Another kernel's report would
    mislead: each runs scenarios the other does not."""
    took: dict[str, float] = {}
    report = ROOT / "build" / "vm" / os.uname().release / "junit.prev.xml"
    try:
        cases = list(ET.parse(report).getroot().iter("testcase"))
    except (OSError, ET.ParseError):
        return took
    for case in cases:
        module = case.get("classname", "").rsplit(".", 1)[-1]
        took[module] = took.get(module, 0.0) + float(case.get("time") or 0)
    return took


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first, so that the two workers (pytest-xdist, one file
    at a time, vm/guest-pytest.sh) finish together rather than one waiting
    on a long scenario picked up last: by this kernel's last run's times
    where there is one, else the userspace scenarios (marked newest/oldest,
    the long ones) before the kernel tests.  Within a file the order stays."""
    took = file_seconds()

    def weight(item: pytest.Item) -> tuple[float, bool]:
        scenario = bool(item.get_closest_marker("newest") or item.get_closest_marker("oldest"))
        return (-took.get(item.module.__name__.rsplit(".", 1)[-1], 0.0)
                if item.module else 0.0, not scenario)

    items.sort(key=weight)


@pytest.fixture(autouse=True)
def cpu_seconds(record_property: Callable[[str, object], None]) -> Iterator[None]:
    """CPU seconds a test cost the guest (this worker and the processes it
    reaped: agents, browsers, commands) as the JUnit property cpu_seconds:
    under TCG, CPU and not waiting is what makes the VM stage long."""
    def used() -> float:
        return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                      resource.getrusage(resource.RUSAGE_CHILDREN)))
    before = used()
    # which worker ran it and when it began (seconds since the epoch): the
    # VM stage's timeline, to see a worker waiting while the other works
    record_property("worker", os.environ.get("PYTEST_XDIST_WORKER", "serial"))
    record_property("began", round(time.time(), 1))
    yield
    record_property("cpu_seconds", round(used() - before, 1))


def module_loaded() -> bool:
    return os.path.isdir("/sys/module/ipudp")


def module_live() -> bool:
    try:
        with open("/sys/module/ipudp/initstate") as f:
            return f.read().strip() == "live"
    except OSError:
        return False


def load_module() -> None:
    if module_live():
        return
    ko = os.environ.get("LVN_KMOD")
    assert ko and os.path.exists(ko), f"LVN_KMOD does not name a built module: {ko!r}"
    # the other pytest worker may load it at the same moment: insmod then
    # says "File exists", and the module may still be initialising
    said = ""
    if not module_loaded():
        said = subprocess.run(["insmod", ko], capture_output=True, text=True).stderr.strip()
    try:
        wait_for(module_live, 30, "the ipudp module to finish loading")
    except AssertionError as e:
        raise AssertionError(f"{e}; insmod {ko}: {said}") from None
    ddc = "/sys/kernel/debug/dynamic_debug/control"
    if os.path.exists(ddc):
        with open(ddc, "w") as f:
            f.write("module ipudp +p\n")


@pytest.fixture(autouse=True)
def kmod() -> None:
    """Every kernel test starts with the module loaded (a test may rmmod it)."""
    load_module()


@pytest.fixture
def netns() -> Iterator[type[Netns]]:
    made: list[Netns] = []

    class Tracked(Netns):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    yield Tracked
    for ns in reversed(made):
        ns.delete()


@dataclass
class Side:
    ns: Netns
    underlay: str
    overlay4: str
    overlay6: str

    def lvn(self) -> Ipudp:
        return Ipudp(netns=self.ns.name)

    def ping(self, dst: str, count: int = 3, size: int = 56) -> str:
        return self.ns.run("ping", "-c", str(count), "-i", "0.2", "-W", str(int(scaled(3))),
                           "-s", str(size), dst)


@dataclass
class Pair:
    a: Side
    b: Side
    outer: str


def add_underlay(ns: Netns, v4: str, v6: str) -> None:
    ns.ip("addr", "add", f"{v4}/24", "dev", "ul0")
    ns.ip("addr", "add", f"{v6}/64", "dev", "ul0", "nodad")


def add_overlay(ns: Netns, dev: str, v4: str, v6: str) -> None:
    # No link-local address: no router solicitations that would add
    # packets the tests did not send to the counters they check.
    ns.ip("link", "set", dev, "addrgenmode", "none")
    ns.ip("addr", "add", f"{v4}/30", "dev", dev)
    ns.ip("addr", "add", f"{v6}/64", "dev", dev, "nodad")
    ns.ip("link", "set", dev, "up")


def build_pair(netns: type[Netns], outer: str, fd_sides: tuple[str, ...] = ()) -> Pair:
    a, b = netns(), netns()
    veth(a, b)
    add_underlay(a, "10.99.0.1", "fd99::1")
    add_underlay(b, "10.99.0.2", "fd99::2")
    sides = {}
    for name, ns, me, peer, o4, o6 in (
        ("a", a, 0, 1, OVERLAY4[0], OVERLAY6[0]),
        ("b", b, 1, 0, OVERLAY4[1], OVERLAY6[1]),
    ):
        ns.ip("link", "add", "lvn0", "type", "ipudp")
        side = Side(ns, UNDERLAY[outer][me], o4, o6)
        with side.lvn() as k:
            k.set_tunnel("lvn0", UNDERLAY[outer][peer], local=UNDERLAY[outer][me])
        add_overlay(ns, "lvn0", o4, o6)
        sides[name] = side
    return Pair(sides["a"], sides["b"], outer)


@pytest.fixture(params=["ipv4", "ipv6"])
def pair(request: pytest.FixtureRequest, netns: type[Netns]) -> Pair:
    return build_pair(netns, request.param)


def run_bg(ns: Netns, *argv: str) -> subprocess.Popen[bytes]:
    return ns.popen(*argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tcp_stream(server_ns: Netns, client_ns: Netns, addr: str, size: int) -> None:
    """Send ``size`` random bytes over TCP from client_ns to addr in server_ns."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    data = os.urandom(size)
    with server_ns.entered():
        srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((addr, 7000))
    srv.listen(1)
    srv.settimeout(scaled(30))
    got = hashlib.sha256()
    received = 0

    def serve() -> None:
        nonlocal received
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                got.update(chunk)
                received += len(chunk)

    t = threading.Thread(target=serve)
    t.start()
    with client_ns.entered():
        cli = socket.socket(family, socket.SOCK_STREAM)
    with cli:
        cli.settimeout(scaled(30))
        cli.connect((addr, 7000))
        cli.sendall(data)
    t.join(scaled(60))
    srv.close()
    assert received == size and got.digest() == hashlib.sha256(data).digest()
