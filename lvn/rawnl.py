"""The kernel operations of a node's client, over raw netlink sockets.

For MicroPython, which has no pyroute2: an ipudp device, its data socket
and tunnel (generic netlink), its link state, MTU and addresses
(rtnetlink).  Messages are made and read by lvn.nlcodec with the attribute
spaces of lvn.ipudp_abi, the same bytes lvn.netlink sends on CPython; the
kernel's extended-ack text ends up in :class:`KernelRefused`.  Runs on
CPython too (the tests run it there and on MicroPython).
"""

import socket
import struct
import sys
from collections import namedtuple

from . import ipudp_abi as abi
from . import nlcodec

try:
    from typing import Any
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

AF_NETLINK = 16
NETLINK_ROUTE = 0
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_IPUDP_MODE = 1  # enum ipudp_link_attr
IFLA_IPUDP_PORT = 2
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFF_UP = 1
AF_INET = 2
AF_INET6 = 10
ENOENT = 2
ENODEV = 19
EEXIST = 17
EOPNOTSUPP = 95
# The kernel sizes a dump's messages to the largest read a socket has
# offered (up to 32 KiB; at least NLMSG_GOODSIZE, under 8 KiB whatever the
# page size).  MicroPython takes each read's whole buffer from its heap in
# one piece, which a small heap soon lacks (16 KiB failed in a 384 KiB
# heap), and its readinto() waits to fill the buffer: the node reads 8 KiB.
_RECV_SIZE = 8192 if sys.implementation.name == "micropython" else 65536
_ERRNO_NAMES = {1: "operation not permitted", 2: "no such entry", 13: "permission denied",
                17: "already exists", 19: "no such device", 22: "invalid argument",
                34: "out of range", 95: "not supported", 98: "address in use"}


class KernelRefused(Exception):
    """The kernel refused a request: ``what`` was being done, ``errno``, and
    the kernel's own message if it gave one."""

    def __init__(self, what: str, errno: int, message: str | None = None) -> None:
        reason = _ERRNO_NAMES.get(errno, f"errno {errno}")
        text = f"{what}: {message} ({reason})" if message else f"{what}: {reason}"
        super().__init__(text)
        self.what = what
        self.errno = errno
        self.message = message


class ModuleMissing(KernelRefused):
    """The ipudp module is not loaded (no genetlink family, no link kind)."""


def _bind(sock: socket.socket) -> None:
    """Bind to a kernel-chosen port id: CPython takes (pid, groups),
    MicroPython a struct sockaddr_nl."""
    try:
        sock.bind((0, 0))
    except TypeError:
        sock.bind(struct.pack("HHII", AF_NETLINK, 0, 0, 0))


class Channel:
    """One netlink socket: requests out, their answers in."""

    def __init__(self, protocol: int) -> None:
        self.sock = socket.socket(AF_NETLINK, socket.SOCK_RAW, protocol)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            _bind(self.sock)
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def request(self, what: str, mtype: int, flags: int,
                body: bytes) -> list[tuple[int, int, bytes]]:
        """``(type, flags, payload)`` of the answers, up to the ack or the
        end of the dump; a refusal raises :class:`KernelRefused`."""
        self.seq += 1
        self.sock.send(nlcodec.message(mtype, flags | nlcodec.NLM_F_REQUEST, self.seq, body))
        out: list[tuple[int, int, bytes]] = []
        while True:
            try:
                answers = nlcodec.split(self.sock.recv(_RECV_SIZE))
            except nlcodec.NetlinkFormatError as e:
                raise KernelRefused(what, 71, str(e)) from None  # EPROTO
            for atype, aflags, seq, payload in answers:
                if seq != self.seq:
                    continue  # the answer to an earlier, abandoned request
                if atype in (nlcodec.NLMSG_ERROR, nlcodec.NLMSG_DONE):
                    parse = nlcodec.parse_ack if atype == nlcodec.NLMSG_ERROR else \
                        nlcodec.parse_done
                    ack = parse(aflags, seq, payload)
                    if ack.errno:
                        raise KernelRefused(what, ack.errno, ack.message)
                    return out
                out.append((atype, aflags, payload))

    def close(self) -> None:
        self.sock.close()


def _nested(atype: int, payload: bytes) -> bytes:
    return nlcodec.attr(atype | nlcodec.NLA_F_NESTED, payload)


def _ip(text: str) -> tuple[int, bytes]:
    if ":" in text:
        return AF_INET6, nlcodec.ip6_packed(text)
    return AF_INET, nlcodec.ip4_packed(text)


def _family_attr(address: str, name: str) -> str:
    return name + ("6" if ":" in address else "4")


def _ifinfo(index: int, flags: int, change: int) -> bytes:
    """struct ifinfomsg (AF_UNSPEC)."""
    return struct.pack("BxHiII", 0, 0, index, flags, change)


def _ifname_attr(ifname: str) -> bytes:
    return nlcodec.attr(IFLA_IFNAME, ifname.encode() + b"\0")


def device_attrs(ifname: str, port: int | None = None, fd: int | None = None,
                 idle_timeout: int | None = None,
                 return_fd: bool = False) -> list[tuple[str, Any]]:
    """The attributes of a DEV_SET request (used by lvn.netlink too)."""
    attrs: list[tuple[str, Any]] = [("IPUDP_A_IFNAME", ifname)]
    if return_fd:
        attrs.append(("IPUDP_A_RETURN_FD", True))
    if idle_timeout is not None:
        attrs.append(("IPUDP_A_IDLE_TIMEOUT", idle_timeout))
    if port is not None:
        attrs.append(("IPUDP_A_PORT", port))
    if fd is not None:
        attrs.append(("IPUDP_A_FD", fd))
    return attrs


def resolve_family(genl: Channel) -> int:
    """The id the kernel gave the ipudp genetlink family."""
    body = struct.pack("BBH", CTRL_CMD_GETFAMILY, 1, 0) + nlcodec.attr(
        CTRL_ATTR_FAMILY_NAME, abi.GENL_NAME.encode() + b"\0")
    try:
        answers = genl.request("resolving the ipudp netlink family", GENL_ID_CTRL,
                               nlcodec.NLM_F_ACK, body)
    except KernelRefused as e:
        if e.errno == ENOENT:
            raise ModuleMissing(e.what, ENOENT, "the ipudp kernel module is not loaded "
                                "(modprobe ipudp)") from None
        raise
    for _, _, payload in answers:
        for atype, value in nlcodec.attrs(payload, 4):
            if atype == CTRL_ATTR_FAMILY_ID:
                return int(struct.unpack("H", value[:2])[0])
    raise KernelRefused("resolving the ipudp netlink family", 71, "no family id")


def create_device(route: Channel, ifname: str, mtu: int | None = None, mode: int | None = None,
                  port: int | None = None) -> None:
    """RTM_NEWLINK of an ipudp device (create, never replace); ``mode`` and
    ``port`` go in IFLA_INFO_DATA."""
    data = b""
    if mode is not None:
        data += nlcodec.attr(IFLA_IPUDP_MODE, struct.pack("B", mode))
    if port is not None:
        data += nlcodec.attr(IFLA_IPUDP_PORT, struct.pack("H", port))
    info = nlcodec.attr(IFLA_INFO_KIND, abi.GENL_NAME.encode() + b"\0")
    if data:
        info += _nested(IFLA_INFO_DATA, data)
    body = _ifinfo(0, 0, 0) + _ifname_attr(ifname)
    if mtu is not None:
        body += nlcodec.attr(IFLA_MTU, struct.pack("I", mtu))
    body += _nested(IFLA_LINKINFO, info)
    try:
        route.request("creating " + ifname, RTM_NEWLINK,
                      nlcodec.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)
    except KernelRefused as e:
        if e.errno == EOPNOTSUPP:
            raise ModuleMissing(e.what, e.errno, "the kernel does not know link kind "
                                "'ipudp': load the module (modprobe ipudp)") from None
        raise


_STATS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_spoofed", "rx_malformed")


def tunnel_entry(t: dict[str, Any]) -> dict[str, Any]:
    """A decoded IPUDP_A_TUNNEL in the shape of ``asdict(lvn.model.Tunnel)``."""
    def a(name: str) -> Any:
        return t.get("IPUDP_TUNNEL_A_" + name)

    stats = t.get("IPUDP_TUNNEL_A_STATS", {})
    return {"remote": a("REMOTE4") or a("REMOTE6"), "remote_port": a("REMOTE_PORT") or 0,
            "local": a("LOCAL4") or a("LOCAL6"), "id": a("ID") or 0,
            "last_rx_ms": a("LAST_RX_MS"), "last_tx_ms": a("LAST_TX_MS"),
            "stats": {k: stats.get("IPUDP_STATS_A_" + k.upper(), 0) for k in _STATS},
            "keepalive": a("KEEPALIVE") or 0}


class Tunnel(namedtuple("Tunnel", ["id", "remote", "remote_port", "local", "keepalive"])):
    """A kernel tunnel as lvn.static plans with it (lvn.model.Tunnel's names)."""

    __slots__ = ()
    id: int
    remote: str
    remote_port: int
    local: "str | None"
    keepalive: int


class Device(namedtuple("Device", ["ifname", "ifindex", "mode", "port", "tunnels"])):
    __slots__ = ()
    ifname: str
    ifindex: int
    mode: str
    port: int
    tunnels: "tuple[Tunnel, ...]"


class Rule(namedtuple("Rule", ["prefix", "tunnel_id", "kind"])):
    __slots__ = ()
    prefix: str
    tunnel_id: int
    kind: str


class Kernel:
    """ipudp devices, their tunnels and rules, and their interfaces, in this
    netns: what the node's agent and ``lvn-node apply`` (lvn.static) need."""

    def __init__(self) -> None:
        self.route = Channel(NETLINK_ROUTE)
        self.genl = Channel(NETLINK_GENERIC)
        self.family = resolve_family(self.genl)

    def close(self) -> None:
        self.route.close()
        self.genl.close()

    def _ipudp(self, what: str, cmd: int, attrs: list[tuple[str, Any]],
               flags: int = nlcodec.NLM_F_ACK) -> list[bytes]:
        body = struct.pack("BBH", cmd, abi.GENL_VERSION, 0) + nlcodec.encode_attrs(abi.Msg, attrs)
        return [p for _, _, p in self.genl.request(what, self.family, flags, body)]

    def device(self, ifname: str) -> dict[str, int] | None:
        """``ifindex``, ``port``, ``sock_flags``, ``mode`` of an ipudp device; None if absent."""
        try:
            answers = self._ipudp("showing " + ifname, abi.CMD_DEV_GET,
                                  [("IPUDP_A_IFNAME", ifname)])
        except KernelRefused as e:
            if e.errno == ENODEV:
                return None
            raise
        d = nlcodec.decode_attrs(abi.Msg, answers[0], 4)
        return {key: int(d.get("IPUDP_A_" + key.upper(), 0))
                for key in ("ifindex", "port", "sock_flags", "mode")}

    def tunnels(self, ifname: str) -> list[dict[str, Any]]:
        """The device's tunnels, each as the library's Tunnel (lvn.model)
        turned into a dict: what ``ubus call lvn tunnels`` lists."""
        answers = self._ipudp("listing the tunnels of " + ifname, abi.CMD_TUNNEL_GET,
                              [("IPUDP_A_IFNAME", ifname)], nlcodec.NLM_F_DUMP)
        return [tunnel_entry(nlcodec.decode_attrs(abi.Msg, a, 4).get("IPUDP_A_TUNNEL", {}))
                for a in answers]

    def devices(self) -> "list[Device]":
        """Every ipudp device of this netns, with its tunnels."""
        out = []
        for payload in self._ipudp("listing ipudp devices", abi.CMD_DEV_GET, [],
                                   nlcodec.NLM_F_DUMP):
            d = nlcodec.decode_attrs(abi.Msg, payload, 4)
            name = d.get("IPUDP_A_IFNAME", "")
            tunnels = tuple(Tunnel(t["id"], t["remote"], t["remote_port"], t["local"],
                                   t["keepalive"]) for t in self.tunnels(name))
            out.append(Device(name, d.get("IPUDP_A_IFINDEX", 0),
                              abi.name_of(abi.MODES, d.get("IPUDP_A_MODE", 0)),
                              d.get("IPUDP_A_PORT", abi.DEFAULT_PORT), tunnels))
        return out

    def rules(self, ifname: str) -> "list[Rule]":
        out = []
        for payload in self._ipudp("listing the rules of " + ifname, abi.CMD_RULE_GET,
                                   [("IPUDP_A_IFNAME", ifname)], nlcodec.NLM_F_DUMP):
            r = nlcodec.decode_attrs(abi.Msg, payload, 4).get("IPUDP_A_RULE", {})
            addr = r.get("IPUDP_RULE_A_PREFIX4") or r.get("IPUDP_RULE_A_PREFIX6")
            out.append(Rule(str(addr) + "/" + str(r.get("IPUDP_RULE_A_PREFIX_LEN", 0)),
                            r.get("IPUDP_RULE_A_TUNNEL_ID", 0),
                            abi.name_of(abi.RULE_KINDS, r.get("IPUDP_RULE_A_TYPE", 0))))
        return out

    def add_device(self, ifname: str, mtu: "int | None" = None, mode: "str | None" = None,
                   port: "int | None" = None) -> None:
        """An ipudp device (FIXED, port 50000 unless told otherwise)."""
        create_device(self.route, ifname, mtu,
                      None if mode is None else abi.MODES.index(mode), port)

    def del_device(self, ifname: str) -> None:
        self.route.request("deleting " + ifname, RTM_DELLINK, nlcodec.NLM_F_ACK,
                           _ifinfo(0, 0, 0) + _ifname_attr(ifname))

    def set_device(self, ifname: str, port: int | None = None, fd: int | None = None,
                   return_fd: bool = False) -> None:
        self._ipudp("configuring " + ifname, abi.CMD_DEV_SET,
                    device_attrs(ifname, port=port, fd=fd, return_fd=return_fd))

    def set_tunnel(self, ifname: str, remote: str, remote_port: int = abi.DEFAULT_PORT,
                   local: "str | None" = None, tunnel_id: int = 0, replace: bool = False,
                   keepalive: int = 0) -> None:
        """Set a tunnel of ``ifname`` (EEXIST for an existing id unless ``replace``)."""
        tattrs: list[tuple[str, Any]] = [
            ("IPUDP_TUNNEL_A_ID", tunnel_id),
            (_family_attr(remote, "IPUDP_TUNNEL_A_REMOTE"), remote),
            ("IPUDP_TUNNEL_A_REMOTE_PORT", remote_port)]
        if local is not None:
            tattrs.append((_family_attr(local, "IPUDP_TUNNEL_A_LOCAL"), local))
        if keepalive:
            tattrs.append(("IPUDP_TUNNEL_A_KEEPALIVE", keepalive))
        attrs: list[tuple[str, Any]] = [("IPUDP_A_IFNAME", ifname),
                                        ("IPUDP_A_TUNNEL", {"attrs": tattrs})]
        if replace:
            attrs.append(("IPUDP_A_FLAGS", abi.F_REPLACE))
        self._ipudp("setting the tunnel of " + ifname, abi.CMD_TUNNEL_NEW, attrs)

    def del_tunnel(self, ifname: str, tunnel_id: "int | None" = None) -> None:
        attrs: list[tuple[str, Any]] = [("IPUDP_A_IFNAME", ifname)]
        if tunnel_id is not None:
            attrs.append(("IPUDP_A_TUNNEL", {"attrs": [("IPUDP_TUNNEL_A_ID", tunnel_id)]}))
        self._ipudp("deleting the tunnel of " + ifname, abi.CMD_TUNNEL_DEL, attrs)

    def _rule(self, what: str, cmd: int, ifname: str, prefix: str,
              tunnel_id: "int | None", kind: str) -> None:
        addr, _, plen = prefix.partition("/")
        rattrs: list[tuple[str, Any]] = [
            (_family_attr(addr, "IPUDP_RULE_A_PREFIX"), addr),
            ("IPUDP_RULE_A_PREFIX_LEN", int(plen)),
            ("IPUDP_RULE_A_TYPE", abi.RULE_KINDS.index(kind))]
        if tunnel_id is not None:
            rattrs.append(("IPUDP_RULE_A_TUNNEL_ID", tunnel_id))
        self._ipudp(what + " rule " + prefix + " on " + ifname, cmd,
                    [("IPUDP_A_IFNAME", ifname), ("IPUDP_A_RULE", {"attrs": rattrs})])

    def add_rule(self, ifname: str, prefix: str, tunnel_id: int, kind: str = "dest") -> None:
        self._rule("adding", abi.CMD_RULE_NEW, ifname, prefix, tunnel_id, kind)

    def del_rule(self, ifname: str, prefix: str, tunnel_id: "int | None" = None,
                 kind: str = "dest") -> None:
        self._rule("deleting", abi.CMD_RULE_DEL, ifname, prefix, tunnel_id, kind)

    # -- rtnetlink: any interface, by name -----------------------------------

    def _link(self, ifname: str) -> "tuple[int, int, int]":
        """(ifindex, flags, MTU) of an interface."""
        answers = self.route.request("showing " + ifname, RTM_GETLINK, nlcodec.NLM_F_ACK,
                                     _ifinfo(0, 0, 0) + _ifname_attr(ifname))
        payload = answers[0][2]
        _, _, index, flags, _ = struct.unpack("BxHiII", payload[:16])
        mtu = 0
        for atype, value in nlcodec.attrs(payload, 16):
            if atype == IFLA_MTU:
                mtu = struct.unpack("I", value)[0]
        return index, flags, mtu

    def link(self, ifname: str) -> "tuple[int, bool]":
        """(MTU, administratively up)."""
        _, flags, mtu = self._link(ifname)
        return mtu, bool(flags & IFF_UP)

    def set_link(self, ifname: str, mtu: "int | None" = None, up: "bool | None" = None) -> None:
        body = _ifinfo(0, IFF_UP if up else 0, 0 if up is None else IFF_UP) + _ifname_attr(ifname)
        if mtu is not None:
            body += nlcodec.attr(IFLA_MTU, struct.pack("I", mtu))
        self.route.request("setting up " + ifname, RTM_NEWLINK, nlcodec.NLM_F_ACK, body)

    def addresses(self, ifname: str) -> "list[str]":
        """The interface's addresses as "address/prefixlen" (link-local included)."""
        ifindex = self._link(ifname)[0]
        out = []
        for _, _, payload in self.route.request("listing addresses", RTM_GETADDR,
                                                nlcodec.NLM_F_DUMP,
                                                struct.pack("BBBBI", 0, 0, 0, 0, 0)):
            family, plen, _, _, index = struct.unpack("BBBBI", payload[:8])
            if index != ifindex:
                continue
            found: dict[int, bytes] = {}
            for atype, value in nlcodec.attrs(payload, 8):
                found[atype] = value
            addr = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
            if addr is not None and family in (AF_INET, AF_INET6):
                out.append(nlcodec.ip_text(addr) + "/" + str(plen))
        return out

    def _address(self, what: str, mtype: int, flags: int, ifname: str, address: str) -> None:
        ip, _, plen = address.partition("/")
        family, packed = _ip(ip)
        body = struct.pack("BBBBI", family, int(plen), 0, 0, self._link(ifname)[0])
        body += nlcodec.attr(IFA_LOCAL, packed) + nlcodec.attr(IFA_ADDRESS, packed)
        self.route.request(what + " address " + address + " on " + ifname, mtype, flags, body)

    def add_address(self, ifname: str, address: str) -> None:
        self._address("adding", RTM_NEWADDR, nlcodec.NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                      ifname, address)

    def del_address(self, ifname: str, address: str) -> None:
        self._address("deleting", RTM_DELADDR, nlcodec.NLM_F_ACK, ifname, address)
