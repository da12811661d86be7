"""The feed on OpenWrt's own programs: opkg installs it, procd runs it,
uci and reload_config change it, ubus (and rpcd's ACLs) reach it.

One router (tests/kernel/router.py) for the whole module, the tests in
order: install, reload by diff, respawn, ubus, rpcd ACL, upgrade, removal.
Its peer, in another namespace, is a static tunnel made by ``lvn apply``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lvn import pki

from .netns import scaled, wait_for
from .router import ENV, ROOT
from .site import KERNEL, UCI_TUNNEL, Site, router_site
from .test_agent import SERVER_CONF, Agents

# userspace scenarios: the newest kernel's VM runs them (docs/testing.md)
pytestmark = pytest.mark.newest

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with router_site(tmp_path_factory.mktemp("owrt")) as s:
        yield s


def test_opkg_install_enables_and_starts(site: Site) -> None:
    out = site.router.sh(f"opkg install {site.ipk}/kmod-ipudp_*.ipk {site.ipk}/lvn_*-1_all.ipk"
                         f" {site.ipk}/lvn-server_*-1_all.ipk 2>&1")
    assert "Configuring kmod-ipudp." in out and "Configuring lvn." in out, out
    assert "Configuring lvn-server." in out, out
    installed = site.router.sh("opkg list-installed")
    assert "lvn - 0.1.0-1" in installed and "lvn-server - 0.1.0-1" in installed
    assert site.router.sh(f"ls /lib/modules/{KERNEL}/ipudp.ko && cat /etc/modules.d/30-ipudp"
                          ).split() == [f"/lib/modules/{KERNEL}/ipudp.ko", "ipudp"]
    # OpenWrt's default postinst: enabled and started
    site.router.sh("/etc/init.d/lvn enabled")
    wait_for(lambda: site.service().get("running") is True, 60, "procd to run lvn")
    site.wait_ready()
    assert site.router.sh("/etc/init.d/lvn status").strip() == "running"
    assert site.ubus("status")["config"] == {"path": "/etc/config/lvn", "valid": True,
                                             "errors": []}


def test_uci_commit_and_reload_config_apply_by_diff(site: Site) -> None:
    site.router.sh(UCI_TUNNEL)
    site.wait(lambda: site.remote() == "10.99.0.2", 60, "the reload trigger to apply")
    site.ping()
    ifindex = site.k.device("lvn1").ifindex
    # a change: applied in place
    site.router.sh("uci add_list lvn.peer.address=10.51.1.1/30 && uci commit lvn && "
                   "reload_config")
    wait_for(lambda: "10.51.1.1/30" in site.k.addresses("lvn1"), 60, "the new address")
    assert site.k.device("lvn1").ifindex == ifindex
    site.ping()
    # an invalid file: refused (status says why), the tunnel keeps forwarding
    site.router.sh("uci set lvn.peer.remote=10.99.0.256 && uci commit lvn && reload_config")

    def refused() -> bool:
        conf = site.ubus("status")["config"]
        assert isinstance(conf, dict)
        return conf["valid"] is False
    wait_for(refused, 60, "the refusal")
    errors = site.ubus("status")["config"]["errors"]
    assert "lvn.peer.remote: '10.99.0.256' is not an IPv4 or IPv6 address" in \
        [e.strip() for e in errors]
    assert site.remote() == "10.99.0.2" and site.k.device("lvn1").ifindex == ifindex
    site.ping()
    site.router.sh("uci set lvn.peer.remote=10.99.0.2 && uci commit lvn && reload_config")
    wait_for(lambda: not refused(), 60, "the valid file to be accepted again")


def test_kill_9_respawns_and_tunnels_keep_forwarding(site: Site) -> None:
    pid = site.service()["pid"]
    ifindex = site.k.device("lvn1").ifindex
    site.router.sh(f"kill -9 {pid}")
    site.ping()  # the kernel forwards while the agent is dead
    wait_for(lambda: site.service().get("running") is True and site.service()["pid"] != pid,
             120, "procd to respawn lvn")
    site.wait_ready()
    assert site.ubus("status")["tunnels"] == 1
    assert site.k.device("lvn1").ifindex == ifindex
    site.ping()


def test_init_script_verbs(site: Site) -> None:
    """stop removes the service's devices; start, restart and reload bring
    them back or keep them; status follows."""
    site.router.sh("/etc/init.d/lvn stop")
    # procd stops the instance asynchronously (SIGTERM, term_timeout 10 s)
    site.wait(lambda: site.router.sh("/etc/init.d/lvn status", check=False).strip()
              == "inactive", 60, "status to say inactive")
    assert "lvn1" not in [d.ifname for d in site.k.devices()]
    # rpcd still has the object: a call says the service is not running
    failed, reply = site.call("status")
    assert "Not found" in failed and "service is not running" in reply["error"], (failed, reply)
    site.router.sh("/etc/init.d/lvn start")
    site.wait(lambda: site.remote() == "10.99.0.2", 60, "start to apply")
    site.ping()
    pid = site.service()["pid"]
    site.router.sh("/etc/init.d/lvn restart")
    site.wait(lambda: site.service().get("pid") not in (None, pid) and
              site.remote() == "10.99.0.2", 60, "restart")
    ifindex = site.k.device("lvn1").ifindex
    site.router.sh("/etc/init.d/lvn reload")
    assert site.service()["pid"] != pid and site.k.device("lvn1").ifindex == ifindex
    assert site.router.sh("/etc/init.d/lvn status").strip() == "running"
    site.wait_ready()
    site.ping()


def test_ubus_methods_on_real_ubusd(site: Site) -> None:
    status = site.ubus("status")
    assert status["tunnels"] == 1 and status["devices"] >= 1
    tunnels = site.ubus("tunnels")["tunnels"]
    assert isinstance(tunnels, list)
    assert [(t["static"], t["remote"]) for t in tunnels] == [("peer", "10.99.0.2")]
    assert site.ubus("peers") == {"peers": []}
    assert site.ubus("reload")["ok"] is True
    listen = subprocess.Popen(site.router.argv("ubus", "-t", "120", "listen", "lvn.tunnel.add"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    try:
        wait_for(lambda: "ubus -t 120 listen" in site.router.sh("ps w"), 30, "the listener")
        site.router.sh("ubus -t 10 list lvn")
        reply = site.ubus("tunnel_add", {"name": "two", "tunnel": {
            "ifname": "lvn2", "remote": "10.99.0.9", "address": ["10.52.0.1/30"]}})
        assert reply["ok"] is True
        assert listen.stdout is not None
        event = listen.stdout.readline().decode()
    finally:
        listen.kill()
        listen.wait()
    assert json.loads(event) == {"lvn.tunnel.add": {"ifname": "lvn2", "id": 0,
                                                     "remote": "10.99.0.9",
                                                     "remote_port": 50000}}, event
    assert site.router.sh("uci get lvn.two.remote").strip() == "10.99.0.9"
    # the file lvn rewrote reads back the same with the real uci
    assert site.router.sh("uci show lvn") == site.router.sh("lvn config show lvn")
    assert site.ubus("tunnel_del", {"name": "two"})["ok"] is True
    assert "lvn2" not in [d.ifname for d in site.k.devices()]
    # unknown tunnel, bad options: ubus status "Invalid argument", the data says why
    failed, reply = site.call("tunnel_del", {"name": "nope"})
    assert "Invalid argument" in failed and "no tunnel section" in reply["error"], (failed, reply)
    failed, reply = site.call("tunnel_add", {"name": "x", "tunnel": {"ifname": "lvn3"}})
    assert "Invalid argument" in failed and "required option is missing" in reply["error"]
    failed, reply = site.call("tunnel_add", {"tunnel": {}})
    assert "Invalid argument" in failed and "invalid tunnel name" in reply["error"]
    # wrong argument types and unknown arguments: rpcd refuses them
    for args in ({"name": 7}, {"name": "two", "extra": 1}):
        failed, reply = site.call("tunnel_del", args)
        assert "Invalid argument" in failed and reply is None, (args, failed, reply)
    # what uhttpd adds to every call from LuCI, and an optional argument
    assert site.ubus("status", {"ubus_rpc_session": "0" * 32})["tunnels"] == 1
    assert [t["ifname"] for t in site.ubus("tunnels", {"ifname": "lvn1"})["tunnels"]] == ["lvn1"]
    assert site.ubus("tunnels", {"ifname": "lvn9"}) == {"tunnels": []}
    # the configuration check behind LuCI's form
    assert site.ubus("validate", {"sections": [
        {".type": "tunnel", ".name": "t", "ifname": "lvn5", "remote": "10.0.0.300"}]}) == {
        "valid": False, "errors": ["lvn.t.remote: '10.0.0.300' is not an IPv4 or IPv6 address"]}


STUCK_SERVICE = """
import time
from lvn import nodecontrol
s = nodecontrol.listen("/var/run/lvn/control.sock")
print("listening")
conns = []
while True:
    conns.append(s.accept()[0])  # and never answer
"""


def test_a_stuck_service_does_not_freeze_rpcd(site: Site) -> None:
    """A service that accepts calls and never answers (hung, or busy under
    a flood): rpcd's plugin gives up after its 3 s deadline with "Request
    timed out" and answers the next call, instead of waiting 10 s per read
    with LuCI frozen behind it."""
    site.router.sh("/etc/init.d/lvn stop")
    site.wait(lambda: site.router.sh("/etc/init.d/lvn status", check=False).strip()
              == "inactive", 60, "the service to stop")
    stuck = subprocess.Popen(site.router.argv("env", f"MICROPYPATH=.frozen:{ROOT}",
                                              "micropython", "-c", STUCK_SERVICE),
                             stdout=subprocess.PIPE, env=ENV)
    try:
        assert stuck.stdout is not None and stuck.stdout.readline() == b"listening\n"
        took = []
        for _ in range(2):
            start = time.monotonic()
            failed, _ = site.call("status")
            took.append(time.monotonic() - start)
            assert "Request timed out" in failed, failed
        # 3 s and the ubus round trips under TCG; the old plugin waited 10 s
        assert max(took) < 8, took
        print(f"a stuck service's calls came back in {', '.join(f'{t:.1f}' for t in took)} s")
    finally:
        stuck.kill()
        stuck.wait()
    site.router.sh("rm -f /var/run/lvn/control.sock; /etc/init.d/lvn start")
    site.wait(lambda: site.remote() == "10.99.0.2", 60, "the service to start again")
    site.wait_ready()
    assert site.ubus("status")["tunnels"] == 1


def test_rpcd_grants_lvn_acl(site: Site) -> None:
    """rpcd loads the package's ACL: a login with the lvn read group may call
    the read methods and not the write ones; one without it may call none."""
    crypt = subprocess.run(["openssl", "passwd", "-1", "secret"], capture_output=True,
                           text=True, check=True).stdout.strip()
    users = "".join(f"\nconfig login\n\toption username '{user}'\n\toption password '{crypt}'\n"
                    f"\tlist read '{group}'\n"
                    for user, group in (("viewer", "lvn"), ("other", "unrelated")))
    site.router.sh(f"cat >> /etc/config/rpcd <<'EOF'\n{users}EOF\n")

    def access(user: str, method: str) -> bool:
        login = json.loads(site.router.sh(
            "ubus call session login "
            f"'{{\"username\":\"{user}\",\"password\":\"secret\"}}'"))
        sid = login["ubus_rpc_session"]
        out = site.router.sh("ubus call session access "
                             f"'{{\"ubus_rpc_session\":\"{sid}\",\"scope\":\"ubus\","
                             f"\"object\":\"lvn\",\"function\":\"{method}\"}}'")
        return bool(json.loads(out)["access"])

    assert access("viewer", "status") and access("viewer", "tunnels")
    assert not access("viewer", "tunnel_add")
    assert not access("other", "status")


def test_upgrade_keeps_config_and_disable(site: Site) -> None:
    old_pid = site.service().get("pid")
    assert old_pid, site.service()
    site.router.sh("/etc/init.d/lvn disable")
    out = site.router.sh(f"opkg install {site.ipk}/lvn_*-2_all.ipk "
                         f"{site.ipk}/lvn-server_*-2_all.ipk 2>&1")
    assert "Upgrading lvn " in out and "Upgrading lvn-server " in out, out
    installed = site.router.sh("opkg list-installed")
    assert "lvn - 0.1.0-2" in installed and "lvn-server - 0.1.0-2" in installed
    assert site.router.sh("uci get lvn.peer.remote").strip() == "10.99.0.2"
    assert site.router.sh("/etc/init.d/lvn enabled && echo yes || echo no").strip() == "no"
    assert not site.router.sh("ls /etc/rc.d").split(), "the upgrade re-enabled lvn"
    # OpenWrt's scripts stop the old version and start the new one
    site.wait(lambda: site.service().get("running") is True and site.remote() == "10.99.0.2",
              60, "the new version to run")
    # the running service was restarted: the new code runs (docs/openwrt.md)
    assert site.service().get("pid") not in (None, old_pid), (old_pid, site.service())
    site.ping()


def peer_state(site: Site) -> str | None:
    """The state of the router's one agent peer; None while nothing answers."""
    failed, reply = site.call("peers")
    if failed or not isinstance(reply, dict) or not reply.get("peers"):
        return None
    return str(reply["peers"][0].get("state"))


def static_port(site: Site) -> int | None:
    """The remote port of the static tunnel on lvn1 (None: no such tunnel)."""
    devs = {d.ifname: d for d in site.k.devices()}
    tunnels = devs["lvn1"].tunnels if "lvn1" in devs else ()
    return tunnels[0].remote_port if tunnels else None


def test_a_node_without_lvn_server_runs_the_micropython_agent(site: Site,
                                                              tmp_path: Path) -> None:
    """lvn alone, as a node installs it: removing lvn-server switches the
    service to the MicroPython client agent, which joins a server and
    answers the lvn ubus object through rpcd's plugin, and to `lvn-node
    apply` for the static tunnel; with lvn-server back the CPython service
    runs again."""
    site.router.sh("/etc/init.d/lvn enable && /etc/init.d/lvn start")
    wait_for(lambda: site.service().get("running") is True, 60, "lvn to run")
    # a gateway in the peer's namespace: the CPython server agent
    pkidir = ROOT / "build" / "vm" / KERNEL / "owrt-pki"  # the sandbox binds ROOT in
    shutil.rmtree(pkidir, ignore_errors=True)
    pki.init(pkidir)
    for name in ("srv", "node-r"):
        pki.issue(pkidir, name, role="server" if name == "srv" else "node")
    agents = Agents(pkidir)
    try:
        agents.start("srv", site.peer, SERVER_CONF.format(state=tmp_path / "srv-state",
                                                          pki=pkidir, extra=""))
        out = site.router.sh("opkg remove lvn-server 2>&1")
        assert "Removing package lvn-server" in out, out
        site.router.sh(f"""uci set lvn.agent.enabled=1 && uci set lvn.agent.role=client &&
            uci set lvn.client.server=10.99.0.2 && uci set lvn.client.server_name=srv &&
            uci set lvn.client.ca={pkidir}/ca.pem &&
            uci set lvn.client.cert={pkidir}/issued/node-r.pem &&
            uci set lvn.client.key={pkidir}/issued/node-r.key && uci commit lvn &&
            reload_config""")
        site.wait(lambda: "/usr/sbin/lvn-node" in str(site.service().get("command")), 60,
                  "procd to run the node's agent")
        site.wait(lambda: peer_state(site) == "up", scaled(120), "the node to join the server")
        site.r.run("ping", "-c", "2", "-i", "0.3", "-W", "3", "10.77.0.1")
        # the config's static tunnel: `lvn-node apply` made it, and a change
        # reaches the kernel by diff (reload_config, as LuCI's apply does)
        site.wait(lambda: site.remote() == "10.99.0.2", 60, "lvn-node apply to make lvn1")
        site.ping()
        for port in (50004, 50003):
            site.router.sh(f"uci set lvn.peer.remote_port={port} && uci commit lvn && "
                           "reload_config")
            site.wait(lambda p=port: static_port(site) == p, 60, f"remote_port {port} applied")
        site.ping()
        assert peer_state(site) == "up"
        # the agent's tunnel and the static one, as the CPython service lists them
        status = site.ubus("status")
        assert status["role"] == "client" and status["devices"] == 2, status
        assert status["tunnels"] == 2, status
        tunnels = {t["ifname"]: t for t in site.ubus("tunnels")["tunnels"]}
        assert tunnels["lvn0"]["remote"] == "10.99.0.2" and tunnels["lvn0"]["static"] is None
        assert tunnels["lvn0"]["stats"]["rx_packets"] >= 2, tunnels
        assert tunnels["lvn1"]["static"] == "peer" and tunnels["lvn1"]["mode"] == "fixed"
        failed, _ = site.call("tunnel_add", {"name": "x", "tunnel": {"ifname": "lvn5"}})
        assert failed.endswith("(Operation not supported)"), failed
        # lvn-server again: the CPython service takes over the same config
        out = site.router.sh(f"opkg install {site.ipk}/lvn-server_*-2_all.ipk 2>&1")
        assert "Configuring lvn-server." in out, out
        site.wait(lambda: "/usr/sbin/lvn-node" not in str(site.service().get("command"))
                  and site.service().get("running") is True, 60, "the CPython service")
        site.wait(lambda: peer_state(site) == "up", scaled(120),
                  "the CPython client to join the server")
        site.router.sh("uci set lvn.agent.enabled=0 && uci set lvn.agent.role=none && "
                       "uci commit lvn && reload_config")
    finally:
        agents.stop_all()
        print(agents.log("srv")[-3000:])


def test_remove_stops_the_service_and_its_tunnels(site: Site) -> None:
    site.router.sh("/etc/init.d/lvn start")
    wait_for(lambda: site.service().get("running") is True, 60, "lvn to run")
    out = site.router.sh("opkg remove lvn-server lvn 2>&1")
    assert "Removing package lvn-server" in out and "Removing package lvn " in out, out
    site.wait(lambda: site.service() == {} and
              "lvn1" not in [d.ifname for d in site.k.devices()], 60, "the service to go")
    # opkg removes the files it installed (it leaves emptied directories)
    left = site.router.sh("find /usr/lib/lvn -type f; ls /usr/sbin/lvn /usr/sbin/lvn-node "
                          "/etc/init.d/lvn /usr/share/rpcd/acl.d/lvn.json "
                          "/usr/share/rpcd/ucode/lvn.uc 2>&1", check=False)
    assert left.count("No such file or directory") == 5 and ".pyc" not in left, left
    assert ".mpy" not in left, left
