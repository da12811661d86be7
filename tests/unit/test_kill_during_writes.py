"""SIGKILL of a process in the middle of lease and state writes (issue 27):
at random points, 100 times.  After each kill the lease table and the
status file parse, no identity that was granted an address lost it or has
another one, and no address belongs to two identities."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import json, sys, time
from pathlib import Path
from lvn.files import write_atomic
from lvn.leases import Leases
d = Path(sys.argv[1])
leases = Leases(d / "leases.json", "10.77.0.0/16", "fd77::/64")
n = len(leases.table)
while True:
    name = "node-%d" % n
    addrs = leases.lease(name)
    # the grant is reported only after lease() returned (it was saved)
    with open(d / "granted", "a") as f:
        f.write(json.dumps([name, addrs]) + "\\n")
    write_atomic(d / "status.json", json.dumps({"n": n, "pad": "x" * 4000}).encode(), 0o600)
    n += 1
"""

KILLS = 100


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(27)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], env=env)
        # wait until it is writing, then kill it somewhere in its loop
        granted = tmp_path / "granted"
        before = granted.stat().st_size if granted.exists() else 0
        deadline = time.monotonic() + 60
        while (not granted.exists() or granted.stat().st_size == before) and \
                time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        table = json.loads((tmp_path / "leases.json").read_text())
        json.loads((tmp_path / "status.json").read_text())
        lines = granted.read_text().splitlines()
        for line in lines[:-1] + ([lines[-1]] if lines and lines[-1].endswith("]") else []):
            try:
                name, addrs = json.loads(line)
            except ValueError:
                continue  # the report line itself was cut by the kill
            assert table.get(name) == addrs, (name, addrs, table.get(name))
        owners: dict[str, str] = {}
        for name, addrs in table.items():
            for a in addrs:
                assert a not in owners, (a, name, owners[a])
                owners[a] = name
    # a killed write leaves its temporary file; the next write of that file
    # removes it (each write has a file of its own name: none may pile up)
    from lvn.files import write_atomic
    for name in ("leases.json", "status.json"):
        write_atomic(tmp_path / name, (tmp_path / name).read_bytes(), 0o600)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    print(f"{KILLS} kills, {len(table)} identities leased")
