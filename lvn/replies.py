"""The lvn ubus object's read replies, built once for both shells (pure).

The CPython service (lvn/ubus_api.py) and the MicroPython node
(lvn/node.py) gather the same facts, each from its own netlink code, and
turn them into ``status``, ``tunnels`` and ``peers`` replies here: the same
kernel state and configuration give the same reply on a node and on a
server (docs/ubus-api.md).

A device is given as ``(ifname, mode, port, tunnels)``, each tunnel as
the dict of ``asdict(lvn.model.Tunnel)`` (lvn/rawnl.py's ``tunnel_entry``
makes the same shape).
"""

from . import __version__, static

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .schema import StaticTunnel

    DeviceFacts = tuple[str, str, int, Sequence[dict[str, object]]]


def static_names(tunnels: "Sequence[StaticTunnel]") -> "dict[str, str]":
    """"ifname/id" -> the name of the ``config tunnel`` section that makes it."""
    return {ifname + "/" + str(tid): t.name.split(".", 1)[1]
            for ifname, group in static.groups(tunnels).items() for tid, t in group}


def status(role: str, agent_enabled: bool, config_path: str, config_errors: "Sequence[str]",
           last_reload: "float | None", devices: "Sequence[DeviceFacts]",
           peers: "Sequence[dict[str, object]]", warnings: "Sequence[str]") -> "dict[str, object]":
    return {
        "version": __version__,
        "role": role,
        "agent_enabled": agent_enabled,
        "config": {"path": config_path, "valid": not config_errors,
                   "errors": list(config_errors)},
        "last_reload": last_reload,
        "devices": len(devices),
        "tunnels": sum(len(d[3]) for d in devices),
        "peers": len(peers),
        "warnings": list(warnings),
    }


def tunnels(devices: "Sequence[DeviceFacts]", names: "dict[str, str]",
            ifname: "str | None" = None) -> "dict[str, object]":
    """Every tunnel, or those of the device ``ifname``; ``names`` as
    static_names() gives them (None for a tunnel no section makes)."""
    out = []
    for dev, mode, port, rows in devices:
        if ifname is not None and dev != ifname:
            continue
        for t in rows:
            entry = dict(t)
            entry.update(ifname=dev, mode=mode, port=port,
                         static=names.get(dev + "/" + str(t["id"])))
            out.append(entry)
    return {"tunnels": out}


def client_peer(server: str, state: str, addresses: "list[str]", server_ip: "str | None",
                data_port: int) -> "dict[str, object]":
    """A client's one peer, its server, as ``peers`` lists it."""
    return {"name": server, "state": state, "addresses": addresses,
            "endpoint": [server_ip, data_port] if data_port else None, "tunnel_id": 0}
