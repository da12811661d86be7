"""The kernel boundary: ipudp devices over rtnetlink and the ipudp genl family.

The ipudp family goes through the project's own codec (:mod:`lvn.nlcodec`,
:mod:`lvn.rawnl`, which the MicroPython node uses too): requests, replies,
batches and events.  pyroute2 does what it is good at here, links and
addresses over rtnetlink; this is the only module that imports it, and it
changes none of pyroute2's state.  Returns the plain values of
:mod:`lvn.model`, raises :class:`lvn.LvnError` and its subclasses.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

from . import LvnError, nlcodec, rawnl
from . import ipudp_abi as abi
from .model import (
    DEFAULT_PORT,
    MODES,
    RULE_KINDS,
    Device,
    DeviceDrops,
    Event,
    Rule,
    Tunnel,
    TunnelStats,
)
from .nlcodec import NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST

# A dump that tables changing under it interrupted is retried this often.
DUMP_ATTEMPTS = 20


class KernelError(LvnError):
    """The kernel refused a request; ``errno`` says why."""

    def __init__(self, what: str, code: int, detail: str | None = None) -> None:
        self.what = what
        self.errno = code
        self.detail = detail
        super().__init__(f"{what}: {explain(code, detail)}")


class ModuleNotLoaded(LvnError):
    """The ipudp kernel module is not loaded."""


_HINTS = {
    errno.EPERM: "operation not permitted (needs root / CAP_NET_ADMIN)",
    errno.EACCES: "permission denied (needs root / CAP_NET_ADMIN)",
    errno.ENODEV: "no such device",
    errno.EEXIST: "already exists",
    errno.EOPNOTSUPP: "not supported",
}


def explain(code: int, detail: str | None = None) -> str:
    """Human text for a kernel errno, preferring the kernel's own message."""
    base = _HINTS.get(code) or os.strerror(code)
    if detail and detail.lower() not in base.lower():
        return f"{detail} ({base})"
    return base


# a reply: its genetlink command and its attributes (nlcodec.decode_attrs)
Reply = tuple[int, dict[str, Any]]


class _LinkData:
    """IFLA_INFO_DATA of link kind "ipudp" (enum ipudp_link_attr)."""

    nla_map = abi.LINK_ATTRS


def _interface(address: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        return ipaddress.ip_interface(address)
    except ValueError:
        raise LvnError(f"not an address with a prefix length: {address!r}") from None


def _addr_attrs(addr: str, v4: str, v6: str) -> tuple[str, str]:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise LvnError(f"not an IP address: {addr!r}") from None
    return (v4 if ip.version == 4 else v6, str(ip))


def _tunnel_attrs(t: Tunnel) -> list[Any]:
    attrs: list[Any] = [("IPUDP_TUNNEL_A_ID", t.id),
                        _addr_attrs(t.remote, "IPUDP_TUNNEL_A_REMOTE4", "IPUDP_TUNNEL_A_REMOTE6"),
                        ("IPUDP_TUNNEL_A_REMOTE_PORT", t.remote_port)]
    if t.local is not None:
        attrs.append(_addr_attrs(t.local, "IPUDP_TUNNEL_A_LOCAL4", "IPUDP_TUNNEL_A_LOCAL6"))
    if t.keepalive:
        attrs.append(("IPUDP_TUNNEL_A_KEEPALIVE", t.keepalive))
    return attrs


def _sockets(flags: int) -> tuple[str, ...]:
    out = []
    if flags & abi.SOCK_F_V4:
        out.append("ipv4/user" if flags & abi.SOCK_F_V4_USER else "ipv4")
    if flags & abi.SOCK_F_V6:
        out.append("ipv6/user" if flags & abi.SOCK_F_V6_USER else "ipv6")
    return tuple(out)


def _parse_tunnel(t: dict[str, Any]) -> Tunnel:
    st = t.get("IPUDP_TUNNEL_A_STATS")
    stats = TunnelStats(
        rx_packets=st.get("IPUDP_STATS_A_RX_PACKETS", 0),
        rx_bytes=st.get("IPUDP_STATS_A_RX_BYTES", 0),
        tx_packets=st.get("IPUDP_STATS_A_TX_PACKETS", 0),
        tx_bytes=st.get("IPUDP_STATS_A_TX_BYTES", 0),
        rx_spoofed=st.get("IPUDP_STATS_A_RX_SPOOFED", 0),
        rx_malformed=st.get("IPUDP_STATS_A_RX_MALFORMED", 0),
    ) if st is not None else TunnelStats()
    return Tunnel(
        id=t.get("IPUDP_TUNNEL_A_ID", 0),
        remote=t.get("IPUDP_TUNNEL_A_REMOTE4") or t.get("IPUDP_TUNNEL_A_REMOTE6") or "",
        remote_port=t.get("IPUDP_TUNNEL_A_REMOTE_PORT") or DEFAULT_PORT,
        local=t.get("IPUDP_TUNNEL_A_LOCAL4") or t.get("IPUDP_TUNNEL_A_LOCAL6"),
        last_rx_ms=t.get("IPUDP_TUNNEL_A_LAST_RX_MS"),
        last_tx_ms=t.get("IPUDP_TUNNEL_A_LAST_TX_MS"),
        stats=stats,
        keepalive=t.get("IPUDP_TUNNEL_A_KEEPALIVE", 0),
    )


def _parse_rule(msg: dict[str, Any]) -> Rule:
    r = msg["IPUDP_A_RULE"]
    addr = r.get("IPUDP_RULE_A_PREFIX4") or r.get("IPUDP_RULE_A_PREFIX6")
    return Rule(prefix=f"{addr}/{r.get('IPUDP_RULE_A_PREFIX_LEN')}",
                tunnel_id=r.get("IPUDP_RULE_A_TUNNEL_ID"),
                kind=abi.name_of(RULE_KINDS, r.get("IPUDP_RULE_A_TYPE", 0)))


def _prefix_attrs(prefix: str, strict: bool = False) -> list[Any]:
    try:
        net = ipaddress.ip_network(prefix, strict=strict)
    except ValueError as e:
        raise LvnError(f"not an IP prefix: {prefix!r} ({e})") from None
    name = "IPUDP_RULE_A_PREFIX4" if net.version == 4 else "IPUDP_RULE_A_PREFIX6"
    return [(name, str(net.network_address)), ("IPUDP_RULE_A_PREFIX_LEN", net.prefixlen)]


class EventSource:
    """The ipudp ``events`` group on its own socket: fileno() for select,
    read() for what arrived (blocks only if nothing did)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.overflows = 0  # times the kernel dropped events (ENOBUFS): some are lost

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[Event]:
        out: list[Event] = []
        flags = 0
        while True:
            try:
                buf = self.sock.recv(rawnl._RECV_SIZE, flags)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.overflows += 1
                flags = socket.MSG_DONTWAIT
                continue
            flags = socket.MSG_DONTWAIT  # then what else is queued, without waiting
            try:
                messages = nlcodec.split(buf)
            except nlcodec.NetlinkFormatError:
                continue  # not one of the family's messages
            for _, _, _, payload in messages:
                if len(payload) >= 4:
                    event = _parse_event(payload[0], nlcodec.decode_attrs(abi.Msg, payload, 4))
                    if event is not None:
                        out.append(event)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_EVENT_KINDS = {abi.CMD_TUNNEL_NEW: "tunnel-new", abi.CMD_TUNNEL_DEL: "tunnel-del",
                abi.CMD_TUNNEL_ACTIVE: "tunnel-active"}


def _parse_event(cmd: int, msg: dict[str, Any]) -> Event | None:
    kind = _EVENT_KINDS.get(cmd)
    tun = msg.get("IPUDP_A_TUNNEL")
    if kind is None or tun is None:
        return None
    reason = msg.get("IPUDP_A_REASON")
    return Event(kind=kind, ifname=msg.get("IPUDP_A_IFNAME", ""),
                 ifindex=msg.get("IPUDP_A_IFINDEX", 0),
                 tunnel_id=tun.get("IPUDP_TUNNEL_A_ID", 0),
                 remote=tun.get("IPUDP_TUNNEL_A_REMOTE4") or tun.get("IPUDP_TUNNEL_A_REMOTE6"),
                 remote_port=tun.get("IPUDP_TUNNEL_A_REMOTE_PORT"),
                 reason=None if reason is None else abi.name_of(abi.DEL_REASONS, reason),
                 replaced=bool(msg.get("IPUDP_A_FLAGS", 0) & abi.F_REPLACE))


def _parse_device(msg: dict[str, Any]) -> Device:
    d = msg.get("IPUDP_A_STATS", {})
    drops = DeviceDrops(**{name: d.get("IPUDP_STATS_A_" + name.upper(), 0)
                           for name in DeviceDrops.__dataclass_fields__})
    tunnel = msg.get("IPUDP_A_TUNNEL")
    return Device(
        ifname=msg["IPUDP_A_IFNAME"],
        ifindex=msg["IPUDP_A_IFINDEX"],
        mode=abi.name_of(MODES, msg.get("IPUDP_A_MODE", 0)),
        port=msg.get("IPUDP_A_PORT") or DEFAULT_PORT,
        sockets=_sockets(msg.get("IPUDP_A_SOCK_FLAGS", 0)),
        n_tunnels=msg.get("IPUDP_A_N_TUNNELS", 0),
        n_rules=msg.get("IPUDP_A_N_RULES", 0),
        idle_timeout=msg.get("IPUDP_A_IDLE_TIMEOUT", 0),
        drops=drops,
        # the kernel nests the tunnel of a FIXED device only (one at most)
        tunnels=(_parse_tunnel(tunnel),) if tunnel is not None else (),
    )


def _events_group(genl: rawnl.Channel) -> int:
    """The id of the ipudp family's ``events`` multicast group."""
    body = struct.pack("=BBH", rawnl.CTRL_CMD_GETFAMILY, 1, 0) + nlcodec.attr(
        rawnl.CTRL_ATTR_FAMILY_NAME, abi.GENL_NAME.encode() + b"\0")
    answers = genl.request("resolving the ipudp events group", rawnl.GENL_ID_CTRL,
                           NLM_F_ACK, body)
    for _, _, payload in answers:
        for atype, groups in nlcodec.attrs(payload, 4):
            if atype != _CTRL_ATTR_MCAST_GROUPS:
                continue
            for _, group in nlcodec.attrs(groups):
                fields = dict(nlcodec.attrs(group))
                name = bytes(fields.get(_CTRL_ATTR_MCAST_GRP_NAME, b"")).split(b"\0")[0]
                if name.decode() == abi.MCGRP_EVENTS and _CTRL_ATTR_MCAST_GRP_ID in fields:
                    return int(struct.unpack("=I", fields[_CTRL_ATTR_MCAST_GRP_ID][:4])[0])
    raise KernelError("resolving the ipudp events group", errno.ENOENT,
                      f"the family has no {abi.MCGRP_EVENTS!r} group")


_CTRL_ATTR_MCAST_GROUPS = 7   # <linux/genetlink.h>
_CTRL_ATTR_MCAST_GRP_NAME = 1
_CTRL_ATTR_MCAST_GRP_ID = 2
_NETLINK_ADD_MEMBERSHIP = 1   # <linux/netlink.h>
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>
_NOT_LOADED = "the ipudp kernel module is not loaded (try: modprobe ipudp)"
# Requests per sendmsg: each ack is its own skb (~1 KB of receive buffer),
# so a batch must stay well inside the socket's receive buffer.
_BATCH_REQUESTS = 128
_S = TypeVar("_S")  # a socket (pyroute2's or rawnl's)
_RCVBUF = 1 << 20


def _grow_rcvbuf(sock: socket.socket) -> None:
    """A megabyte of receive buffer, past rmem_max where we may."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RCVBUF)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)


@contextmanager
def in_netns(netns: str) -> Iterator[None]:
    """Run the block with this thread in the network namespace ``netns``
    (/run/netns/NAME); sockets made there stay there."""
    libc = ctypes.CDLL(None, use_errno=True)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(target, 0x40000000) != 0:  # CLONE_NEWNET
            err = ctypes.get_errno()
            raise KernelError(f"entering netns {netns}", err)
        try:
            yield
        finally:
            if libc.setns(home, 0x40000000) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to the original netns")
    finally:
        os.close(target)
        os.close(home)


def made_in(netns: str | None, make: Callable[[], _S]) -> _S:
    """A socket made with this thread in ``netns`` (if given): it stays there."""
    if not netns:
        return make()
    with in_netns(netns):
        return make()


def _genl_request(family: int, cmd: int, seq: int, attrs: list[Any],
                  flags: int = NLM_F_REQUEST | NLM_F_ACK) -> bytes:
    body = struct.pack("=BBH", cmd, abi.GENL_VERSION, 0) + nlcodec.encode_attrs(abi.Msg, attrs)
    return nlcodec.message(family, flags, seq, body)


def _refused(e: rawnl.KernelRefused) -> LvnError:
    """rawnl's refusal as the library's error."""
    if isinstance(e, rawnl.ModuleMissing):
        return ModuleNotLoaded(str(e.message))
    return KernelError(e.what, e.errno, e.message)


class _Interfaces(rawnl.Kernel):
    """rawnl's rtnetlink side (links, addresses) on a channel made in the
    connection's netns; Ipudp keeps its own generic netlink channel, made
    on first use, so that links can be handled without the module."""

    def __init__(self, route: rawnl.Channel) -> None:
        self.route = route

    def close(self) -> None:
        self.route.close()


def _refused_as(what: str, e: rawnl.KernelRefused) -> KernelError:
    """rawnl's refusal under the library's own words for what was done."""
    return KernelError(what, e.errno, e.message)


class Ipudp:
    """A connection to the kernel for managing ipudp devices.

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, netns: str | None = None) -> None:
        """``netns``: name of a network namespace (as in ``ip -n``)."""
        self._netns = netns
        self._genl: rawnl.Channel | None = None
        self._family_id = 0
        # links and addresses; rawnl's channels ask for the kernel's
        # extended-ack message, as with genetlink
        self._links = _Interfaces(self._made_here(lambda: rawnl.Channel(rawnl.NETLINK_ROUTE)))

    def _made_here(self, make: Callable[[], _S]) -> _S:
        """A socket made in this connection's netns: the thread enters it
        while the socket is made (pyroute2's own ``netns=`` argument is
        0.8+; OpenWrt 24.10 ships 0.7.9)."""
        return made_in(self._netns, make)

    def __enter__(self) -> Ipudp:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._genl is not None:
            self._genl.close()
            self._genl = None
        self._links.close()

    # -- generic netlink --------------------------------------------------

    def _channel(self) -> tuple[rawnl.Channel, int]:
        """The request channel and the ipudp family's id, made on first use."""
        if self._genl is None:
            genl = self._made_here(lambda: rawnl.Channel(rawnl.NETLINK_GENERIC))
            try:
                self._family_id = rawnl.resolve_family(genl)
            except rawnl.KernelRefused as e:
                genl.close()
                raise _refused(e) from None
            self._genl = genl
        return self._genl, self._family_id

    @property
    def family_id(self) -> int:
        """The id of the ipudp genetlink family (for hand-made requests)."""
        return self._channel()[1]

    def _request(self, what: str, cmd: int, attrs: list[Any], flags: int) -> list[Reply]:
        """Send one request, return the replies (command, attributes); a
        dump that the kernel marks as interrupted by concurrent changes
        (NLM_F_DUMP_INTR) is done again from the start."""
        genl, family = self._channel()
        if not flags & NLM_F_DUMP:
            flags |= NLM_F_ACK  # a doer's replies end with its ack
        body = struct.pack("=BBH", cmd, abi.GENL_VERSION, 0) + nlcodec.encode_attrs(abi.Msg, attrs)
        for _ in range(DUMP_ATTEMPTS):
            try:
                answers = genl.request(what, family, flags, body)
            except rawnl.KernelRefused as e:
                raise _refused(e) from None
            replies: list[Reply] = []
            for mtype, _, payload in answers:
                if mtype == family and len(payload) >= 4:
                    try:
                        replies.append((payload[0], nlcodec.decode_attrs(abi.Msg, payload, 4)))
                    except nlcodec.NetlinkFormatError as e:
                        raise KernelError(what, errno.EPROTO, f"a malformed reply: {e}") from None
            if not any(mflags & NLM_F_DUMP_INTR for _, mflags, _ in answers):
                return replies
        raise KernelError(what, errno.EAGAIN,
                          f"the tables kept changing during {DUMP_ATTEMPTS} dumps in a row")

    @staticmethod
    def _dev_attr(ifname: str) -> list[Any]:
        return [("IPUDP_A_IFNAME", ifname)]

    def devices(self) -> list[Device]:
        """Every ipudp device of this network namespace."""
        replies = self._request("listing ipudp devices", abi.CMD_DEV_GET, [],
                                NLM_F_REQUEST | NLM_F_DUMP)
        devs = sorted((_parse_device(m) for _, m in replies), key=lambda d: d.ifindex)
        return [self._with_tunnels(d) for d in devs]

    def device(self, ifname: str) -> Device:
        replies = self._request(f"showing {ifname}", abi.CMD_DEV_GET,
                                self._dev_attr(ifname), NLM_F_REQUEST)
        return self._with_tunnels(_parse_device(replies[0][1]))

    def _with_tunnels(self, dev: Device) -> Device:
        """The kernel nests the tunnel only for FIXED devices: fetch the rest."""
        if dev.mode == "fixed":
            return dev
        return replace(dev, tunnels=tuple(self.tunnels(dev.ifname)))

    def tunnels(self, ifname: str) -> list[Tunnel]:
        replies = self._request(f"listing the tunnels of {ifname}", abi.CMD_TUNNEL_GET,
                                self._dev_attr(ifname), NLM_F_REQUEST | NLM_F_DUMP)
        return [_parse_tunnel(m["IPUDP_A_TUNNEL"]) for _, m in replies]

    def tunnel(self, ifname: str, tunnel_id: int) -> Tunnel:
        """One tunnel of a device (a MULTI device's without a dump of all)."""
        attrs = self._dev_attr(ifname) + [
            ("IPUDP_A_TUNNEL", {"attrs": [("IPUDP_TUNNEL_A_ID", tunnel_id)]})]
        ((_, reply),) = self._request(f"showing tunnel {tunnel_id} of {ifname}",
                                      abi.CMD_TUNNEL_GET, attrs, NLM_F_REQUEST)
        return _parse_tunnel(reply["IPUDP_A_TUNNEL"])

    def rules(self, ifname: str) -> list[Rule]:
        replies = self._request(f"listing the rules of {ifname}", abi.CMD_RULE_GET,
                                self._dev_attr(ifname), NLM_F_REQUEST | NLM_F_DUMP)
        return [_parse_rule(m) for _, m in replies]

    def set_mode(self, ifname: str, mode: str) -> None:
        if mode not in MODES:
            raise LvnError(f"unknown mode {mode!r} (expected one of: {', '.join(MODES)})")
        self._request(f"setting the mode of {ifname}", abi.CMD_DEV_SET,
                      self._dev_attr(ifname) + [("IPUDP_A_MODE", MODES.index(mode))],
                      NLM_F_REQUEST | NLM_F_ACK)

    def _rule(self, what: str, cmd: int, ifname: str, prefix: str, tunnel_id: int | None,
              kind: str) -> None:
        if kind not in RULE_KINDS:
            raise LvnError(f"unknown rule kind {kind!r} (expected one of: "
                           f"{', '.join(RULE_KINDS)})")
        rattrs = _prefix_attrs(prefix) + [("IPUDP_RULE_A_TYPE", RULE_KINDS.index(kind))]
        if tunnel_id is not None:
            rattrs.append(("IPUDP_RULE_A_TUNNEL_ID", tunnel_id))
        self._request(f"{what} rule {prefix} on {ifname}", cmd,
                      self._dev_attr(ifname) + [("IPUDP_A_RULE", {"attrs": rattrs})],
                      NLM_F_REQUEST | NLM_F_ACK)

    def add_rule(self, ifname: str, prefix: str, tunnel_id: int, kind: str = "dest") -> None:
        """Route inner ``prefix`` to a tunnel (``dest``) or allow it from one (``source``)."""
        self._rule("adding", abi.CMD_RULE_NEW, ifname, prefix, tunnel_id, kind)

    def del_rule(self, ifname: str, prefix: str, tunnel_id: int | None = None,
                 kind: str = "dest") -> None:
        self._rule("deleting", abi.CMD_RULE_DEL, ifname, prefix, tunnel_id, kind)

    def route_get(self, ifname: str, address: str, kind: str = "dest") -> int | None:
        """The id of the tunnel the kernel picks for ``address``; None if no rule matches."""
        rattrs = _prefix_attrs(address)[:1] + [("IPUDP_RULE_A_TYPE", RULE_KINDS.index(kind))]
        try:
            replies = self._request(f"looking up {address} on {ifname}", abi.CMD_ROUTE_GET,
                                    self._dev_attr(ifname) + [("IPUDP_A_RULE",
                                                               {"attrs": rattrs})],
                                    NLM_F_REQUEST)
        except KernelError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return int(replies[0][1]["IPUDP_A_TUNNEL"]["IPUDP_TUNNEL_A_ID"])

    def set_device(self, ifname: str, *, port: int | None = None,
                   fd: int | None = None, idle_timeout: int | None = None,
                   return_fd: bool = False) -> None:
        """Local port, a userspace socket to use (an unbound one is bound to
        the device's port), and/or the silence (seconds) after which a
        tunnel's next received packet is announced.  ``return_fd``: stop
        using our sockets; module sockets on the same ports take over."""
        attrs = rawnl.device_attrs(ifname, port=port, fd=fd, idle_timeout=idle_timeout,
                                   return_fd=return_fd)
        self._request(f"configuring {ifname}", abi.CMD_DEV_SET, attrs,
                      NLM_F_REQUEST | NLM_F_ACK)

    def set_tunnel(self, ifname: str, remote: str, *, remote_port: int = DEFAULT_PORT,
                   local: str | None = None, tunnel_id: int = 0,
                   replace: bool = False, keepalive: int = 0) -> None:
        """Set a tunnel of ``ifname``; EEXIST unless ``replace``.  ``keepalive``:
        seconds between kernel-sent keepalive datagrams (0: none)."""
        tattrs = _tunnel_attrs(Tunnel(remote, remote_port, local, tunnel_id,
                                      keepalive=keepalive))
        attrs = self._dev_attr(ifname) + [("IPUDP_A_TUNNEL", {"attrs": tattrs})]
        if replace:
            attrs.append(("IPUDP_A_FLAGS", abi.F_REPLACE))
        self._request(f"setting the tunnel of {ifname}", abi.CMD_TUNNEL_NEW, attrs,
                      NLM_F_REQUEST | NLM_F_ACK)

    def del_tunnel(self, ifname: str, tunnel_id: int | None = None) -> None:
        attrs = self._dev_attr(ifname)
        if tunnel_id is not None:
            attrs.append(("IPUDP_A_TUNNEL", {"attrs": [("IPUDP_TUNNEL_A_ID", tunnel_id)]}))
        self._request(f"deleting the tunnel of {ifname}", abi.CMD_TUNNEL_DEL, attrs,
                      NLM_F_REQUEST | NLM_F_ACK)

    # -- notifications --------------------------------------------------

    def events(self) -> Iterator[Event]:
        """Kernel notifications as they happen (tunnel added, deleted, or
        receiving again after being idle); blocks between them."""
        with self.event_source() as source:
            while True:
                yield from source.read()

    def event_source(self) -> EventSource:
        """The notifications as a socket for a select loop (EventSource.read());
        subscribing needs CAP_NET_ADMIN (the events carry every peer's
        endpoint): without it, KernelError EPERM."""
        group = _events_group(self._channel()[0])

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, rawnl.NETLINK_GENERIC)
            try:
                sock.bind((0, 0))
                _grow_rcvbuf(sock)  # a burst of joins is a burst of events
                sock.setsockopt(rawnl.SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, group)
            except OSError as e:
                sock.close()
                raise KernelError("subscribing to the ipudp events", e.errno or errno.EIO) \
                    from None
            return sock

        return EventSource(self._made_here(make))

    # -- batches: thousands of requests per system call -----------------

    def _batch(self, what: str, cmd: int, requests: list[tuple[str, list[Any]]]) -> None:
        """Send ``(description, attrs)`` requests in large batches.

        Every request is carried out (the kernel answers each on its own);
        afterwards the first failure, if any, raises :class:`KernelError`
        naming it and how many failed.
        """
        family = self.family_id
        failures: list[tuple[str, nlcodec.Ack]] = []
        channel = self._made_here(lambda: rawnl.Channel(rawnl.NETLINK_GENERIC))
        sock = channel.sock
        try:
            _grow_rcvbuf(sock)
            i = 0
            while i < len(requests):
                data, pending = bytearray(), dict[int, str]()
                while i < len(requests) and len(pending) < _BATCH_REQUESTS:
                    data += _genl_request(family, cmd, i + 1, requests[i][1])
                    pending[i + 1] = requests[i][0]
                    i += 1
                sock.sendall(data)
                while pending:
                    try:
                        buf = sock.recv(1 << 20)
                    except OSError as e:
                        raise KernelError(f"{what} reading the kernel's answers", e.errno or 0,
                                          "answers lost") from None
                    try:
                        answers = nlcodec.split(buf)
                    except nlcodec.NetlinkFormatError as e:
                        raise KernelError(f"{what} reading the kernel's answers", errno.EPROTO,
                                          str(e)) from None
                    for mtype, flags, seq, payload in answers:
                        if mtype != nlcodec.NLMSG_ERROR:
                            continue
                        ack = nlcodec.parse_ack(flags, seq, payload)
                        desc = pending.pop(seq, None)
                        if desc is not None and ack.errno:
                            failures.append((desc, ack))
        finally:
            sock.close()
        if failures:
            desc, ack = failures[0]
            more = f" ({len(failures)} of {len(requests)} failed)" if len(failures) > 1 else ""
            raise KernelError(f"{what} {desc}{more}", ack.errno, ack.message)

    def add_tunnels(self, ifname: str, tunnels: list[Tunnel], replace: bool = False) -> None:
        """Set many tunnels of a MULTI device (``id``, ``remote``, ports, ``local``)."""
        reqs = []
        for t in tunnels:
            attrs = self._dev_attr(ifname) + [("IPUDP_A_TUNNEL",
                                               {"attrs": _tunnel_attrs(t)})]
            if replace:
                attrs.append(("IPUDP_A_FLAGS", abi.F_REPLACE))
            reqs.append((f"tunnel {t.id} ({t.remote})", attrs))
        self._batch(f"setting tunnels of {ifname}:", abi.CMD_TUNNEL_NEW, reqs)

    def del_tunnels(self, ifname: str, ids: list[int]) -> None:
        """Delete many tunnels (and their rules) at once."""
        reqs = [(f"tunnel {i}", self._dev_attr(ifname) + [
            ("IPUDP_A_TUNNEL", {"attrs": [("IPUDP_TUNNEL_A_ID", i)]})]) for i in ids]
        self._batch(f"deleting tunnels of {ifname}:", abi.CMD_TUNNEL_DEL, reqs)

    def add_rules(self, ifname: str, rules: list[Rule]) -> None:
        """Add many rules at once (see :meth:`add_rule`)."""
        reqs = []
        for r in rules:
            rattrs = _prefix_attrs(r.prefix) + [
                ("IPUDP_RULE_A_TYPE", RULE_KINDS.index(r.kind)),
                ("IPUDP_RULE_A_TUNNEL_ID", r.tunnel_id)]
            reqs.append((f"rule {r.prefix} -> {r.tunnel_id}",
                         self._dev_attr(ifname) + [("IPUDP_A_RULE", {"attrs": rattrs})]))
        self._batch(f"adding rules on {ifname}:", abi.CMD_RULE_NEW, reqs)

    # -- rtnetlink --------------------------------------------------------

    def add_device(self, ifname: str, *, mtu: int | None = None, mode: str | None = None,
                   port: int | None = None) -> None:
        """Create an ipudp device; ``mode`` and ``port`` go in the same request."""
        if mode is not None and mode not in MODES:
            raise LvnError(f"unknown mode {mode!r} (expected one of: {', '.join(MODES)})")
        self._add_link(ifname, mtu=mtu, mode=None if mode is None else MODES.index(mode),
                       port=port)

    def _add_link(self, ifname: str, *, mtu: int | None = None, mode: int | None = None,
                  port: int | None = None) -> None:
        try:
            rawnl.create_device(self._links.route, ifname, mtu, mode, port)
        except rawnl.KernelRefused as e:
            raise _refused(e) from None

    def link_info(self, ifname: str) -> dict[str, Any]:
        """Mode and port as rtnetlink reports them (IFLA_INFO_DATA)."""
        try:
            answers = self._links.route.request(
                f"showing {ifname}", rawnl.RTM_GETLINK, NLM_F_ACK,
                rawnl._ifinfo(0, 0, 0) + rawnl._ifname_attr(ifname))
        except rawnl.KernelRefused as e:
            raise _refused(e) from None
        data: dict[str, Any] = {}
        for _, _, payload in answers:
            for atype, info in nlcodec.attrs(payload, 16):  # after struct ifinfomsg
                if atype == rawnl.IFLA_LINKINFO:
                    for itype, value in nlcodec.attrs(info):
                        if itype == rawnl.IFLA_INFO_DATA:
                            data = nlcodec.decode_attrs(_LinkData, value)
        return {"mode": abi.name_of(MODES, data.get("IFLA_IPUDP_MODE", 0)),
                "port": data.get("IFLA_IPUDP_PORT")}

    def del_device(self, ifname: str) -> None:
        try:
            self._links.del_device(ifname)
        except rawnl.KernelRefused as e:
            raise _refused_as(f"deleting {ifname}", e) from None

    def link(self, ifname: str) -> tuple[int, bool]:
        """(MTU, administratively up) of any interface."""
        try:
            return self._links.link(ifname)
        except rawnl.KernelRefused as e:
            raise _refused_as(f"showing {ifname}", e) from None

    def set_link(self, ifname: str, *, mtu: int | None = None, up: bool | None = None) -> None:
        changed = [name for name, value in (("mtu", mtu), ("state", up)) if value is not None]
        try:
            self._links.set_link(ifname, mtu=mtu, up=up)
        except rawnl.KernelRefused as e:
            raise _refused_as(f"setting {', '.join(changed)} of {ifname}", e) from None

    def addresses(self, ifname: str) -> list[str]:
        """The interface's addresses as "address/prefixlen" (link-local included)."""
        try:
            return self._links.addresses(ifname)
        except rawnl.KernelRefused as e:
            raise _refused_as(f"listing the addresses of {ifname}", e) from None

    def add_address(self, ifname: str, address: str) -> None:
        iface = _interface(address)
        try:
            self._links.add_address(ifname, f"{iface.ip}/{iface.network.prefixlen}")
        except rawnl.KernelRefused as e:
            raise _refused_as(f"adding address {address} on {ifname}", e) from None

    def del_address(self, ifname: str, address: str) -> None:
        iface = _interface(address)
        try:
            self._links.del_address(ifname, f"{iface.ip}/{iface.network.prefixlen}")
        except rawnl.KernelRefused as e:
            raise _refused_as(f"deleting address {address} on {ifname}", e) from None
