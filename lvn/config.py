"""The lvn configuration (/etc/config/lvn) as the CPython agent's typed model.

``load`` reads and parses the UCI file, ``validate`` lists every problem
(lvn.schema's checks, which the MicroPython node shares), ``build`` turns
a valid package into the typed :class:`Config`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import LvnError, uci
from .ipudp_abi import DEFAULT_PORT
from .schema import Problem, StaticTunnel, check, tunnels

DEFAULT_CONFDIR = "/etc/config"
PACKAGE = "lvn"


class ConfigError(LvnError):
    """The configuration cannot be used; the message lists every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


# -- typed model -----------------------------------------------------------------

@dataclass(frozen=True)
class AgentConfig:
    enabled: bool = False
    role: str = "none"
    log_level: str = "info"
    state_dir: str = "/var/lib/lvn"
    # kept for hooks besides capabilities.NEEDED; read at start only
    capabilities: tuple[str, ...] = ()


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
    lease_ttl: int = 90    # days a departed identity keeps its addresses (0: forever)
    conn_rate: int = 5     # new control connections per second and source address
    conn_burst: int = 20
    drain_rate: int = 2    # sessions a draining server ends a second
    capacity: int = 1000   # clients this server is meant for (its load: clients/capacity)
    rebalance_margin: int = 4  # clients above another server's load that start moves (0: never)
    up_hook: str | None = None
    down_hook: str | None = None
    lease_store: str = "file"  # or "etcd": leases shared by several servers
    etcd: tuple[str, ...] = ()
    etcd_prefix: str = "/lvn"
    name: str | None = None  # among the servers in etcd; default: the host name
    mesh_address: str | None = None  # where other servers reach this one's data port


@dataclass(frozen=True)
class ClientConfig:
    server: tuple[str, ...]  # joined in turn: the next one after a failure
    ca: str
    cert: str
    key: str
    crl: str | None = None
    server_port: int = DEFAULT_PORT
    data_port: int = 0
    ifname: str = "lvn0"
    keepalive: int = 25
    dead_after: int = 3    # unanswered keepalives before the client rejoins
    server_name: str | None = None  # the servers' certificate name; default: each server
    up_hook: str | None = None
    down_hook: str | None = None

    def expected_name(self, server: str) -> str:
        return self.server_name or server


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


def validate(pkg: uci.Package, check_files: bool = True) -> tuple[Config, list[Problem]]:
    """The typed config and every problem found (empty list: valid)."""
    typed, problems = check(pkg, check_files)
    agent = AgentConfig(**typed["agent"][0][1]) if typed["agent"] else AgentConfig()  # type: ignore[arg-type]
    server = client = None
    try:
        if typed["server"]:
            server = ServerConfig(**typed["server"][0][1])  # type: ignore[arg-type]
        if typed["client"]:
            client = ClientConfig(**typed["client"][0][1])  # type: ignore[arg-type]
    except TypeError:
        pass  # a required option is missing: already reported
    config = Config(agent=agent, server=server, client=client, tunnels=tuple(tunnels(typed)))
    return config, problems


def build(pkg: uci.Package, check_files: bool = True) -> Config:
    """The typed config; raises :class:`ConfigError` listing every problem."""
    config, problems = validate(pkg, check_files)
    if problems:
        raise ConfigError(problems)
    return config
