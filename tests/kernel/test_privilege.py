"""A device keeps its sockets in the namespace that created it, also after it
was moved elsewhere. Whoever changes those sockets (port, IPUDP_A_FD,
IPUDP_A_RETURN_FD) needs CAP_NET_ADMIN over that creating namespace, not
only over the one the device now lives in: a user namespace that was given
a device must not make the module bind ports in its creator's namespace."""

from __future__ import annotations

import json
import subprocess
import sys

from .netns import Netns, scaled

# Runs as "root" of a fresh user + network namespace: waits until the
# device has been moved in, then asks for port 80 and reports the outcome.
UNPRIVILEGED = """
import errno, json, socket, sys
from lvn.netlink import KernelError
from lvn.netlink import Ipudp
print("ready", flush=True)
sys.stdin.readline()
out = {}
with Ipudp() as k:
    for what, kw in (("port", {"port": 80}), ("return_fd", {"return_fd": True})):
        try:
            k.set_device("lvn0", **kw)
            out[what] = "ok"
        except KernelError as e:
            out[what] = [e.errno, str(e)]
    out["port_now"] = k.device("lvn0").port
print(json.dumps(out), flush=True)
"""


def test_moved_device_cannot_bind_in_its_creating_netns(netns: type[Netns]) -> None:
    creator = netns()
    creator.ip("link", "add", "lvn0", "type", "ipudp")
    child = subprocess.Popen(["unshare", "-Urn", sys.executable, "-c", UNPRIVILEGED],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout and child.stdin
        ready = child.stdout.readline().strip()
        assert ready == "ready", child.stderr.read() if child.stderr else ""
        creator.ip("link", "set", "lvn0", "netns", str(child.pid))
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=scaled(60))
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    for what in ("port", "return_fd"):
        assert result[what] != "ok", result
        code, text = result[what]
        assert code == 1, result  # EPERM
        assert "creating" in text and "namespace" in text, text
    assert result["port_now"] == 50000
    assert ":80 " not in creator.run("ss", "-Hnuln")
