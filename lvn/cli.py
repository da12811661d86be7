"""The ``lvn`` command: kernel configuration of ipudp devices.

    lvn [-j] show [DEV]
    lvn dev add DEV [--port P] [--mtu N]
    lvn dev del DEV
    lvn dev set DEV [--port P]
    lvn tunnel set DEV --remote ADDR [--remote-port P] [--local ADDR] [--replace]
    lvn tunnel del DEV
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from . import __version__
from .errors import LvnError
from .model import DEFAULT_PORT, Device
from .output import devices_json, format_devices


class Kernel(Protocol):
    """What the CLI needs from :class:`lvn.netlink.Ipudp` (tests pass others)."""

    def devices(self) -> list[Device]: ...
    def device(self, ifname: str) -> Device: ...
    def add_device(self, ifname: str, *, mtu: int | None = None) -> None: ...
    def del_device(self, ifname: str) -> None: ...
    def set_device(self, ifname: str, *, port: int | None = None,
                   fd: int | None = None) -> None: ...
    def set_tunnel(self, ifname: str, remote: str, *, remote_port: int = DEFAULT_PORT,
                   local: str | None = None, tunnel_id: int = 0,
                   replace: bool = False) -> None: ...
    def del_tunnel(self, ifname: str) -> None: ...
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
_mtu = _int_in(68, 65535, "an MTU")


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IPv4 or IPv6 address: {text!r}") from None


def _ifname(text: str) -> str:
    if not 1 <= len(text) <= 15 or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"not a valid interface name (1-15 chars, no '/' or spaces): {text!r}")
    return text


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
    d_add.add_argument("--mtu", type=_mtu)
    d_del = dsub.add_parser("del", help="delete an ipudp device")
    d_del.add_argument("dev", type=_ifname)
    d_set = dsub.add_parser("set", help="change a device's settings")
    d_set.add_argument("dev", type=_ifname)
    d_set.add_argument("--port", type=_port, required=True, help="local UDP port")

    tun = sub.add_parser("tunnel", help="set or delete the tunnel of a FIXED device")
    tsub = tun.add_subparsers(dest="action", required=True, metavar="ACTION")
    t_set = tsub.add_parser("set", help="point the device at a remote endpoint")
    t_set.add_argument("dev", type=_ifname)
    t_set.add_argument("--remote", type=_ip, required=True, help="remote outer address")
    t_set.add_argument("--remote-port", type=_port, default=DEFAULT_PORT)
    t_set.add_argument("--local", type=_ip, help="outer source address")
    t_set.add_argument("--replace", action="store_true",
                       help="replace an existing tunnel instead of failing")
    t_del = tsub.add_parser("del", help="remove the device's tunnel")
    t_del.add_argument("dev", type=_ifname)
    return p


def run(args: argparse.Namespace, kernel: Kernel, out: Callable[[str], None]) -> None:
    """Carry out parsed ``args`` against ``kernel``; print through ``out``."""
    if args.cmd == "show":
        devices = [kernel.device(args.dev)] if args.dev else kernel.devices()
        out(devices_json(devices) if args.json else format_devices(devices))
    elif args.cmd == "dev":
        if args.action == "add":
            kernel.add_device(args.dev, mtu=args.mtu)
            if args.port is not None:
                kernel.set_device(args.dev, port=args.port)
        elif args.action == "del":
            kernel.del_device(args.dev)
        else:
            kernel.set_device(args.dev, port=args.port)
    elif args.cmd == "tunnel":
        if args.action == "set":
            if args.local and ipaddress.ip_address(args.local).version != \
                    ipaddress.ip_address(args.remote).version:
                raise LvnError("--local and --remote must be the same address family")
            kernel.set_tunnel(args.dev, args.remote, remote_port=args.remote_port,
                              local=args.local, replace=args.replace)
        else:
            kernel.del_tunnel(args.dev)


def main(argv: Sequence[str] | None = None,
         kernel_factory: Callable[[str | None], Kernel] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if kernel_factory is None:
            from .netlink import Ipudp
            kernel_factory = Ipudp
        kernel = kernel_factory(args.netns)
        try:
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
