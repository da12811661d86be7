"""I/O errors at every point of a join, under load (issue 27: no single
peer can end the server): 100 clients (make test) or 1,000 (make
test-long) join one server at once (scripts/bench_join.py, the control
plane of make bench) and every tenth
resets its connection (RST) during the TLS handshake, right after its
HELLO (the server's LEASE meets the reset) or after the LEASE (the
server waits for READY).  The server stays up, every other client joins,
and the server's log has no traceback.  (An ERROR or flush on a timer
meeting a reset connection: tests/unit/test_tlsconn_faults.py.)"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import pytest

from lvn import pki

from .netns import Netns, veth, wait_for
from .test_agent import Agents, agents  # noqa: F401
from .test_faults import SERVER_CONF

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_join  # noqa: E402

pytestmark = pytest.mark.oldest

SABOTAGE_EVERY = 10


@pytest.mark.parametrize("clients", [100, pytest.param(1000, marks=pytest.mark.long)])
def test_resets_at_every_point_of_a_join(netns: type[Netns], agents: Agents,  # noqa: F811
                                         tmp_path: Path, clients: int) -> None:
    s, c = netns(), netns()
    veth(s, c, "ul0", "ul0")
    s.ip("addr", "add", "10.95.0.1/24", "dev", "ul0")
    c.ip("addr", "add", "10.95.0.2/24", "dev", "ul0")
    ca = tmp_path / "pki"
    pki.init(ca)
    pki.issue(ca, "srv", role="server")
    certs = bench_join.issue_clients(ca, clients)
    # all clients share one address: the per-source limits raised for them;
    # a pool for them all (saboteurs keep their leases too)
    conf = SERVER_CONF.format(state=tmp_path / "srv-state", pki=ca).replace(
        "\toption crl", "\toption conn_rate '1000'\n\toption conn_burst '1000'\n\toption crl"
    ).replace("'10.77.0.0/24'", "'10.77.0.0/20'")
    agents.start("srv", s, conf, prefix=("prlimit", "--nofile=8192:8192", "--"))
    wait_for(lambda: "server listening" in agents.log("srv"), 120, "the server to start")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 8192), max(hard, 8192)))
    try:
        with c.entered():
            r = bench_join.join(ca, certs, "10.95.0.1", 50000, timeout=600,
                                sabotage_every=SABOTAGE_EVERY)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(r)
    assert r["sabotaged"] == clients // SABOTAGE_EVERY
    assert r["all_joined_s"] is not None, r  # every client that did not reset joined
    assert agents.procs["srv"][0].poll() is None, "the server died"
    log = agents.log("srv")
    assert "Traceback" not in log, log[-3000:]
