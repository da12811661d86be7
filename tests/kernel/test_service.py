"""`lvn agent` as procd runs it: apply at start, SIGHUP reload by diff,
an invalid file refused while tunnels keep running, SIGTERM cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lvn.netlink import Ipudp

from .netns import Netns, scaled, veth, wait_for

# userspace scenarios: the newest kernel's VM runs them (docs/testing.md)
pytestmark = pytest.mark.newest

CONF = """
config agent 'agent'
	option enabled '0'
	option log_level 'info'

config tunnel 'peer'
	option ifname 'lvn1'
	option remote '10.99.0.2'
	option port '50003'
	list address '10.51.0.1/30'
"""


def site(netns: type[Netns]) -> Netns:
    """The service's netns, with an underlay to its peer."""
    a, b = netns(), netns()
    veth(a, b)
    a.ip("addr", "add", "10.99.0.1/24", "dev", "ul0")
    return a


def start(ns: Netns, tmp_path: Path, conf: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`lvn agent` as procd starts it, with ``conf`` as its file; its log."""
    (tmp_path / "lvn").write_text(conf)
    log = tmp_path / "log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    with open(log, "wb") as out:
        proc = ns.popen(sys.executable, "-m", "lvn", "agent", "-c", str(tmp_path),
                        "--state", str(tmp_path / "state.json"), stdout=out, stderr=out,
                        env=env)
    return proc, log


def test_service_reload_and_stop(netns: type[Netns], tmp_path: Path) -> None:
    a = site(netns)
    a.ip("link", "add", "byhand", "type", "ipudp")
    proc, log = start(a, tmp_path, CONF)
    k = Ipudp(netns=a.name)
    try:
        def tunnel_remote() -> str | None:
            devs = {d.ifname: d for d in k.devices()}
            t = devs["lvn1"].tunnels if "lvn1" in devs else ()
            return t[0].remote if t else None

        wait_for(lambda: tunnel_remote() == "10.99.0.2", 60, "the service to apply")
        ifindex = k.device("lvn1").ifindex
        # (the kernel adds an IPv6 link-local address too: mesh routing daemons need it)
        assert [x for x in k.addresses("lvn1") if not x.startswith("fe80:")] == ["10.51.0.1/30"]
        assert k.link("lvn1")[1] is True

        # an invalid file: refused, logged, nothing changes
        (tmp_path / "lvn").write_text(CONF.replace("10.99.0.2", "10.99.0.256"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: b"reload refused" in log.read_bytes(), 30, "the refusal in the log")
        assert b"lvn.peer.remote: '10.99.0.256' is not an IPv4 or IPv6 address" \
            in log.read_bytes()
        assert tunnel_remote() == "10.99.0.2" and k.device("lvn1").ifindex == ifindex

        # a good change: applied in place
        (tmp_path / "lvn").write_text(CONF.replace("10.99.0.2", "10.99.0.3"))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: tunnel_remote() == "10.99.0.3", 30, "the reload")
        assert k.device("lvn1").ifindex == ifindex

        # stop: the service removes what it created, nothing else
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(30)) == 0, log.read_text()
        assert [d.ifname for d in k.devices()] == ["byhand"]
        assert b"lvn service stopped" in log.read_bytes()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        k.close()


def test_service_started_with_an_invalid_file(netns: type[Netns], tmp_path: Path) -> None:
    """procd starts the service whatever the file holds: a bad one at start
    is logged as such (there is no running configuration to keep), and the
    first good one after it is applied."""
    a = site(netns)
    proc, log = start(a, tmp_path, CONF.replace("10.99.0.2", "10.99.0.256"))
    k = Ipudp(netns=a.name)
    try:
        wait_for(lambda: b"configuration refused, running without tunnels or agent"
                 in log.read_bytes(), 60, "the refusal in the log")
        assert b"keeping the running configuration" not in log.read_bytes()
        assert b"'10.99.0.256' is not an IPv4 or IPv6 address" in log.read_bytes()
        assert proc.poll() is None and k.devices() == []
        (tmp_path / "lvn").write_text(CONF)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: [d.ifname for d in k.devices()] == ["lvn1"], 30, "the good file")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=scaled(30))
        k.close()
