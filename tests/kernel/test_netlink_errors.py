"""Malformed and invalid genetlink requests get an errno and an extack
message; nothing is changed and nothing WARNs (the VM harness fails the run
on any WARN/BUG/Oops line in dmesg).  Requests are encoded loosely with
pyroute2's classes and sent, and their acks read, by lvn's own netlink
transport (lvn.rawnl, lvn.nlcodec): the library's error path on every
architecture, big-endian included."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, genlmsg, nla

from lvn.ipudp_abi import CMD_DEV_GET, CMD_DEV_SET, CMD_TUNNEL_DEL, CMD_TUNNEL_NEW
from lvn.netlink import Ipudp, KernelError, made_in
from lvn.rawnl import NETLINK_GENERIC, Channel, KernelRefused

from .netns import Netns


class raw_msg(genlmsg):  # noqa: N801
    """The ipudp attribute space with deliberately loose types."""

    prefix = "A_"
    nla_map = (
        ("A_UNSPEC", "none"),
        ("A_IFINDEX", "cdata"),
        ("A_IFNAME", "cdata"),
        ("A_MODE", "cdata"),
        ("A_PORT", "cdata"),
        ("A_FD", "cdata"),
        ("A_SOCK_FLAGS", "cdata"),
        ("A_STATS", "cdata"),
        ("A_TUNNEL", "tunnel"),
        ("A_FLAGS", "cdata"),
        ("A_BOGUS", "cdata"),
    )

    class tunnel(nla):  # noqa: N801
        prefix = "T_"
        nla_flags = 0x8000
        nla_map = tuple((f"T_{i}", "cdata") for i in range(13))


def b(value: int, size: int) -> bytes:
    """A native-endian integer attribute of ``size`` bytes."""
    return value.to_bytes(size, sys.byteorder)


def s(text: str) -> bytes:
    return text.encode() + b"\0"


def v6(first: int) -> bytes:
    return bytes([first]) + bytes(15)


@pytest.fixture
def ns(netns: type[Netns]) -> Netns:
    n = netns()
    n.ip("link", "add", "lvn0", "type", "ipudp")
    n.ip("link", "add", "dummy0", "type", "dummy")
    return n


class Genl:
    """A raw request channel to the ipudp family in a test's netns."""

    def __init__(self, ns: Netns) -> None:
        with Ipudp(netns=ns.name) as k:
            self.family = k.family_id
        self.channel = made_in(ns.name, lambda: Channel(NETLINK_GENERIC))

    def send(self, cmd: int, attrs: list[Any], flags: int) -> list[bytes]:
        """Replies' payloads; a refusal raises lvn.rawnl.KernelRefused."""
        msg = raw_msg()
        msg["cmd"], msg["version"], msg["attrs"] = cmd, 1, attrs
        msg.encode()
        return [p for _, _, p in self.channel.request("test", self.family, flags,
                                                      bytes(msg.data)[16:])]


@pytest.fixture
def genl(ns: Netns) -> Iterator[Genl]:
    g = Genl(ns)
    yield g
    g.channel.close()


def request(genl: Genl, cmd: int, attrs: list[Any],
            flags: int = NLM_F_REQUEST | NLM_F_ACK) -> KernelRefused:
    """The kernel's refusal of this request (the test fails if it is accepted)."""
    with pytest.raises(KernelRefused) as exc:
        genl.send(cmd, attrs, flags)
    return exc.value


def extack(err: KernelRefused) -> str:
    return err.message or ""


DEV = ("A_IFNAME", s("lvn0"))
REMOTE4 = ("T_4", bytes([10, 99, 0, 2]))


@pytest.mark.parametrize("cmd", [CMD_DEV_SET, CMD_TUNNEL_NEW, CMD_TUNNEL_DEL])
def test_missing_device(genl: Genl, cmd: int) -> None:
    attrs = [("A_TUNNEL", {"attrs": [REMOTE4]})] if cmd == CMD_TUNNEL_NEW else []
    err = request(genl, cmd, attrs)
    assert err.errno == errno.EINVAL
    assert "IFINDEX" in extack(err)


def test_unknown_device(genl: Genl) -> None:
    err = request(genl, CMD_DEV_GET, [("A_IFNAME", s("nosuch0"))])
    assert err.errno == errno.ENODEV and "no such device" in extack(err)
    err = request(genl, CMD_DEV_GET, [("A_IFINDEX", b(99999, 4))])
    assert err.errno == errno.ENODEV


def test_not_an_ipudp_device(genl: Genl) -> None:
    err = request(genl, CMD_DEV_GET, [("A_IFNAME", s("dummy0"))])
    assert err.errno == errno.EOPNOTSUPP and "not an ipudp device" in extack(err)


def test_missing_tunnel_attribute(genl: Genl) -> None:
    err = request(genl, CMD_TUNNEL_NEW, [DEV])
    assert err.errno == errno.EINVAL


@pytest.mark.parametrize("tattrs, code, words", [
    ([], errno.EINVAL, "REMOTE"),                               # no remote
    ([REMOTE4, ("T_5", v6(0xFD))], errno.EINVAL, "REMOTE"),     # both remotes
    ([("T_4", bytes([10, 99, 0]))], errno.ERANGE, "size"),      # 3-byte IPv4 address
    ([REMOTE4, ("T_6", b(0, 2))], errno.ERANGE, "range"),       # port 0
    # port of the wrong size: ERANGE on 6.1, EINVAL on 6.12
    ([REMOTE4, ("T_6", b(1, 4))], (errno.ERANGE, errno.EINVAL), ""),
    ([REMOTE4, ("T_3", v6(0xFD))], errno.EINVAL, "famil"),      # v6 local, v4 remote
    ([("T_4", bytes([224, 0, 0, 1]))], errno.EINVAL, "unicast"),  # multicast remote
    ([("T_4", bytes(4))], errno.EINVAL, "unicast"),             # 0.0.0.0
    ([REMOTE4, ("T_9", b"\0")], errno.EINVAL, ""),              # read-only stats
    ([REMOTE4, ("T_12", b"\0")], errno.EINVAL, ""),             # unknown attribute
])
def test_invalid_tunnel(genl: Genl, ns: Netns, tattrs: list[Any],
                        code: int | tuple[int, ...], words: str) -> None:
    err = request(genl, CMD_TUNNEL_NEW, [DEV, ("A_TUNNEL", {"attrs": tattrs})])
    assert err.errno in (code if isinstance(code, tuple) else (code,))
    assert extack(err) and words.lower() in extack(err).lower()
    with Ipudp(netns=ns.name) as k:
        assert k.device("lvn0").tunnels == ()


@pytest.mark.parametrize("attr, code", [
    (("A_MODE", b"\x07"), errno.ERANGE),         # beyond IPUDP_MODE_MAX
    (("A_PORT", b(0, 2)), errno.ERANGE),         # port 0
    (("A_IFNAME", b"lv"), errno.EINVAL),         # not NUL-terminated
    (("A_STATS", b"\0"), errno.EINVAL),          # read-only
    (("A_FLAGS", b(1 << 30, 4)), errno.EINVAL),  # unknown flag bit
    (("A_BOGUS", b"\0"), errno.EINVAL),          # unknown attribute: strict validation
])
def test_invalid_device_attributes(genl: Genl, attr: tuple[str, bytes],
                                   code: int) -> None:
    err = request(genl, CMD_DEV_SET, [DEV, attr] if attr[0] != "A_IFNAME" else [attr])
    assert err.errno == code and extack(err)


def test_mode_changes_only_without_tunnels(ns: Netns) -> None:
    with Ipudp(netns=ns.name) as k:
        k.set_tunnel("lvn0", "10.99.0.2")
        with pytest.raises(KernelError) as exc:
            k.set_mode("lvn0", "multi")
        assert exc.value.errno == errno.EBUSY and "no tunnel" in str(exc.value)
        k.del_tunnel("lvn0")
        k.set_mode("lvn0", "multi")
        assert k.device("lvn0").mode == "multi"


def test_fd_that_is_not_a_udp_socket(genl: Genl) -> None:
    with open("/dev/null", "rb") as f:
        err = request(genl, CMD_DEV_SET, [DEV, ("A_FD", b(f.fileno(), 4))])
    assert err.errno == errno.ENOTSOCK
    err = request(genl, CMD_DEV_SET, [DEV, ("A_FD", b(100000, 4))])
    assert err.errno == errno.EBADF


def test_fd_unbound_or_tcp_socket(genl: Genl, ns: Netns) -> None:
    import socket
    with ns.entered():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u, t, busy, u2:
        err = request(genl, CMD_DEV_SET, [DEV, ("A_FD", b(t.fileno(), 4))])
        assert err.errno == errno.EINVAL and "UDP" in extack(err)
        # the device's port held by a socket without SO_REUSEPORT: refused
        busy.bind(("0.0.0.0", 50000))
        err = request(genl, CMD_DEV_SET, [DEV, ("A_FD", b(u.fileno(), 4))])
        assert err.errno == errno.EADDRINUSE and "cannot bind" in extack(err)
        with Ipudp(netns=ns.name) as k:
            assert k.device("lvn0").sockets == ()
        busy.close()
        # an unbound socket is bound to the device's port, SO_REUSEPORT set
        with Ipudp(netns=ns.name) as k:
            k.set_device("lvn0", fd=u2.fileno())
            assert k.device("lvn0").sockets == ("ipv4/user",)
        assert u2.getsockname()[1] == 50000
        assert u2.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_duplicate_tunnel_and_replace(ns: Netns) -> None:
    with Ipudp(netns=ns.name) as k:
        k.set_tunnel("lvn0", "10.99.0.2")
        with pytest.raises(KernelError) as exc:
            k.set_tunnel("lvn0", "10.99.0.3")
        assert exc.value.errno == errno.EEXIST
        assert "already has a tunnel" in str(exc.value)
        assert k.device("lvn0").tunnels[0].remote == "10.99.0.2"
        k.set_tunnel("lvn0", "fd99::3", remote_port=4000, replace=True)
        t = k.device("lvn0").tunnels[0]
        assert (t.remote, t.remote_port) == ("fd99::3", 4000)
        assert k.device("lvn0").sockets == ("ipv4", "ipv6")
        k.del_tunnel("lvn0")
        with pytest.raises(KernelError) as exc:
            k.del_tunnel("lvn0")
        assert exc.value.errno == errno.ENOENT


def test_port_in_use(ns: Netns) -> None:
    ns.ip("link", "add", "lvn1", "type", "ipudp")
    with Ipudp(netns=ns.name) as k:
        k.set_tunnel("lvn0", "10.99.0.2")
        with pytest.raises(KernelError) as exc:
            k.set_tunnel("lvn1", "10.99.0.3")
        assert exc.value.errno == errno.EADDRINUSE and "port" in str(exc.value)
        k.set_device("lvn1", port=50001)
        k.set_tunnel("lvn1", "10.99.0.3")
        assert k.device("lvn1").port == 50001


def test_dump_lists_only_ipudp_devices(genl: Genl, ns: Netns) -> None:
    ns.ip("link", "add", "lvn7", "type", "ipudp")
    assert len(genl.send(CMD_DEV_GET, [], NLM_F_REQUEST | NLM_F_DUMP)) == 2
    with Ipudp(netns=ns.name) as k:
        assert [d.ifname for d in k.devices()] == ["lvn0", "lvn7"]


def test_random_garbage_requests(genl: Genl) -> None:
    import random
    rnd = random.Random(1234)
    for _ in range(2000):
        cmd = rnd.randrange(0, 8)
        attrs: list[Any] = []
        for _ in range(rnd.randrange(0, 4)):
            name = rnd.choice([n for n, _ in raw_msg.nla_map[1:] if n != "A_TUNNEL"])
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 24)))
            attrs.append((name, blob))
        if rnd.random() < 0.5:
            tun = [(f"T_{rnd.randrange(13)}",
                    bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 20))))
                   for _ in range(rnd.randrange(0, 4))]
            attrs.append(("A_TUNNEL", {"attrs": tun}))
        try:
            genl.send(cmd, attrs, NLM_F_REQUEST | NLM_F_ACK)
        except KernelRefused as e:
            assert e.errno > 0
