"""The ``lvn`` command: kernel configuration of ipudp devices.

    lvn [-j] show [DEV]
    lvn dev add DEV [--port P] [--mode fixed|multi] [--mtu N]
    lvn dev del DEV
    lvn dev set DEV [--port P] [--mode fixed|multi]
    lvn tunnel set DEV --remote ADDR [--remote-port P] [--local ADDR] [--id N] [--replace]
    lvn tunnel del DEV [--id N]
    lvn rule add|del DEV PREFIX [--tunnel N] [--source]
    lvn rule show DEV
    lvn route get DEV ADDRESS [--source]
    lvn [-j] monitor [--count N]
    lvn config show [-c CONFDIR] [PACKAGE]
    lvn config validate [-c CONFDIR] [--no-file-check]
    lvn apply [-c CONFDIR] [--state FILE] [--dry-run] [--flush]
    lvn pki init|issue|revoke|crl|show ...
    lvn [-j] status [-c CONFDIR]
    lvn agent [-c CONFDIR] [--state FILE] [--control PATH] [--ubus SOCKET]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Protocol

from . import LvnError, __version__, config, control, schema, static, uciwrite
from .model import DEFAULT_PORT, MODES, Device, Event, Rule
from .output import (
    devices_json,
    format_devices,
    format_endpoint,
    format_rules,
    human_bytes,
    rules_json,
)

if TYPE_CHECKING:
    class Kernel(static.Kernel, Protocol):
        """What the CLI needs: lvn.static's Kernel (what applying needs, both
        interpreters) and lvn.netlink.Ipudp's details, modes, lookups and
        events (tests pass others)."""

        def devices(self) -> list[Device]: ...
        def device(self, ifname: str) -> Device: ...
        def set_device(self, ifname: str, *, port: int | None = None,
                       fd: int | None = None, idle_timeout: int | None = None) -> None: ...
        def set_mode(self, ifname: str, mode: str) -> None: ...
        def rules(self, ifname: str) -> list[Rule]: ...
        def route_get(self, ifname: str, address: str, kind: str = "dest") -> int | None: ...
        def events(self) -> Iterator[Event]: ...
        def close(self) -> None: ...


def _int_in(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: a decimal integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} out of range {low}-{high}: {value}")
        return value

    return parse


_port = _int_in(1, 65535, "a port number")
_tunnel_id = _int_in(0, 2**32 - 1, "a tunnel id")
_mtu = _int_in(68, 65535, "an MTU")


def _arg(parse: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a config option type (lvn/config.py)."""

    def convert(text: str) -> str:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


_ip = _arg(schema.parse_ip)
_ifname = _arg(schema.parse_ifname)


def _prefix(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=True))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an IP prefix: {text!r} ({e})") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lvn", description="L-VN: IP-in-UDP overlay tunnels")
    p.add_argument("-j", "--json", action="store_true", help="JSON output")
    p.add_argument("-n", "--netns", metavar="NETNS",
                   help="act in the named network namespace (like ip -n)")
    p.add_argument("--version", action="version", version=f"lvn {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    show = sub.add_parser("show", help="show ipudp devices and tunnels")
    show.add_argument("dev", nargs="?", type=_ifname)

    dev = sub.add_parser("dev", help="create, delete or configure devices")
    dsub = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    d_add = dsub.add_parser("add", help="create an ipudp device")
    d_add.add_argument("dev", type=_ifname)
    d_add.add_argument("--port", type=_port, help=f"local UDP port (default {DEFAULT_PORT})")
    d_add.add_argument("--mode", choices=MODES, help="fixed (default): one tunnel; "
                       "multi: rules pick one")
    d_add.add_argument("--mtu", type=_mtu)
    d_del = dsub.add_parser("del", help="delete an ipudp device")
    d_del.add_argument("dev", type=_ifname)
    d_set = dsub.add_parser("set", help="change a device's settings")
    d_set.add_argument("dev", type=_ifname)
    d_set.add_argument("--port", type=_port, help="local UDP port")
    d_set.add_argument("--mode", choices=MODES, help="fixed: one tunnel; multi: rules pick one")
    d_set.add_argument("--idle-timeout", type=_int_in(1, 65535, "a number of seconds"),
                       help="silence after which a tunnel's next packet is announced "
                            "(lvn monitor: tunnel-active)")

    tun = sub.add_parser("tunnel", help="set or delete the tunnel of a FIXED device")
    tsub = tun.add_subparsers(dest="action", required=True, metavar="ACTION")
    t_set = tsub.add_parser("set", help="point the device at a remote endpoint")
    t_set.add_argument("dev", type=_ifname)
    t_set.add_argument("--remote", type=_ip, required=True, help="remote outer address")
    t_set.add_argument("--remote-port", type=_port, default=DEFAULT_PORT)
    t_set.add_argument("--local", type=_ip, help="outer source address")
    t_set.add_argument("--id", type=_tunnel_id, default=0, help="tunnel id (MULTI mode)")
    t_set.add_argument("--replace", action="store_true",
                       help="replace an existing tunnel instead of failing")
    t_set.add_argument("--keepalive", type=_int_in(0, 3600, "a number of seconds"), default=0,
                       help="send a keepalive datagram every N seconds (0: off)")
    t_del = tsub.add_parser("del", help="remove a tunnel")
    t_del.add_argument("dev", type=_ifname)
    t_del.add_argument("--id", type=_tunnel_id, help="tunnel id (default: FIXED's tunnel)")

    rule = sub.add_parser("rule", help="MULTI mode: prefixes routed to / allowed from tunnels")
    rsub = rule.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("add", "bind a prefix to a tunnel"), ("del", "remove a prefix")):
        r = rsub.add_parser(name, help=text)
        r.add_argument("dev", type=_ifname)
        r.add_argument("prefix", type=_prefix)
        r.add_argument("--tunnel", type=_tunnel_id, required=name == "add",
                       help="tunnel id")
        r.add_argument("--source", action="store_true",
                       help="an allowed inner source instead of a destination")
    r_show = rsub.add_parser("show", help="list a device's rules")
    r_show.add_argument("dev", type=_ifname)

    route = sub.add_parser("route", help="which tunnel the kernel picks for an address")
    ro = route.add_subparsers(dest="action", required=True, metavar="ACTION")
    r_get = ro.add_parser("get", help="look an address up like the data path does")
    r_get.add_argument("dev", type=_ifname)
    r_get.add_argument("address", type=_ip)
    r_get.add_argument("--source", action="store_true", help="look up allowed sources")

    mon = sub.add_parser("monitor", help="print kernel events (tunnel new/del/active)")
    mon.add_argument("--count", type=_int_in(1, 2**31, "a count"),
                     help="exit after this many events")

    conf = sub.add_parser("config", help="read and check the UCI configuration")
    csub = conf.add_subparsers(dest="action", required=True, metavar="ACTION")
    c_show = csub.add_parser("show", help="print a package like `uci show`")
    c_show.add_argument("package", nargs="?", default=config.PACKAGE)
    c_val = csub.add_parser("validate", help="check /etc/config/lvn against the schema")
    c_val.add_argument("--no-file-check", action="store_true",
                       help="do not check that certificate/key files exist")
    for c in (c_show, c_val):
        c.add_argument("-c", "--confdir", default=config.DEFAULT_CONFDIR,
                       help=f"configuration directory (default {config.DEFAULT_CONFDIR})")

    st = sub.add_parser("status", help="the agent's role, peers, addresses, endpoints")
    st.add_argument("-c", "--confdir", default=config.DEFAULT_CONFDIR)

    pki = sub.add_parser("pki", help="a CA for the network: init, issue, revoke, show")
    psub = pki.add_subparsers(dest="action", required=True, metavar="ACTION")
    p_init = psub.add_parser("init", help="create a CA in DIR")
    p_init.add_argument("dir")
    p_init.add_argument("--name", default="lvn CA", help="CA common name")
    p_issue = psub.add_parser("issue", help="certificate and key for node NAME")
    p_issue.add_argument("dir")
    p_issue.add_argument("name")
    p_issue.add_argument("--server", action="store_true",
                         help="a server's certificate (TLS server use only; a node's "
                              "certificate is for TLS client use only)")
    p_issue.add_argument("--days", type=_int_in(1, 36500, "a number of days"), default=825)
    p_rev = psub.add_parser("revoke", help="revoke NAME's certificate (rewrites crl.pem)")
    p_rev.add_argument("dir")
    p_rev.add_argument("name")
    p_crl = psub.add_parser("crl", help="sign crl.pem again with a fresh next update "
                                        "(servers refuse every client once it has aged)")
    p_crl.add_argument("dir")
    p_crl.add_argument("--days", type=_int_in(1, 3650, "a number of days"), default=30,
                       help="valid for this many days (default 30)")
    p_show = psub.add_parser("show", help="print a certificate's facts")
    p_show.add_argument("file")

    app = sub.add_parser("apply", help="make the kernel match the static tunnels of the config")
    app.add_argument("-c", "--confdir", default=config.DEFAULT_CONFDIR)
    app.add_argument("--state", default=static.STATE_FILE,
                     help=f"devices created by apply (default {static.STATE_FILE})")
    app.add_argument("--dry-run", action="store_true", help="print the changes only")
    app.add_argument("--flush", action="store_true",
                     help="remove every device an earlier apply created")

    srv = sub.add_parser("server", help="a running server: drain it before maintenance, "
                                        "undrain it after")
    ssub = srv.add_subparsers(dest="action", required=True, metavar="ACTION")
    s_drain = ssub.add_parser("drain", help="refuse new clients and send the connected ones "
                                            "to other servers, RATE a second")
    s_drain.add_argument("--rate", type=int, metavar="RATE",
                         help="clients sent away a second (default: option drain_rate)")
    s_undrain = ssub.add_parser("undrain", help="welcome clients again")
    for s in (s_drain, s_undrain):
        s.add_argument("--control", metavar="PATH", default=control.DEFAULT_PATH,
                       help=f"the service's control socket (default {control.DEFAULT_PATH})")

    agent = sub.add_parser("agent", help="run the service (static tunnels, ubus object)")
    agent.add_argument("-c", "--confdir", default=config.DEFAULT_CONFDIR)
    agent.add_argument("--state", default=static.STATE_FILE)
    agent.add_argument("--control", metavar="PATH",
                       help="answer the lvn ubus object's calls (forwarded by rpcd) on this "
                            f"Unix socket (OpenWrt: {control.DEFAULT_PATH})")
    agent.add_argument("--ubus", metavar="SOCKET",
                       help="send lvn.* events to the ubusd at this socket")
    return p


def run_config(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    """``lvn config``: no kernel needed."""
    if args.action == "show":
        pkg = config.load(args.confdir, args.package)
        for line in uciwrite.show(pkg):
            out(line)
        return
    pkg = config.load(args.confdir)
    _, problems = config.validate(pkg, check_files=not args.no_file_check)
    if problems:
        raise config.ConfigError(problems)
    out(f"{args.confdir}/{config.PACKAGE}: valid")


def run_pki(args: argparse.Namespace, out: Callable[[str], None]) -> None:
    """``lvn pki``: files only, no kernel."""
    from pathlib import Path

    from . import pki
    if args.action == "init":
        out(f"CA certificate: {pki.init(Path(args.dir), args.name)}")
    elif args.action == "issue":
        cert, key = pki.issue(Path(args.dir), args.name, args.days,
                              role="server" if args.server else "node")
        out(f"certificate: {cert}\nkey: {key}")
    elif args.action == "revoke":
        serial = pki.revoke(Path(args.dir), args.name)
        out(f"revoked {args.name} (serial {serial:x}); distribute {args.dir}/crl.pem")
    elif args.action == "crl":
        path = pki.refresh_crl(Path(args.dir), args.days)
        out(f"{path}: valid for {args.days} days; distribute it to the servers")
    else:
        facts = pki.show(Path(args.file))
        if args.json:
            out(json.dumps(facts))
        else:
            for k, v in facts.items():
                out(f"{k}: {', '.join(v) if isinstance(v, list) else v}")


def run_status(args: argparse.Namespace, kernel: Kernel, out: Callable[[str], None]) -> None:
    """``lvn status``: what the running agent reports, with the kernel's counters."""
    conf = config.build(config.load(args.confdir), check_files=False)
    path = f"{conf.agent.state_dir}/status.json"
    try:
        with open(path, encoding="utf-8") as f:
            status = json.load(f)
    except FileNotFoundError:
        raise LvnError(f"the agent is not running (no {path}; is option enabled '1'?)") from None
    except (OSError, ValueError) as e:
        raise LvnError(f"cannot read {path}: {e}") from None
    ifname = (conf.server.ifname if status.get("role") == "server" and conf.server else
              conf.client.ifname if conf.client else "")
    try:
        tunnels = {t.id: t for t in kernel.device(ifname).tunnels} if ifname else {}
    except LvnError:
        tunnels = {}
    for p in status.get("peers", []):
        t = tunnels.get(p.get("tunnel_id"))
        if t is not None:
            p.update(rx_packets=t.stats.rx_packets, rx_bytes=t.stats.rx_bytes,
                     tx_packets=t.stats.tx_packets, tx_bytes=t.stats.tx_bytes)
    if args.json:
        out(json.dumps(status))
        return
    peers = status.get("peers", [])
    out(f"role {status.get('role')}, device {ifname}, {len(peers)} peer(s)")
    for w in status.get("warnings", []):
        out(f"warning: {w}")
    servers = status.get("servers")
    if servers:  # several servers with their leases in etcd
        out("servers: " + ", ".join(
            f"{name} ({v.get('clients')}"
            + (f" of {v['capacity']}" if "capacity" in v else "")
            + f" client(s){', draining' if v.get('draining') else ''})"
            for name, v in sorted(servers.items())))
    mesh = status.get("mesh")
    if mesh:  # tunnels to the other servers (docs/servers.md, "Mesh")
        out("mesh: " + ", ".join(
            f"{name} at {format_endpoint(str(v.get('address')), int(v.get('port', 0)))} "
            f"(tunnel {v.get('tunnel')}, {v.get('routes')} route(s))"
            for name, v in sorted(mesh.items())))
    for p in peers:
        ep = p.get("endpoint")
        where = format_endpoint(str(ep[0]), int(ep[1])) if ep else "-"
        heard = (f", heard {max(0.0, time.time() - p['last_heard']):.1f} s ago"
                 if "last_heard" in p else "")
        out(f"  {p.get('name')}: {p.get('state')}, {' '.join(p.get('addresses') or []) or '-'}"
            f", endpoint {where}{heard}")
        if "rx_packets" in p:
            out(f"    rx {p['rx_packets']} packets {human_bytes(p['rx_bytes'])}, "
                f"tx {p['tx_packets']} packets {human_bytes(p['tx_bytes'])}")


def run_apply(args: argparse.Namespace, kernel: static.Kernel,
              out: Callable[[str], None]) -> None:
    # validate everything before touching the kernel
    if args.flush:
        conf = config.Config()
    else:
        conf = config.build(config.load(args.confdir), check_files=False)
    acts = static.apply(kernel, conf.tunnels, args.state, dry_run=args.dry_run)
    if args.json:
        out(json.dumps([{"op": a.op, "ifname": a.ifname, "args": list(static.args_of(a))}
                        for a in acts]))
    elif not acts:
        out("nothing to change")
    else:
        for a in acts:
            out(("would " if args.dry_run else "") + str(a))


def run(args: argparse.Namespace, kernel: Kernel, out: Callable[[str], None]) -> None:
    """Carry out parsed ``args`` against ``kernel``; print through ``out``."""
    if args.cmd == "show":
        devices = [kernel.device(args.dev)] if args.dev else kernel.devices()
        out(devices_json(devices) if args.json else format_devices(devices))
    elif args.cmd == "dev":
        if args.action == "add":
            kernel.add_device(args.dev, mtu=args.mtu, mode=args.mode, port=args.port)
        elif args.action == "del":
            kernel.del_device(args.dev)
        else:
            if args.port is None and args.mode is None and args.idle_timeout is None:
                raise LvnError("dev set: nothing to change "
                               "(give --port, --mode and/or --idle-timeout)")
            if args.idle_timeout is not None:
                kernel.set_device(args.dev, idle_timeout=args.idle_timeout)
            if args.mode is not None:
                kernel.set_mode(args.dev, args.mode)
            if args.port is not None:
                kernel.set_device(args.dev, port=args.port)
    elif args.cmd == "tunnel":
        if args.action == "set":
            if args.local and ipaddress.ip_address(args.local).version != \
                    ipaddress.ip_address(args.remote).version:
                raise LvnError("--local and --remote must be the same address family")
            kernel.set_tunnel(args.dev, args.remote, remote_port=args.remote_port,
                              local=args.local, tunnel_id=args.id, replace=args.replace,
                              keepalive=args.keepalive)
        else:
            kernel.del_tunnel(args.dev, args.id)
    elif args.cmd == "rule":
        kind = "source" if getattr(args, "source", False) else "dest"
        if args.action == "add":
            kernel.add_rule(args.dev, args.prefix, args.tunnel, kind)
        elif args.action == "del":
            kernel.del_rule(args.dev, args.prefix, args.tunnel, kind)
        else:
            rules = kernel.rules(args.dev)
            out(rules_json(rules) if args.json else format_rules(rules))
    elif args.cmd == "monitor":
        for n, ev in enumerate(kernel.events(), 1):
            if args.json:
                out(json.dumps(asdict(ev)))
            else:
                where = (f" remote {format_endpoint(ev.remote, ev.remote_port or 0)}"
                         if ev.remote else "")
                why = f" ({ev.reason})" if ev.reason else " (replaced)" if ev.replaced else ""
                out(f"{ev.kind} {ev.ifname} id {ev.tunnel_id}{where}{why}")
            if args.count is not None and n >= args.count:
                break
    elif args.cmd == "route":
        tid = kernel.route_get(args.dev, args.address, "source" if args.source else "dest")
        if args.json:
            out(json.dumps({"address": args.address, "tunnel": tid}))
        elif tid is None:
            raise LvnError(f"no rule on {args.dev} matches {args.address}")
        else:
            out(f"{args.address} via tunnel {tid}")


def run_server(args: argparse.Namespace, out: Callable[[str], None]) -> int:
    """``lvn server drain|undrain``: a call to the running service."""
    from . import nodecontrol

    try:
        status, data = nodecontrol.call(args.control, args.action,
                                        {"rate": args.rate} if args.action == "drain"
                                        and args.rate is not None else {})
    except OSError as e:
        raise LvnError(f"no lvn service answers on {args.control}: "
                       f"{e.strerror or e}") from None
    if status != 0:
        raise LvnError(str(data.get("error", data)))
    out(f"draining: {'yes' if data['draining'] else 'no'}; {data['clients']} client(s) "
        f"connected, {data['moved']} sent away at {data['rate']:g}/s")
    return 0


def main(argv: Sequence[str] | None = None,
         kernel_factory: Callable[[str | None], Kernel] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "config":
            run_config(args, print)
            return 0
        if args.cmd == "pki":
            run_pki(args, print)
            return 0
        if args.cmd == "server":
            return run_server(args, print)
        if kernel_factory is None:
            from .netlink import Ipudp
            kernel_factory = Ipudp
        kernel = kernel_factory(args.netns)
        try:
            if args.cmd == "apply":
                run_apply(args, kernel, print)
            elif args.cmd == "status":
                run_status(args, kernel, print)
            elif args.cmd == "agent":
                from . import service
                logging.basicConfig(level=logging.INFO, format="lvn: %(message)s")
                return service.run(service.Service(kernel, args.confdir,  # type: ignore[arg-type]
                                                   args.state), args.control, args.ubus)
            else:
                run(args, kernel, print)
        finally:
            kernel.close()
    except LvnError as e:
        print(f"lvn: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:
        print(f"lvn: {e.strerror} (needs root / CAP_NET_ADMIN)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
