"""Real etcd members (Debian's etcd-server) on loopback, started and
stopped by the tests: one member, or a cluster of three."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from etcdcluster import ETCD, Cluster, Member  # noqa: F401  (the tests use them)


def started(tmp: Path, size: int) -> Iterator[Cluster]:
    if not Path(ETCD).exists():
        pytest.fail("etcd is not installed (scripts/setup-deps.sh installs etcd-server)")
    c = Cluster(tmp, size)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster1(tmp_path: Path) -> Iterator[Cluster]:
    yield from started(tmp_path, 1)


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[Cluster]:
    yield from started(tmp_path, 3)
