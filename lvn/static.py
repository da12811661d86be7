"""Static tunnels from ``config tunnel`` sections: desired state, diff, apply.

``desired`` turns the config into per-device specs, ``plan`` compares them
with what the kernel has and returns the smallest list of actions (pure,
unit-tested), ``apply`` carries the actions out.  Devices are only deleted
when an earlier apply created them (the names are kept in a state file), so
devices made by hand or by the agent are never touched unless configured.
"""

import errno
import json
from collections import namedtuple

from . import LvnError, files

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol

    from .messages import Lease
    from .schema import StaticTunnel

    class TunnelView(Protocol):
        """A kernel tunnel as lvn.model.Tunnel (CPython) or lvn.rawnl has it."""

        @property
        def id(self) -> int: ...
        @property
        def remote(self) -> str: ...
        @property
        def remote_port(self) -> int: ...
        @property
        def local(self) -> str | None: ...
        @property
        def keepalive(self) -> int: ...

    class DeviceView(Protocol):
        @property
        def ifname(self) -> str: ...
        @property
        def mode(self) -> str: ...
        @property
        def port(self) -> int: ...
        @property
        def tunnels(self) -> Sequence[TunnelView]: ...

    class RuleView(Protocol):
        @property
        def prefix(self) -> str: ...
        @property
        def tunnel_id(self) -> int: ...
        @property
        def kind(self) -> str: ...

    class Kernel(Protocol):
        """What applying needs: lvn.netlink.Ipudp (CPython), lvn.rawnl.Kernel (node)."""

        def devices(self) -> Sequence[DeviceView]: ...
        def rules(self, ifname: str) -> Sequence[RuleView]: ...
        def link(self, ifname: str) -> tuple[int, bool]: ...
        def addresses(self, ifname: str) -> list[str]: ...
        def add_device(self, ifname: str, *, mtu: int | None = None, mode: str | None = None,
                       port: int | None = None) -> None: ...
        def del_device(self, ifname: str) -> None: ...
        def set_device(self, ifname: str, *, port: int | None = None) -> None: ...
        def set_tunnel(self, ifname: str, remote: str, *, remote_port: int = ...,
                       local: str | None = None, tunnel_id: int = 0,
                       replace: bool = False, keepalive: int = 0) -> None: ...
        def del_tunnel(self, ifname: str, tunnel_id: int | None = None) -> None: ...
        def add_rule(self, ifname: str, prefix: str, tunnel_id: int,
                     kind: str = "dest") -> None: ...
        def del_rule(self, ifname: str, prefix: str, tunnel_id: int | None = None,
                     kind: str = "dest") -> None: ...
        def set_link(self, ifname: str, *, mtu: int | None = None,
                     up: bool | None = None) -> None: ...
        def add_address(self, ifname: str, address: str) -> None: ...
        def del_address(self, ifname: str, address: str) -> None: ...


STATE_FILE = "/var/run/lvn/static.json"


class TunnelSpec(namedtuple("TunnelSpec", ["remote", "remote_port", "local", "keepalive"])):
    __slots__ = ()
    remote: str
    remote_port: int
    local: "str | None"
    keepalive: int


class DeviceSpec(namedtuple("DeviceSpec", ["ifname", "mode", "port", "mtu", "tunnels",
                                           "rules", "addresses"])):
    """``tunnels``: tunnel id to TunnelSpec; ``rules``: (prefix, tunnel id,
    kind) tuples; ``addresses``: "10.9.0.1/24" texts."""

    __slots__ = ()
    ifname: str
    mode: str
    port: int
    mtu: "int | None"
    tunnels: "dict[int, TunnelSpec]"
    rules: "frozenset[tuple[str, int, str]]"
    addresses: "frozenset[str]"


class Actual(namedtuple("Actual", ["device", "rules", "mtu", "up", "addresses"])):
    """What the kernel has for one device."""

    __slots__ = ()
    device: "DeviceView"
    rules: "Sequence[RuleView]"
    mtu: int
    up: bool
    addresses: "frozenset[str]"


def _text(act: "Action") -> str:
    return " ".join([act.op.replace("_", " "), act.ifname] + [str(a) for a in args_of(act)])


def args_of(act: "Action") -> "tuple[object, ...]":
    """An action's fields after ``ifname`` (lvn apply --json prints them)."""
    return tuple(act)[1:]


# The actions of a plan, one class each; ``run`` carries one out on a Kernel.

class AddDevice(namedtuple("AddDevice", ["ifname", "mtu", "mode", "port"])):
    __slots__ = ()
    op = "add_device"
    ifname: str
    mtu: "int | None"
    mode: str
    port: int
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.add_device(self.ifname, mtu=self.mtu, mode=self.mode, port=self.port)


class DelDevice(namedtuple("DelDevice", ["ifname"])):
    __slots__ = ()
    op = "del_device"
    ifname: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.del_device(self.ifname)


class SetPort(namedtuple("SetPort", ["ifname", "port"])):
    __slots__ = ()
    op = "set_port"
    ifname: str
    port: int
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.set_device(self.ifname, port=self.port)


class SetTunnel(namedtuple("SetTunnel", ["ifname", "tunnel_id", "remote", "remote_port",
                                         "local", "replace", "keepalive"])):
    """Add tunnel ``tunnel_id`` (``replace``: change the existing one)."""

    __slots__ = ()
    op = "set_tunnel"
    ifname: str
    tunnel_id: int
    remote: str
    remote_port: int
    local: "str | None"
    replace: bool
    keepalive: int
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.set_tunnel(self.ifname, self.remote, remote_port=self.remote_port,
                          local=self.local, tunnel_id=self.tunnel_id, replace=self.replace,
                          keepalive=self.keepalive)


class DelTunnel(namedtuple("DelTunnel", ["ifname", "tunnel_id"])):
    __slots__ = ()
    op = "del_tunnel"
    ifname: str
    tunnel_id: int
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.del_tunnel(self.ifname, self.tunnel_id)


class AddRule(namedtuple("AddRule", ["ifname", "prefix", "tunnel_id", "kind"])):
    __slots__ = ()
    op = "add_rule"
    ifname: str
    prefix: str
    tunnel_id: int
    kind: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.add_rule(self.ifname, self.prefix, self.tunnel_id, self.kind)


class DelRule(namedtuple("DelRule", ["ifname", "prefix", "tunnel_id", "kind"])):
    __slots__ = ()
    op = "del_rule"
    ifname: str
    prefix: str
    tunnel_id: int
    kind: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.del_rule(self.ifname, self.prefix, self.tunnel_id, self.kind)


class AddAddress(namedtuple("AddAddress", ["ifname", "address"])):
    __slots__ = ()
    op = "add_address"
    ifname: str
    address: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.add_address(self.ifname, self.address)


class DelAddress(namedtuple("DelAddress", ["ifname", "address"])):
    __slots__ = ()
    op = "del_address"
    ifname: str
    address: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.del_address(self.ifname, self.address)


class SetMtu(namedtuple("SetMtu", ["ifname", "mtu"])):
    __slots__ = ()
    op = "set_mtu"
    ifname: str
    mtu: int
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.set_link(self.ifname, mtu=self.mtu)


class SetUp(namedtuple("SetUp", ["ifname"])):
    __slots__ = ()
    op = "set_up"
    ifname: str
    __str__ = _text

    def run(self, kernel: "Kernel") -> None:
        kernel.set_link(self.ifname, up=True)


if TYPE_CHECKING:
    Action = (AddDevice | DelDevice | SetPort | SetTunnel | DelTunnel | AddRule | DelRule
              | AddAddress | DelAddress | SetMtu | SetUp)


def groups(tunnels: "Sequence[StaticTunnel]") -> "dict[str, list[tuple[int, StaticTunnel]]]":
    """The enabled tunnels per device, with their tunnel ids: 0 on a fixed
    device, else ``id`` or the position among the device's sections (from 1)."""
    out: dict[str, list[tuple[int, StaticTunnel]]] = {}
    for t in tunnels:
        if t.enabled:
            group = out.setdefault(t.ifname, [])
            tid = 0 if t.mode == "fixed" else (t.id if t.id is not None else len(group) + 1)
            group.append((tid, t))
    return out


def desired(tunnels: "Sequence[StaticTunnel]") -> "dict[str, DeviceSpec]":
    """Per device, what the enabled ``config tunnel`` sections ask for."""
    specs = {}
    for ifname, group in groups(tunnels).items():
        first = group[0][1]
        by_id: dict[int, TunnelSpec] = {}
        rules: set[tuple[str, int, str]] = set()
        addresses: set[str] = set()
        for tid, t in group:
            by_id[tid] = TunnelSpec(t.remote, t.remote_port, t.local, t.keepalive)
            rules.update((p, tid, "dest") for p in t.route)
            rules.update((p, tid, "source") for p in t.allowed_source)
            addresses.update(t.address)
        specs[ifname] = DeviceSpec(ifname, first.mode, first.port, first.mtu, by_id,
                                   frozenset(rules), frozenset(addresses))
    return specs


def _create(spec: DeviceSpec) -> "list[Action]":
    return [AddDevice(spec.ifname, spec.mtu, spec.mode, spec.port)]


def _fill(spec: DeviceSpec, actual: "Actual | None") -> "list[Action]":
    """Tunnels, rules, addresses and link state of an existing (or new) device."""
    ifname = spec.ifname
    have_tunnels = {t.id: TunnelSpec(t.remote, t.remote_port, t.local, t.keepalive)
                    for t in (actual.device.tunnels if actual else ())}
    have_rules = {(r.prefix, r.tunnel_id, r.kind) for r in (actual.rules if actual else ())}
    have_addrs = actual.addresses if actual else frozenset()
    acts: list[Action] = [DelTunnel(ifname, tid)
                          for tid in sorted(set(have_tunnels) - set(spec.tunnels))]
    # a deleted tunnel takes its rules along
    have_rules = {r for r in have_rules if r[1] in spec.tunnels}
    acts += [DelRule(ifname, *r) for r in sorted(have_rules - spec.rules)]
    for tid, t in sorted(spec.tunnels.items()):
        old = have_tunnels.get(tid)
        if old != t:
            acts.append(SetTunnel(ifname, tid, t.remote, t.remote_port, t.local,
                                  old is not None, t.keepalive))
    acts += [AddRule(ifname, *r) for r in sorted(spec.rules - have_rules)]
    acts += [DelAddress(ifname, a) for a in sorted(have_addrs - spec.addresses)]
    acts += [AddAddress(ifname, a) for a in sorted(spec.addresses - have_addrs)]
    if actual is not None and spec.mtu is not None and actual.mtu != spec.mtu:
        acts.append(SetMtu(ifname, spec.mtu))
    if actual is None or not actual.up:
        acts.append(SetUp(ifname))
    return acts


def plan(specs: "dict[str, DeviceSpec]", actual: "dict[str, Actual]",
         managed: "set[str]") -> "list[Action]":
    """The actions that turn ``actual`` into ``specs``.

    ``managed``: devices an earlier apply created; those that are no longer
    configured are deleted.  Unchanged tunnels are left alone, so their
    traffic and counters carry on.
    """
    acts: list[Action] = [DelDevice(name) for name in sorted(managed - set(specs))
                          if name in actual]
    for ifname, spec in sorted(specs.items()):
        cur = actual.get(ifname)
        if cur is not None and cur.device.mode != spec.mode:
            # the kernel changes the mode only of a device without tunnels
            acts.append(DelDevice(ifname))
            cur = None
        if cur is None:
            acts += _create(spec)
        elif cur.device.port != spec.port:
            acts.append(SetPort(ifname, spec.port))
        acts += _fill(spec, cur)
    return acts


def is_link_local(address: str) -> bool:
    """fe80::/10 or 169.254.0.0/16 (an "address/len" text as the kernel lists it)."""
    text = address.lower()
    return text[:3] in ("fe8", "fe9", "fea", "feb") and text[3:4] not in ("", ":", ".") \
        or text.startswith("169.254.")


def lease_changes(have: "list[str]", want: "list[str]") -> "tuple[list[str], list[str]]":
    """(to delete, to add) that take a client's device from the addresses
    ``have`` (as the kernel lists them) to its lease ``want``; the link-local
    addresses the kernel gives a device stay."""
    have = [a for a in have if not is_link_local(a)]
    return [a for a in have if a not in want], [a for a in want if a not in have]


def source_changes(rules: "Sequence[RuleView]", want: "list[str]") -> "tuple[list[str], list[str]]":
    """(to delete, to add): the allowed-source rules of a client's tunnel
    (``rules`` as the kernel lists them) made ``want``, the server's pools."""
    have = [r.prefix for r in rules if r.kind == "source"]
    return [p for p in have if p not in want], [p for p in want if p not in have]


def apply_lease(kernel: "Kernel", ifname: str, lease: "Lease") -> "list[str]":
    """A client's device made what its lease says (both clients): its
    addresses (the kernel's link-local ones stay), MTU, link up.  Returns
    the leased addresses, sorted."""
    want = lease.addresses()
    delete, add = lease_changes(kernel.addresses(ifname), want)
    for a in delete:
        kernel.del_address(ifname, a)
    for a in add:
        kernel.add_address(ifname, a)
    kernel.set_link(ifname, mtu=lease.mtu, up=True)
    return sorted(want)


def apply_sources(kernel: "Kernel", ifname: str, want: "list[str]") -> None:
    """A client's FIXED tunnel accepts only inner sources in ``want`` (none
    given: any), so that a spoofer of the server's address and port cannot
    inject packets from elsewhere."""
    delete, add = source_changes(kernel.rules(ifname), want)
    for p in delete:
        kernel.del_rule(ifname, p, 0, "source")
    for p in add:
        kernel.add_rule(ifname, p, 0, "source")


def read_actual(kernel: "Kernel") -> "dict[str, Actual]":
    out = {}
    for dev in kernel.devices():
        mtu, up = kernel.link(dev.ifname)
        addrs = frozenset(a for a in kernel.addresses(dev.ifname) if not is_link_local(a))
        out[dev.ifname] = Actual(dev, tuple(kernel.rules(dev.ifname)), mtu, up, addrs)
    return out


def load_managed(path: str) -> "set[str]":
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return set()
        raise LvnError("cannot read the static tunnel state " + path + ": "
                       + str(getattr(e, "strerror", None) or e)) from None
    except ValueError as e:
        raise LvnError("cannot read the static tunnel state " + path + ": " + str(e)) from None
    names = data.get("devices") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise LvnError(path + ": not a static tunnel state file")
    return set(names)


def save_managed(path: str, names: "set[str]") -> None:
    """Write atomically: a crash leaves the old or the new file, never half."""
    files.write_atomic(path, json.dumps({"devices": sorted(names)}).encode())


def apply(kernel: "Kernel", tunnels: "Sequence[StaticTunnel]", state_file: str = STATE_FILE,
          dry_run: bool = False) -> "list[Action]":
    """Make the kernel match the static tunnels; the actions taken."""
    specs = desired(tunnels)
    managed = load_managed(state_file)
    actual = read_actual(kernel)
    acts = plan(specs, actual, managed)
    if dry_run:
        return acts
    created = {a.ifname for a in acts if isinstance(a, AddDevice)}
    # record new devices first, so an interrupted apply still cleans them up later
    save_managed(state_file, managed | created)
    for act in acts:
        act.run(kernel)
    save_managed(state_file, (managed | created) & set(specs))
    return acts
