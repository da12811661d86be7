"""The schema of /etc/config/lvn and its checks, for both interpreters.

``check`` turns a parsed UCI package into the typed options of every
section and the list of every problem (naming section and option the way
``uci show`` does).  lvn.config builds the CPython agent's typed model on
it; the MicroPython node (lvn.node) validates and applies with it, so a
file means the same, with the same messages, on a node and on a server.
docs/config.md documents every option; tests/unit/test_config.py checks
that the two agree and runs the checks under MicroPython too.

Pure and MicroPython-friendly: no ipaddress, dataclasses or annotations
that need evaluating; addresses are parsed by lvn.nlcodec.
"""

import os
from collections import namedtuple

from . import capabilities, nlcodec, uci
from .ipudp_abi import DEFAULT_PORT, MODES

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from collections.abc import Callable

    # check()'s output: per section type, (reference, typed options) in file order
    Typed = dict[str, list[tuple[str, dict[str, object]]]]

ROLES = ("none", "server", "client")
LOG_LEVELS = ("debug", "info", "warning", "error")
SECTION_TYPES = ("agent", "server", "client", "tunnel")
_TRUE = ("1", "yes", "on", "true", "enabled")
_FALSE = ("0", "no", "off", "false", "disabled")
_DIGITS = "0123456789"
_HOST_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"


class Problem(namedtuple("Problem", ["where", "message"])):
    """One problem: ``where`` is "lvn.@tunnel[0].remote", "lvn.server" or a path."""

    __slots__ = ()
    where: str
    message: str

    def __str__(self) -> str:
        return self.where + ": " + self.message


class Opt(namedtuple("Opt", ["parse", "default", "is_list", "file"])):
    """An option: its parser (text to value, or ValueError), its default
    text, whether it is a ``list``, whether it must name an existing file."""

    __slots__ = ()
    parse: "Callable[[str], object]"
    default: "str | None"
    is_list: bool
    file: bool


def _opt(parse: "Callable[[str], object]", default: "str | None" = None,
         is_list: bool = False, file: bool = False) -> Opt:
    return Opt(parse, default, is_list, file)


# -- option types: each returns the typed value or raises ValueError -------

def _bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected a boolean (0/1, yes/no, on/off), got " + repr(text))


def _is_number(text: str) -> bool:
    return bool(text) and all(c in _DIGITS for c in text)


def _uint(low: int, high: int) -> "Callable[[str], int]":
    def parse(text: str) -> int:
        if not _is_number(text):
            raise ValueError("expected an integer " + str(low) + "-" + str(high)
                             + ", got " + repr(text))
        value = int(text)
        if not low <= value <= high:
            raise ValueError(str(value) + " is out of range " + str(low) + "-" + str(high))
        return value
    return parse


def _enum(*choices: str) -> "Callable[[str], str]":
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError("expected one of " + ", ".join(choices) + ", got " + repr(text))
        return text
    return parse


def _packed(text: str) -> bytes:
    """An address as 4 or 16 bytes; dotted quads are strict (no leading
    zeros, ASCII digits), as Python's ipaddress reads them."""
    if ":" in text:
        tail = text.rsplit(":", 1)[1]
        if "." in tail:
            _packed(tail)  # the embedded IPv4 part obeys the same rules
        return nlcodec.ip6_packed(text)
    parts = text.split(".")
    if len(parts) != 4 or not all(_is_number(p) and (p == "0" or p[0] != "0") for p in parts):
        raise ValueError("not an IPv4 address")
    return nlcodec.ip4_packed(text)


def parse_ip(text: str) -> str:
    """An IPv4 or IPv6 address in its canonical text."""
    try:
        return nlcodec.ip_text(_packed(text))
    except ValueError:
        raise ValueError(repr(text) + " is not an IPv4 or IPv6 address") from None


def _split_prefix(text: str) -> "tuple[bytes, int]":
    addr, sep, plen = text.partition("/")
    packed = _packed(addr)
    if sep and not _is_number(plen):
        raise ValueError(repr(plen) + " is not a prefix length")
    length = int(plen) if sep else len(packed) * 8
    if length > len(packed) * 8:
        raise ValueError(str(length) + " is longer than the address ("
                         + str(len(packed) * 8) + " bits)")
    return packed, length


def parse_prefix(text: str) -> str:
    """A network prefix (no host bits set), canonical."""
    try:
        packed, length = _split_prefix(text)
    except ValueError as e:
        raise ValueError(repr(text) + " is not a valid prefix (" + str(e) + ")") from None
    host = bytearray(packed)
    for i in range(len(host)):
        keep = min(8, max(0, length - 8 * i))
        host[i] &= (0xFF << (8 - keep)) & 0xFF
    if bytes(host) != packed:
        raise ValueError(repr(text) + " is not a valid prefix (host bits set: the network is "
                         + nlcodec.ip_text(bytes(host)) + "/" + str(length) + ")")
    return nlcodec.ip_text(packed) + "/" + str(length)


def parse_interface_address(text: str) -> str:
    """An address with its prefix length (10.99.0.1/24), canonical."""
    if "/" not in text:
        raise ValueError(repr(text) + " needs a prefix length (e.g. 10.99.0.1/24)")
    try:
        packed, length = _split_prefix(text)
    except ValueError:
        raise ValueError(repr(text) + " is not an address with prefix length") from None
    return nlcodec.ip_text(packed) + "/" + str(length)


def parse_ifname(text: str) -> str:
    if (not 1 <= len(text) <= 15 or any(c in text for c in "/: \t\n")
            or text in (".", "..")):
        raise ValueError(repr(text) + " is not a valid interface name (1-15 characters, "
                         "no '/', ':' or spaces)")
    return text


def _host(text: str) -> str:
    try:
        return parse_ip(text)
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    ok = bool(text) and len(text) <= 253 and all(
        1 <= len(label) <= 63 and label[0] != "-" and label[-1] != "-"
        and all(c in _HOST_CHARS for c in label)
        for label in labels)
    if not ok:
        raise ValueError(repr(text) + " is neither an IP address nor a host name")
    return text


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(repr(text) + " is not an absolute path")
    return text


# Hooks run as root: only scripts in this directory (root's), so that a
# login allowed to edit the configuration (LuCI's write ACL) cannot make
# the service run any program.  LVN_HOOKS_DIR (the service's environment,
# which the configuration cannot set) names another one, for tests.
HOOKS_DIR = "/etc/lvn/hooks.d"


def hooks_dir() -> str:
    return os.getenv("LVN_HOOKS_DIR") or HOOKS_DIR


def _hook(text: str) -> str:
    _path(text)
    where = hooks_dir().rstrip("/")
    name = text[len(where) + 1:]
    if not text.startswith(where + "/") or not name or "/" in name or name in (".", ".."):
        raise ValueError(repr(text) + " is not a script in " + where
                         + " (hooks run as root: only scripts there)")
    return text


# The agent's state (status, leases) lives in a directory of its own under
# one of these: a login allowed to edit the configuration cannot make the
# service write elsewhere.
STATE_ROOTS = ("/var/lib/", "/var/run/", "/run/", "/tmp/", "/etc/lvn/")


def _state_dir(text: str) -> str:
    _path(text)
    parts = text.split("/")
    if ".." in parts or "." in parts or not any(
            text.startswith(r) and len(text) > len(r) for r in STATE_ROOTS):
        raise ValueError(repr(text) + " is not a directory under " + ", ".join(STATE_ROOTS)
                         + " (the agent writes its state there as root)")
    return text


_PORT = _uint(1, 65535)
_ANY_PORT = _uint(0, 65535)


def _etcd_endpoint(text: str) -> str:
    host, _, port = text[7:].rpartition(":")
    try:
        if not text.startswith("http://"):
            raise ValueError
        _host(host[1:-1] if host.startswith("[") else host)
        _PORT(port)
    except ValueError:
        raise ValueError(repr(text) + " is not an etcd endpoint (http://host:port)") from None
    return text


def _etcd_prefix(text: str) -> str:
    if not (text.startswith("/") and 1 < len(text) <= 64
            and all(" " < c < "\x7f" for c in text)):
        raise ValueError(repr(text) + " is not a key prefix ('/', then up to 63 characters)")
    return text
def _server_name(text: str) -> str:
    if not (0 < len(text) < 64 and all(c.isalnum() or c in "._-" for c in text)
            and text.isascii()):
        raise ValueError(repr(text) + " is not a server name (letters, digits, '.', '_', '-'; "
                         "up to 63)")
    return text


_MTU = _uint(576, 9000)
_SECONDS = _uint(1, 86400)

SCHEMA = {
    "agent": {
        "enabled": _opt(_bool, "0"),
        "role": _opt(_enum(*ROLES), "none"),
        "log_level": _opt(_enum(*LOG_LEVELS), "info"),
        "state_dir": _opt(_state_dir, "/var/lib/lvn"),
        "capabilities": _opt(capabilities.parse_name, is_list=True),
    },
    "server": {
        "listen_port": _opt(_PORT, str(DEFAULT_PORT)),
        "data_port": _opt(_PORT, str(DEFAULT_PORT)),
        "ifname": _opt(parse_ifname, "lvn0"),
        "ca": _opt(_path, file=True),
        "cert": _opt(_path, file=True),
        "key": _opt(_path, file=True),
        "crl": _opt(_path, file=True),
        "pool4": _opt(parse_prefix),
        "pool6": _opt(parse_prefix),
        "mtu": _opt(_MTU, "1400"),
        "keepalive": _opt(_uint(1, 3600), "25"),
        "idle_timeout": _opt(_SECONDS, "90"),
        "lease_ttl": _opt(_uint(0, 36500), "90"),
        "conn_rate": _opt(_uint(1, 1000), "5"),
        "conn_burst": _opt(_uint(1, 1000), "20"),
        "drain_rate": _opt(_uint(1, 1000), "2"),
        "capacity": _opt(_uint(1, 1000000), "1000"),
        "rebalance_margin": _opt(_uint(0, 1000000), "4"),
        "up_hook": _opt(_hook, file=True),
        "down_hook": _opt(_hook, file=True),
        "lease_store": _opt(_enum("file", "etcd"), "file"),
        "etcd": _opt(_etcd_endpoint, is_list=True),
        "etcd_prefix": _opt(_etcd_prefix, "/lvn"),
        "name": _opt(_server_name),
        "mesh_address": _opt(parse_ip),
    },
    "client": {
        "server": _opt(_host, is_list=True),
        "server_port": _opt(_PORT, str(DEFAULT_PORT)),
        "data_port": _opt(_ANY_PORT, "0"),
        "ifname": _opt(parse_ifname, "lvn0"),
        "ca": _opt(_path, file=True),
        "cert": _opt(_path, file=True),
        "key": _opt(_path, file=True),
        "crl": _opt(_path, file=True),
        "keepalive": _opt(_uint(1, 3600), "25"),
        "dead_after": _opt(_uint(1, 100), "3"),
        "server_name": _opt(_host),
        "up_hook": _opt(_hook, file=True),
        "down_hook": _opt(_hook, file=True),
    },
    "tunnel": {
        "enabled": _opt(_bool, "1"),
        "ifname": _opt(parse_ifname),
        "mode": _opt(_enum(*MODES), "fixed"),
        "port": _opt(_PORT, str(DEFAULT_PORT)),
        "mtu": _opt(_MTU),
        "local": _opt(parse_ip),
        "remote": _opt(parse_ip),
        "remote_port": _opt(_PORT, str(DEFAULT_PORT)),
        "id": _opt(_uint(1, 2**32 - 1)),
        "keepalive": _opt(_uint(0, 3600), "0"),
        "route": _opt(parse_prefix, is_list=True),
        "allowed_source": _opt(parse_prefix, is_list=True),
        "address": _opt(parse_interface_address, is_list=True),
    },
}

REQUIRED = {
    "server": ("ca", "cert", "key"),
    "client": ("server", "ca", "cert", "key"),
    "tunnel": ("ifname", "remote"),
}


class StaticTunnel(namedtuple("StaticTunnel", [
        "name", "ifname", "remote", "mode", "port", "mtu", "local", "remote_port", "id",
        "keepalive", "enabled", "route", "allowed_source", "address"])):
    """One ``config tunnel`` section: a kernel tunnel without the agent.
    ``name`` is how ``uci show`` names the section; lists are tuples."""

    __slots__ = ()
    name: str
    ifname: str
    remote: str
    mode: str
    port: int
    mtu: "int | None"
    local: "str | None"
    remote_port: int
    id: "int | None"
    keepalive: int
    enabled: bool
    route: "tuple[str, ...]"
    allowed_source: "tuple[str, ...]"
    address: "tuple[str, ...]"


def static_tunnel(name: str, values: "dict[str, object]") -> StaticTunnel:
    """A tunnel section's checked options (``check``'s output) as a StaticTunnel."""
    fields = {}
    for field, opt in SCHEMA["tunnel"].items():  # the fields but name
        fields[field] = values.get(field, () if opt.is_list else None)
    return StaticTunnel(name=name, **fields)


# -- checking --------------------------------------------------------------

def _isfile(path: str) -> bool:
    try:
        return os.stat(path)[0] & 0o170000 == 0o100000
    except OSError:
        return False


def _typed(pkg: "uci.Package", s: "uci.Section", problems: "list[Problem]",
           check_files: bool) -> "dict[str, object]":
    """The section's options converted by the schema, defaults filled in."""
    schema = SCHEMA[s.type]
    ref = pkg.ref(s)
    out: dict[str, object] = {}
    for name, raw in s.items():
        opt = schema.get(name)
        where = ref + "." + name
        if opt is None:
            problems.append(Problem(where, "unknown option (known for '" + s.type + "': "
                                    + ", ".join(sorted(schema)) + ")"))
            continue
        if isinstance(raw, list) and not opt.is_list:
            problems.append(Problem(where, "must be a single 'option', not a 'list'"))
            continue
        items = raw if isinstance(raw, list) else [raw]
        values = []
        for item in items:
            try:
                values.append(opt.parse(item))
            except ValueError as e:
                problems.append(Problem(where, str(e)))
                continue
            if opt.file and check_files and not _isfile(item):
                problems.append(Problem(where, "file " + item + " does not exist"))
        out[name] = tuple(values) if opt.is_list else (values[0] if values else None)
    for name in sorted(schema):
        opt = schema[name]
        if name not in out and opt.default is not None:
            out[name] = opt.parse(opt.default)
    for name in REQUIRED.get(s.type, ()):
        if s.value(name) is None:
            problems.append(Problem(ref + "." + name, "required option is missing"))
    return out


def check_tunnels(tunnels: "list[StaticTunnel]", problems: "list[Problem]") -> None:
    """Enabled sections that share a device must agree, and fit its mode."""
    by_dev: dict[str, list[StaticTunnel]] = {}
    order: list[str] = []
    for t in tunnels:
        if t.enabled:
            if t.ifname not in by_dev:
                order.append(t.ifname)
            by_dev.setdefault(t.ifname, []).append(t)
    for ifname in order:
        group = by_dev[ifname]
        first = group[0]
        for t in group[1:]:
            for attr in ("mode", "port", "mtu"):
                mine, theirs = getattr(t, attr), getattr(first, attr)
                if mine != theirs:
                    problems.append(Problem(
                        t.name + "." + attr, ifname + " is also configured by " + first.name
                        + " with " + attr + " " + str(theirs) + ", not " + str(mine)))
        if first.mode == "fixed":
            for t in group[1:]:
                problems.append(Problem(t.name, ifname + " is in fixed mode and already "
                                        "has the tunnel of " + first.name))
            for t in group:
                if t.route:
                    problems.append(Problem(t.name + ".route", "routes need mode 'multi' "
                                            "(a fixed device sends everything to its tunnel)"))
        else:
            seen: dict[int, str] = {}
            for i, t in enumerate(group):
                tid = t.id if t.id is not None else i + 1
                if tid in seen:
                    problems.append(Problem(t.name + ".id", "tunnel id " + str(tid) + " of "
                                            + ifname + " is also used by " + seen[tid]))
                seen[tid] = t.name


def check(pkg: "uci.Package", check_files: bool = True) -> "tuple[Typed, list[Problem]]":
    """Every section's typed options (by type, in file order, with the
    section's reference) and every problem found (empty: valid)."""
    problems: list[Problem] = []
    typed: Typed = {t: [] for t in SECTION_TYPES}
    agents = pkg.of_type("agent")
    role = agents[0].get("role", "none") if agents else "none"
    for s in pkg.sections:
        if s.type not in SCHEMA:
            problems.append(Problem(pkg.ref(s), "unknown section type '" + s.type
                                    + "' (known: " + ", ".join(SECTION_TYPES) + ")"))
            continue
        # certificate files must exist only for the role that uses them
        files = check_files and s.type == role
        typed[s.type].append((pkg.ref(s), _typed(pkg, s, problems, files)))
    for single in ("agent", "server", "client"):
        for ref, _ in typed[single][1:]:
            problems.append(Problem(ref, "only one '" + single + "' section is allowed"))
    agent = typed["agent"][0][1] if typed["agent"] else {}
    if agent.get("role") == "server":
        if not typed["server"]:
            problems.append(Problem("lvn.agent.role", "role 'server' needs a "
                                                      "'config server' section"))
        else:
            ref, server = typed["server"][0]
            if not (server.get("pool4") or server.get("pool6")):
                problems.append(Problem(ref + ".pool4",
                                        "a server needs an address pool (pool4 and/or pool6)"))
            if server.get("lease_store") == "etcd" and not server.get("etcd"):
                problems.append(Problem(ref + ".etcd", "lease_store 'etcd' needs the "
                                        "cluster's endpoints (list etcd 'http://host:port')"))
            if server.get("mesh_address") and server.get("lease_store") != "etcd":
                problems.append(Problem(ref + ".mesh_address", "a mesh between servers needs "
                                        "their directory in etcd (lease_store 'etcd')"))
    if agent.get("role") == "client" and not typed["client"]:
        problems.append(Problem("lvn.agent.role", "role 'client' needs a 'config client' section"))
    check_tunnels(tunnels(typed), problems)
    return typed, problems


def tunnels(typed: "Typed") -> "list[StaticTunnel]":
    """The tunnel sections of ``check``'s output that name a device and a remote."""
    return [static_tunnel(ref, values) for ref, values in typed["tunnel"]
            if "ifname" in values and "remote" in values]


# -- a configuration as LuCI holds it ----------------------------------------

def option_text(key: str, value: object) -> str:
    """A JSON option value as UCI text (ValueError for anything else)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (str, int)):
        return str(value)
    raise ValueError("option " + repr(key) + ": expected a string or number")


def check_sections(sections: object, package: str = "lvn") -> "list[Problem]":
    """``check`` of a configuration given as LuCI's uci.js holds it (a list
    of ``{".type": T, ".name": N, ".anonymous": B, option: value...}``),
    files not checked (the caller may be a browser).  ValueError for a
    list that is not such a configuration."""
    if not isinstance(sections, list):
        raise ValueError("'sections' must be a list of sections")
    pkg = uci.Package(package)
    for i, raw in enumerate(sections):
        if not isinstance(raw, dict) or not isinstance(raw.get(".type"), str):
            raise ValueError("section " + str(i) + ": expected a table with a '.type'")
        name = raw.get(".name")
        anonymous = raw.get(".anonymous", name is None)
        section = uci.Section(raw[".type"], None if anonymous else str(name))
        for key, value in raw.items():
            if key.startswith("."):
                continue
            if isinstance(value, list):
                section.set(key, [option_text(key, v) for v in value])
            else:
                section.set(key, option_text(key, value))
        pkg.sections.append(section)
    return check(pkg, check_files=False)[1]
