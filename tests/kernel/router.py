"""A router in the VM: OpenWrt's own ubusd, procd and rpcd (built by
scripts/owrt-userland.sh into build/owrt) in an OpenWrt-layout root
(``owrt-sandbox``: a private mount and PID namespace over the VM's /),
inside a network namespace of the test.

The sandbox runs ``sleep`` as its command; every ``Router.sh`` call enters
its namespaces with ``nsenter``, so a test talks to the router as an admin
on its shell would: ``opkg``, ``/etc/init.d/lvn``, ``uci``, ``ubus``.
The router's python3 is the VM's (.venv, plus the ``ubus`` binding that
build.sh compiled against OpenWrt's libubus), marked installed in opkg's
status like the other packages the image would bring.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from pathlib import Path

import upy

from .netns import Netns, scaled, wait_for

ROOT = Path(__file__).resolve().parents[2]
OWRT = ROOT / "build" / "owrt"
OWRT_SRC = Path(os.environ.get("LVN_OWRT_SRC", ROOT.parent / "shared" / "third_party" / "openwrt"))

# what an OpenWrt image would have installed: lvn's and kmod-ipudp's
# dependencies, marked installed in /usr/lib/opkg/status
PROVIDED = ["kernel", "kmod-udptunnel4", "kmod-udptunnel6", "micropython-mbedtls", "python3-light",
            "python3-logging", "python3-ctypes", "python3-pyroute2", "python3-pyopenssl",
            "python3-cryptography", "rpcd", "rpcd-mod-ucode", "ucode-mod-socket", "luci-base"]

# a router's environment, not the test runner's
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}

OPKG_CONF = """dest root /
lists_dir ext /var/opkg-lists
option overlay_root /overlay
arch all 1
arch noarch 1
arch x86_64 10
"""


def overlay(tmp: Path) -> Path:
    """The files the image brings besides OpenWrt's userland: python3,
    micropython, opkg's
    configuration and status."""
    tree = tmp / "overlay"
    site = next((OWRT / "venv" / "lib").glob("python3*/site-packages"))
    python = tree / "usr" / "bin" / "python3"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n"
                      f"PYTHONPATH={shlex.quote(str(site))} "
                      f"exec {shlex.quote(str(ROOT / '.venv' / 'bin' / 'python'))} \"$@\"\n")
    python.chmod(0o755)
    # OpenWrt 24.10's own micropython-mbedtls (1.23.0, built by setup-deps)
    micro = python.parent / "micropython"
    micro.write_text(f"#!/bin/sh\nexec {shlex.quote(str(upy.openwrt(upy.NODE_RELEASE)))}"
                     " \"$@\"\n")
    micro.chmod(0o755)
    (tree / "etc" / "init.d").mkdir(parents=True)
    (tree / "etc" / "opkg.conf").write_text(OPKG_CONF)
    # owrt-sandbox starts rpcd itself and the sources have no rpcd init
    # script: this one does what the image's does on reload (SIGHUP: re-read
    # the ACL files), which lvn's postinst calls
    rpcd = tree / "etc" / "init.d" / "rpcd"
    # (this script's own process is also named rpcd: pidof lists it too)
    rpcd.write_text("#!/bin/sh\ncase $1 in reload)\n"
                    "\tfor p in $(pidof rpcd); do [ \"$p\" = $$ ] || kill -HUP \"$p\"; done ;;\n"
                    "esac\n")
    rpcd.chmod(0o755)
    # rpcd's package installs its ACL for every session (session access and
    # login, which LuCI's views call); build.sh leaves it in the sources
    acl = tree / "usr" / "share" / "rpcd" / "acl.d"
    acl.mkdir(parents=True)
    (acl / "unauthenticated.json").write_bytes((OWRT_SRC / "rpcd" / "unauthenticated.json")
                                               .read_bytes())
    status = tree / "usr" / "lib" / "opkg" / "status"
    status.parent.mkdir(parents=True)
    status.write_text("".join(
        f"Package: {p}\nVersion: 1-1\nStatus: install user installed\n"
        f"Architecture: all\nInstalled-Time: 1\n\n" for p in PROVIDED))
    info = status.parent / "info"
    info.mkdir()
    for p in PROVIDED:
        (info / f"{p}.list").write_text("")
    return tree


class Router:
    def __init__(self, ns: Netns, tmp: Path) -> None:
        self.ns = ns
        self.logs = tmp / "owrt-logs"
        self.logs.mkdir()
        # the project tree is bound in: it may live under /tmp (a CI clone),
        # which the sandbox replaces with its own tmpfs
        self.proc = ns.popen(str(OWRT / "bin" / "owrt-sandbox"), "-r", "-o", str(overlay(tmp)),
                             "-b", str(ROOT), "-l", str(self.logs), "--", "sleep", "1000000",
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        self.pid = 0
        wait_for(self._find_inner, scaled(120), "the sandbox's ubusd, procd and rpcd")
        # reload_config only reports changes against checksums it recorded
        # before: a booted router has run it once (its first run records)
        self.sh("reload_config")

    def _find_inner(self) -> bool:
        """The host pid of this sandbox's ``sleep`` (a descendant of our
        process, in a child PID namespace): nsenter's target."""
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise AssertionError(f"owrt-sandbox exited ({self.proc.returncode}): {err}")
        parent: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parent[int(stat.parent.name)] = int(fields[1])
        for pid in parent:
            up = pid
            while up in parent and up != self.proc.pid:
                up = parent[up]
            if up != self.proc.pid:
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd == b"sleep\x001000000\x00":
                self.pid = pid
                return True
        return False

    def argv(self, *cmd: str) -> list[str]:
        """A command line that runs ``cmd`` on the router (run it with ENV)."""
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-r", "-w", *cmd]

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> str:
        """Run a shell script on the router (busybox ash, as on OpenWrt)."""
        p = subprocess.run(self.argv("/bin/sh", "-c", script), capture_output=True,
                           timeout=scaled(timeout), env=ENV)
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"on the router, exit {p.returncode}: {script}\n{out}"
                                 f"{p.stderr.decode(errors='replace')}\n{self.log_tail()}")
        return out

    def log_tail(self) -> str:
        out = []
        for f in sorted(self.logs.glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-15:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def close(self) -> None:
        # the sleep is the command of the namespace's PID 1: when it ends,
        # PID 1 exits and the kernel kills everything left in the namespace
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
