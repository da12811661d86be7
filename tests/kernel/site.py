"""A router (tests/kernel/router.py) and its peer: the ipks installed on
it come from ``make ipk``'s script, the peer is a static tunnel made by
``lvn apply`` in another namespace.  test_openwrt.py and test_luci.py
each run one for their module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lvn.netlink import Ipudp

from .conftest import load_module
from .netns import Netns, veth, wait_for
from .router import ENV, OWRT, ROOT, Router

KERNEL = os.uname().release

PEER_CONF = """
config tunnel 'router'
	option ifname 'lvn1'
	option remote '10.99.0.1'
	option port '50003'
	option remote_port '50003'
	list address '10.51.0.2/30'
"""

# what an admin types on the router to add the tunnel to its peer
UCI_TUNNEL = ("uci set lvn.peer=tunnel && uci set lvn.peer.ifname=lvn1 && "
              "uci set lvn.peer.remote=10.99.0.2 && uci set lvn.peer.port=50003 && "
              "uci set lvn.peer.remote_port=50003 && "
              "uci add_list lvn.peer.address=10.51.0.1/30 && uci commit lvn && reload_config")


class Site:
    def __init__(self, router: Router, r: Netns, peer: Netns, ipk: Path) -> None:
        self.router, self.r, self.peer, self.ipk = router, r, peer, ipk
        self.k = Ipudp(netns=r.name)

    def call(self, method: str, args: dict[str, Any] | None = None) -> tuple[str, Any]:
        """``ubus call lvn METHOD ARGS``: ("" or ubus's "Command failed: ..."
        line, the reply data or None)."""
        p = subprocess.run(self.router.argv("ubus", "-t", "30", "call", "lvn", method,
                                            json.dumps(args or {})),
                           capture_output=True, text=True, env=ENV, timeout=120)
        failed = p.stderr.strip() if p.returncode != 0 else ""
        return failed, json.loads(p.stdout) if p.stdout.strip() else None

    def ubus(self, method: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """A call that must succeed: its reply."""
        failed, reply = self.call(method, args)
        assert not failed and isinstance(reply, dict), (method, failed, reply)
        return reply

    def wait_ready(self) -> None:
        """The service answers rpcd's lvn object (rpcd has the object as
        soon as the package is installed; the service may still start)."""
        self.wait(lambda: self.call("status")[0] == "", 60, "lvn to answer ubus calls")

    def service(self) -> dict[str, object]:
        out = self.router.sh("ubus call service list '{\"name\":\"lvn\"}'")
        instances = json.loads(out).get("lvn", {}).get("instances", {})
        return dict(instances.get("lvn", {}))

    def remote(self) -> str | None:
        devs = {d.ifname: d for d in self.k.devices()}
        t = devs["lvn1"].tunnels if "lvn1" in devs else ()
        return t[0].remote if t else None

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        """wait_for, and on a timeout what the router says about itself."""
        try:
            wait_for(cond, timeout, what)
        except AssertionError as e:
            state = self.router.sh("ubus -t 10 call lvn status; lvn config validate; lvn show; "
                                   "cat /etc/config/lvn", check=False)
            raise AssertionError(f"{e}\n--- the router:\n{state}\n--- its logs:\n"
                                 f"{self.router.log_tail()}") from None

    def ping(self) -> None:
        self.r.run("ping", "-c", "2", "-W", "5", "10.51.0.2")


def router_ipks(tmp: Path) -> Path:
    """The ipks to install: scripts/test-vm.sh's, built on the host before
    the boot (LVN_IPK_DIR), or else built here under ``tmp``."""
    if os.environ.get("LVN_IPK_DIR"):
        return Path(os.environ["LVN_IPK_DIR"])
    out = tmp / "ipk"
    subprocess.run([str(ROOT / "scripts" / "router-ipks.sh"), str(out), KERNEL], check=True,
                   capture_output=True, env=dict(os.environ, PYTHON=sys.executable))
    return out


@contextmanager
def router_site(tmp: Path) -> Iterator[Site]:
    if not (OWRT / "bin" / "owrt-sandbox").exists():
        pytest.skip("OpenWrt's userland is not built (scripts/owrt-userland.sh, which make test "
                    "runs before the VM stage, found no sources): these tests did NOT run")
    load_module()
    # the ipks live under the project tree (the sandbox has its own /tmp),
    # one folder per site: test_openwrt and test_luci may run side by side
    (ROOT / "build" / "vm" / KERNEL).mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix="site-", dir=ROOT / "build" / "vm" / KERNEL))
    r, peer = Netns(), Netns()
    router = None
    try:
        ipk = router_ipks(own)
        veth(r, peer)
        r.ip("addr", "add", "10.99.0.1/24", "dev", "ul0")
        peer.ip("addr", "add", "10.99.0.2/24", "dev", "ul0")
        (tmp / "peer").mkdir()
        (tmp / "peer" / "lvn").write_text(PEER_CONF)
        peer.run(sys.executable, "-m", "lvn", "apply", "-c", str(tmp / "peer"),
                 "--state", str(tmp / "peer.json"))
        router = Router(r, tmp)
        s = Site(router, r, peer, ipk)
        yield s
        s.k.close()
    finally:
        if router is not None:
            router.close()
        for ns in (r, peer):
            ns.delete()
        shutil.rmtree(own, ignore_errors=True)
