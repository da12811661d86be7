"""The ``lvn`` ubus object: methods, their replies and events, as pure functions.

Every reply is a function of a :class:`Snapshot` (what the service knows
at the time of the call) and the call's arguments; rpcd's ucode plugin
(files/usr/share/rpcd/ucode/lvn.uc) and ``lvn/control.py`` only move calls
between ubus and these functions.  The rpcd ACL
(files/usr/share/rpcd/acl.d/lvn.json) grants ``READ`` methods to the read
group and ``WRITE`` methods to the write group; a test keeps them in sync.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import LvnError, config, replies, schema, static, uci, uciwrite
from .model import Device

READ = ("status", "tunnels", "peers", "validate")
WRITE = ("reload", "tunnel_add", "tunnel_del", "drain", "undrain")

# Argument types of each method, as rpcd's ucode plugin declares them
# (files/usr/share/rpcd/ucode/lvn.uc; a test keeps the two in sync).
# rpcd refuses unknown arguments and wrong types; every argument is
# optional to rpcd, and the methods here say which ones they need.
STRING, TABLE, ARRAY, INT32 = "string", "table", "array", "int32"
SIGNATURES: dict[str, dict[str, str]] = {
    "status": {}, "tunnels": {"ifname": STRING}, "peers": {}, "reload": {},
    "validate": {"sections": ARRAY},
    "tunnel_add": {"name": STRING, "tunnel": TABLE},
    "tunnel_del": {"name": STRING},
    "drain": {"rate": INT32}, "undrain": {},
}


class CallError(LvnError):
    """The call's arguments are wrong; the reply says why (UBUS_STATUS_INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class Snapshot:
    confdir: str
    role: str = "none"
    agent_enabled: bool = False
    config_valid: bool = True
    config_errors: tuple[str, ...] = ()
    last_reload: float | None = None  # Unix time of the last successful apply
    devices: tuple[Device, ...] = ()
    static: dict[str, str] = field(default_factory=dict)  # "ifname/id" -> section
    peers: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()  # the agent's (e.g. an ageing revocation list)


def _facts(s: Snapshot) -> list[replies.DeviceFacts]:
    return [(d.ifname, d.mode, d.port, [asdict(t) for t in d.tunnels]) for d in s.devices]


def status(s: Snapshot) -> dict[str, Any]:
    return replies.status(s.role, s.agent_enabled, f"{s.confdir}/{config.PACKAGE}",
                          s.config_errors, s.last_reload, _facts(s), s.peers, s.warnings)


def tunnels(s: Snapshot, ifname: str | None = None) -> dict[str, Any]:
    """Every tunnel, or those of the device ``ifname``."""
    return replies.tunnels(_facts(s), s.static, ifname)


def peers(s: Snapshot) -> dict[str, Any]:
    return {"peers": list(s.peers)}


def validate(sections: Any) -> dict[str, Any]:
    """Check a configuration given as LuCI's uci.js holds it with the rules
    and messages of ``lvn config validate`` (lvn.schema.check_sections)."""
    try:
        problems = schema.check_sections(sections, config.PACKAGE)
    except ValueError as e:
        raise CallError(str(e)) from None
    return {"valid": not problems, "errors": [str(p) for p in problems]}


def tunnel_add(pkg: uci.Package, name: str, options: dict[str, Any]) -> uci.Package:
    """``pkg`` with a new ``config tunnel NAME``; raises :class:`CallError`."""
    if not uci.valid_name(name):
        raise CallError(f"invalid tunnel name {name!r} (letters, digits and _)")
    if pkg.section(name) is not None:
        raise CallError(f"a section named {name!r} already exists")
    section = uci.Section("tunnel", name)
    known = schema.SCHEMA["tunnel"]
    for key, value in options.items():
        opt = known.get(key)
        if opt is None:
            raise CallError(f"unknown tunnel option {key!r}")
        if opt.is_list:
            items = value if isinstance(value, list) else [value]
            section.set(key, [_text(key, v) for v in items])
        else:
            section.set(key, _text(key, value))
    new = uci.parse(uciwrite.export(pkg), pkg.name)
    new.sections.append(section)
    _check(new)
    return new


def tunnel_del(pkg: uci.Package, name: str) -> uci.Package:
    section = pkg.section(name)
    if section is None or section.type != "tunnel":
        raise CallError(f"no tunnel section named {name!r}")
    new = uci.parse(uciwrite.export(pkg), pkg.name)
    new.sections = [s for s in new.sections if s.name != name]
    return new


def _text(key: str, value: Any) -> str:
    try:
        return schema.option_text(key, value)
    except ValueError as e:
        raise CallError(str(e)) from None


def _check(pkg: uci.Package) -> None:
    _, problems = config.validate(pkg, check_files=False)
    if problems:
        raise CallError("; ".join(str(p) for p in problems))


def events(actions: list[static.Action]) -> list[tuple[str, dict[str, Any]]]:
    """The ubus events announcing what an apply changed."""
    out = []
    for a in actions:
        if isinstance(a, static.SetTunnel):
            kind = "lvn.tunnel.update" if a.replace else "lvn.tunnel.add"
            out.append((kind, {"ifname": a.ifname, "id": a.tunnel_id, "remote": a.remote,
                               "remote_port": a.remote_port}))
        elif isinstance(a, static.DelTunnel):
            out.append(("lvn.tunnel.del", {"ifname": a.ifname, "id": a.tunnel_id}))
        elif isinstance(a, static.DelDevice):
            out.append(("lvn.tunnel.del", {"ifname": a.ifname}))
    return out


def static_names(conf: config.Config) -> dict[str, str]:
    """"ifname/id" -> the name of the tunnel section that configures it."""
    return replies.static_names(conf.tunnels)
