"""The lvn configuration (/etc/config/lvn): schema, validation, typed model.

``load`` reads and parses the UCI file, ``validate`` lists every problem
(naming section and option the way ``uci show`` does), ``build`` turns a
valid package into the typed :class:`Config`.  docs/config.md documents
every option; tests/unit/test_config.py checks that the two agree.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from . import uci
from .errors import LvnError
from .model import DEFAULT_PORT, MODES

DEFAULT_CONFDIR = "/etc/config"
PACKAGE = "lvn"

ROLES = ("none", "server", "client")
LOG_LEVELS = ("debug", "info", "warning", "error")
_TRUE = ("1", "yes", "on", "true", "enabled")
_FALSE = ("0", "no", "off", "false", "disabled")


class ConfigError(LvnError):
    """The configuration cannot be used; the message lists every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Problem:
    where: str  # "lvn.@tunnel[0].remote", "lvn.server", or a file path
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# -- option types: each returns the typed value or raises ValueError ------------

def _bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (0/1, yes/no, on/off), got {text!r}")


def _uint(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit():
            raise ValueError(f"expected an integer {low}-{high}, got {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range {low}-{high}")
        return value
    return parse


def _enum(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    return parse


def parse_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


def _prefix(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as e:
        raise ValueError(f"{text!r} is not a valid prefix ({e})") from None


def _interface_address(text: str) -> str:
    if "/" not in text:
        raise ValueError(f"{text!r} needs a prefix length (e.g. 10.99.0.1/24)")
    try:
        return str(ipaddress.ip_interface(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an address with prefix length") from None


def parse_ifname(text: str) -> str:
    if not 1 <= len(text) <= 15 or any(c in text for c in "/: \t\n") or text in (".", ".."):
        raise ValueError(f"{text!r} is not a valid interface name (1-15 characters, "
                         "no '/', ':' or spaces)")
    return text


def _host(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    ok = bool(text) and len(text) <= 253 and all(
        1 <= len(label) <= 63 and label[0] != "-" and label[-1] != "-"
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
        for label in labels)
    if not ok:
        raise ValueError(f"{text!r} is neither an IP address nor a host name")
    return text


def _path(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not an absolute path")
    return text


_PORT = _uint(1, 65535)
_ANY_PORT = _uint(0, 65535)
_MTU = _uint(576, 9000)
_SECONDS = _uint(1, 86400)


@dataclass(frozen=True)
class Opt:
    parse: Callable[[str], object]
    default: str | None = None
    is_list: bool = False
    file: bool = False  # must name an existing file


SCHEMA: dict[str, dict[str, Opt]] = {
    "agent": {
        "enabled": Opt(_bool, "0"),
        "role": Opt(_enum(*ROLES), "none"),
        "log_level": Opt(_enum(*LOG_LEVELS), "info"),
        "state_dir": Opt(_path, "/var/lib/lvn"),
    },
    "server": {
        "listen_port": Opt(_PORT, str(DEFAULT_PORT)),
        "data_port": Opt(_PORT, str(DEFAULT_PORT)),
        "ifname": Opt(parse_ifname, "lvn0"),
        "ca": Opt(_path, file=True),
        "cert": Opt(_path, file=True),
        "key": Opt(_path, file=True),
        "crl": Opt(_path, file=True),
        "pool4": Opt(_prefix),
        "pool6": Opt(_prefix),
        "mtu": Opt(_MTU, "1400"),
        "keepalive": Opt(_uint(1, 3600), "25"),
        "idle_timeout": Opt(_SECONDS, "90"),
        "conn_rate": Opt(_uint(1, 1000), "5"),
        "conn_burst": Opt(_uint(1, 1000), "20"),
        "up_hook": Opt(_path, file=True),
        "down_hook": Opt(_path, file=True),
    },
    "client": {
        "server": Opt(_host),
        "server_port": Opt(_PORT, str(DEFAULT_PORT)),
        "data_port": Opt(_ANY_PORT, "0"),
        "ifname": Opt(parse_ifname, "lvn0"),
        "ca": Opt(_path, file=True),
        "cert": Opt(_path, file=True),
        "key": Opt(_path, file=True),
        "crl": Opt(_path, file=True),
        "keepalive": Opt(_uint(1, 3600), "25"),
        "server_name": Opt(_host),
        "up_hook": Opt(_path, file=True),
        "down_hook": Opt(_path, file=True),
    },
    "tunnel": {
        "enabled": Opt(_bool, "1"),
        "ifname": Opt(parse_ifname),
        "mode": Opt(_enum(*MODES), "fixed"),
        "port": Opt(_PORT, str(DEFAULT_PORT)),
        "mtu": Opt(_MTU),
        "local": Opt(parse_ip),
        "remote": Opt(parse_ip),
        "remote_port": Opt(_PORT, str(DEFAULT_PORT)),
        "id": Opt(_uint(1, 2**32 - 1)),
        "keepalive": Opt(_uint(0, 3600), "0"),
        "route": Opt(_prefix, is_list=True),
        "allowed_source": Opt(_prefix, is_list=True),
        "address": Opt(_interface_address, is_list=True),
    },
}

REQUIRED = {
    "server": ("ca", "cert", "key"),
    "client": ("server", "ca", "cert", "key"),
    "tunnel": ("ifname", "remote"),
}


# -- typed model -----------------------------------------------------------------

@dataclass(frozen=True)
class AgentConfig:
    enabled: bool = False
    role: str = "none"
    log_level: str = "info"
    state_dir: str = "/var/lib/lvn"


@dataclass(frozen=True)
class ServerConfig:
    ca: str
    cert: str
    key: str
    crl: str | None = None
    listen_port: int = DEFAULT_PORT
    data_port: int = DEFAULT_PORT
    ifname: str = "lvn0"
    pool4: str | None = None
    pool6: str | None = None
    mtu: int = 1400
    keepalive: int = 25
    idle_timeout: int = 90
    conn_rate: int = 5     # new control connections per second and source address
    conn_burst: int = 20
    up_hook: str | None = None
    down_hook: str | None = None


@dataclass(frozen=True)
class ClientConfig:
    server: str
    ca: str
    cert: str
    key: str
    crl: str | None = None
    server_port: int = DEFAULT_PORT
    data_port: int = 0
    ifname: str = "lvn0"
    keepalive: int = 25
    server_name: str | None = None  # the server certificate's name; default: server
    up_hook: str | None = None
    down_hook: str | None = None

    @property
    def expected_name(self) -> str:
        return self.server_name or self.server


@dataclass(frozen=True)
class StaticTunnel:
    """One ``config tunnel`` section: a kernel tunnel without the agent."""

    name: str  # how `uci show` names the section
    ifname: str
    remote: str
    mode: str = "fixed"
    port: int = DEFAULT_PORT
    mtu: int | None = None
    local: str | None = None
    remote_port: int = DEFAULT_PORT
    id: int | None = None
    keepalive: int = 0
    enabled: bool = True
    route: tuple[str, ...] = ()
    allowed_source: tuple[str, ...] = ()
    address: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    agent: AgentConfig = field(default_factory=AgentConfig)
    server: ServerConfig | None = None
    client: ClientConfig | None = None
    tunnels: tuple[StaticTunnel, ...] = ()


# -- loading and validation ------------------------------------------------------

def load(confdir: str = DEFAULT_CONFDIR, package: str = PACKAGE) -> uci.Package:
    """Read and parse ``confdir/package``; errors name the file and position."""
    path = os.path.join(confdir, package)
    try:
        # bytes, then text: no newline translation (uci keeps a CR)
        with open(path, "rb") as f:
            text = f.read().decode()
    except OSError as e:
        raise LvnError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise LvnError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return uci.parse(text, package)
    except uci.UciError as e:
        raise LvnError(f"{path}: {e}") from None


def _typed(pkg: uci.Package, s: uci.Section, problems: list[Problem],
           check_files: bool) -> dict[str, object]:
    """The section's options converted by the schema, defaults filled in."""
    schema = SCHEMA[s.type]
    ref = pkg.ref(s)
    out: dict[str, object] = {}
    for name, raw in s.items():
        opt = schema.get(name)
        where = f"{ref}.{name}"
        if opt is None:
            problems.append(Problem(where, f"unknown option (known for '{s.type}': "
                                           f"{', '.join(sorted(schema))})"))
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
            if opt.file and check_files and not os.path.isfile(item):
                problems.append(Problem(where, f"file {item} does not exist"))
        out[name] = tuple(values) if opt.is_list else (values[0] if values else None)
    for name, opt in schema.items():
        if name not in out and opt.default is not None:
            out[name] = opt.parse(opt.default)
    for name in REQUIRED.get(s.type, ()):
        if s.value(name) is None:
            problems.append(Problem(f"{ref}.{name}", "required option is missing"))
    return out


def _check_tunnels(tunnels: list[StaticTunnel], problems: list[Problem]) -> None:
    by_dev: dict[str, list[StaticTunnel]] = {}
    for t in tunnels:
        if t.enabled:
            by_dev.setdefault(t.ifname, []).append(t)
    for ifname, group in by_dev.items():
        first = group[0]
        for t in group[1:]:
            for attr in ("mode", "port", "mtu"):
                if getattr(t, attr) != getattr(first, attr):
                    problems.append(Problem(
                        f"{t.name}.{attr}", f"{ifname} is also configured by {first.name} "
                        f"with {attr} {getattr(first, attr)}, not {getattr(t, attr)}"))
        if first.mode == "fixed":
            for t in group[1:]:
                problems.append(Problem(t.name, f"{ifname} is in fixed mode and already "
                                                f"has the tunnel of {first.name}"))
            for t in group:
                if t.route:
                    problems.append(Problem(f"{t.name}.route", "routes need mode 'multi' "
                                            "(a fixed device sends everything to its tunnel)"))
        else:
            seen: dict[int, str] = {}
            for i, t in enumerate(group):
                tid = t.id if t.id is not None else i + 1
                if tid in seen:
                    problems.append(Problem(f"{t.name}.id", f"tunnel id {tid} of {ifname} is "
                                                            f"also used by {seen[tid]}"))
                seen[tid] = t.name


def validate(pkg: uci.Package, check_files: bool = True) -> tuple[Config, list[Problem]]:
    """The typed config and every problem found (empty list: valid)."""
    problems: list[Problem] = []
    typed: dict[str, list[tuple[str, dict[str, object]]]] = {t: [] for t in SCHEMA}
    agents = pkg.of_type("agent")
    role = agents[0].get("role", "none") if agents else "none"
    for s in pkg.sections:
        if s.type not in SCHEMA:
            problems.append(Problem(pkg.ref(s), f"unknown section type '{s.type}' (known: "
                                                f"{', '.join(SCHEMA)})"))
            continue
        # certificate files must exist only for the role that uses them
        files = check_files and s.type == role
        typed[s.type].append((pkg.ref(s), _typed(pkg, s, problems, files)))
    for single in ("agent", "server", "client"):
        for ref, _ in typed[single][1:]:
            problems.append(Problem(ref, f"only one '{single}' section is allowed"))

    agent = AgentConfig(**typed["agent"][0][1]) if typed["agent"] else AgentConfig()  # type: ignore[arg-type]
    server = client = None
    try:
        if typed["server"]:
            server = ServerConfig(**typed["server"][0][1])  # type: ignore[arg-type]
        if typed["client"]:
            client = ClientConfig(**typed["client"][0][1])  # type: ignore[arg-type]
    except TypeError:
        pass  # a required option is missing: already reported
    if agent.role == "server":
        if not typed["server"]:
            problems.append(Problem("lvn.agent.role", "role 'server' needs a "
                                                      "'config server' section"))
        elif not (typed["server"][0][1].get("pool4") or typed["server"][0][1].get("pool6")):
            problems.append(Problem(f"{typed['server'][0][0]}.pool4",
                                    "a server needs an address pool (pool4 and/or pool6)"))
    if agent.role == "client" and not typed["client"]:
        problems.append(Problem("lvn.agent.role", "role 'client' needs a 'config client' section"))

    tunnels = []
    for ref, values in typed["tunnel"]:
        if "ifname" in values and "remote" in values:
            tunnels.append(StaticTunnel(name=ref, **values))  # type: ignore[arg-type]
    _check_tunnels(tunnels, problems)
    config = Config(agent=agent, server=server, client=client, tunnels=tuple(tunnels))
    return config, problems


def build(pkg: uci.Package, check_files: bool = True) -> Config:
    """The typed config; raises :class:`ConfigError` listing every problem."""
    config, problems = validate(pkg, check_files)
    if problems:
        raise ConfigError(problems)
    return config
