"""The agent with the dependency versions of OpenWrt 24.10 (cryptography
41.0.7, pyOpenSSL 23.3.0, pyroute2 0.7.9 for the tests: scripts/openwrt-24.10-pins.txt),
in the .venv-floor that scripts/setup-deps.sh makes: the CPython server
(lvn-server, what runs CPython on a router) with a revocation list,
joined through NAT by a node, and a library test, run again under that
interpreter.  The CPython client's TLS and session code meet the floor
in the host stage that runs the unit tests in .venv-floor (real TLS on
socket pairs).  These are userspace versions, so one kernel is enough
(marker ``oldest``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .netns import scaled

# a userspace scenario: once, in the oldest kernel's VM, which make test
# boots beside the host stages (docs/testing.md)
pytestmark = pytest.mark.oldest

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ROOT / ".venv-floor" / "bin" / "python"


FLOOR_TESTS = [
    # a process with several connections into one netns
    "tests/kernel/test_lifecycle.py::test_connections_at_once_all_stay_in_their_netns",
    # the server (the node has none of these dependencies); test_agent's
    # whole NAT scenario with CPython clients took 230 CPU-s of make test's
    # older-kernel VM, this one about 15
    "tests/kernel/test_node_join.py::test_node_joins_through_nat_and_passes_traffic",
]


def test_agents_join_with_openwrt_24_10_versions() -> None:
    if not FLOOR.exists():
        pytest.fail(".venv-floor is missing: scripts/setup-deps.sh makes it")
    versions = subprocess.run(
        [str(FLOOR), "-c", "import cryptography, OpenSSL, pyroute2; print(cryptography."
         "__version__, OpenSSL.__version__, pyroute2.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    pins = dict(line.split("==") for line in
                (ROOT / "scripts" / "openwrt-24.10-pins.txt").read_text().splitlines()
                if "==" in line)
    assert versions == [pins["cryptography"], pins["pyOpenSSL"], pins["pyroute2"]]
    res = subprocess.run(
        [str(FLOOR), "-m", "pytest", "-p", "no:cacheprovider", "-q", *FLOOR_TESTS],
        cwd=ROOT, capture_output=True, text=True, timeout=scaled(1800),
        env=dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"))
    # what failed first (the agents' logs that follow fill the output's end)
    failed = "\n".join(line for line in res.stdout.splitlines()
                       if line.startswith(("E   ", "FAILED", "tests/")) and "log of" not in line)
    assert res.returncode == 0, (failed[:3000] + "\n[...]\n" + res.stdout[-2000:]
                                 + res.stderr[-1000:])
    assert f"{len(FLOOR_TESTS)} passed" in res.stdout
