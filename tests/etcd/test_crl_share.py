"""The servers' revocation list shared through a real etcd (lvn/crlshare.py):
a list copied to one server reaches the others' files; etcd can neither
bring back an older list nor slip in one the CA did not sign."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from etcdcluster import Cluster

from lvn import crlshare, pki
from lvn.crlshare import CrlShare
from lvn.etcd import Etcd

PREFIX = "/lvn-test"
KEY = PREFIX + "/crl"


def servers(tmp: Path, endpoints: list[str]) -> tuple[Path, Path, Path, CrlShare, CrlShare]:
    """A CA and two servers' list files (each as installed: a copy of crl.pem)."""
    ca = tmp / "pki"
    pki.init(ca)
    pki.issue(ca, "node-a")
    a, b = tmp / "a-crl.pem", tmp / "b-crl.pem"
    shutil.copy(ca / "crl.pem", a)
    shutil.copy(ca / "crl.pem", b)
    return (ca, a, b, CrlShare(Etcd(endpoints), PREFIX, str(a), str(ca / "ca.pem")),
            CrlShare(Etcd(endpoints), PREFIX, str(b), str(ca / "ca.pem")))


def next_second() -> None:
    """A list's issue time has whole seconds: the next one must be later."""
    t = time.time()
    time.sleep(1.05 - (t - int(t)))  # (the wait is for the clock, not for an event)


def test_a_new_list_on_one_server_reaches_the_other(cluster1: Cluster, tmp_path: Path) -> None:
    ca, a, b, share_a, share_b = servers(tmp_path, cluster1.endpoints)
    assert share_a.step() == "publish"
    assert share_b.step() == ""       # the same list: nothing to do
    next_second()
    pki.revoke(ca, "node-a")
    shutil.copy(ca / "crl.pem", a)    # the operator copies it to one server
    assert share_b.step() == ""       # not yet in etcd
    assert share_a.step() == "publish"
    assert share_b.step() == "adopt"
    assert b.read_bytes() == (ca / "crl.pem").read_bytes()
    assert share_a.step() == share_b.step() == ""


def test_etcd_cannot_bring_back_an_older_list(cluster1: Cluster, tmp_path: Path) -> None:
    ca, a, b, share_a, share_b = servers(tmp_path, cluster1.endpoints)
    old = (ca / "crl.pem").read_bytes()
    next_second()
    pki.revoke(ca, "node-a")
    new = (ca / "crl.pem").read_bytes()
    a.write_bytes(new)
    b.write_bytes(new)
    Etcd(cluster1.endpoints).put(KEY, old.decode())  # validly signed, but older
    assert share_b.step() == "publish"               # the newer list goes back
    assert b.read_bytes() == new
    assert Etcd(cluster1.endpoints).get(KEY).value.encode() == new  # type: ignore[union-attr]
    assert share_a.step() == ""


def test_a_list_the_ca_did_not_sign_is_refused(cluster1: Cluster, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    ca, a, b, share_a, share_b = servers(tmp_path, cluster1.endpoints)
    other = tmp_path / "other-pki"
    pki.init(other, name="lvn CA")  # the same name, another key
    next_second()
    pki.refresh_crl(other)
    kept = b.read_bytes()
    Etcd(cluster1.endpoints).put(KEY, (other / "crl.pem").read_text())
    with caplog.at_level(logging.WARNING, logger="lvn"):
        assert share_b.step() == "publish"  # its own list replaces the forgery
    assert b.read_bytes() == kept
    assert f"etcd's revocation list ({KEY}): not signed by this server's CA: ignored" \
        in caplog.text
    Etcd(cluster1.endpoints).put(KEY, "garbage")
    assert share_a.step() == "publish"
    assert a.read_bytes() == kept
    assert "not a revocation list" in caplog.text


def test_etcd_away_changes_nothing_and_is_logged_once(cluster1: Cluster, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    ca, a, b, share_a, share_b = servers(tmp_path, cluster1.endpoints)
    assert share_a.step() == "publish"
    kept = b.read_bytes()
    cluster1.members[0].stop()
    with caplog.at_level(logging.INFO, logger="lvn"):
        assert share_b.step() == share_b.step() == ""
        assert caplog.text.count("revocation list not shared: etcd unreachable") == 1
        assert b.read_bytes() == kept
        cluster1.restart(cluster1.members[0])
        assert share_b.step() == ""
    assert "revocation list shared through etcd again" in caplog.text


def test_the_thread_adopts_within_its_period(cluster1: Cluster, tmp_path: Path) -> None:
    """The running thread (as in the server) writes a newer list over its file."""
    ca, a, b, share_a, share_b = servers(tmp_path, cluster1.endpoints)
    before = os.stat(b).st_mtime_ns
    share_b.start()
    try:
        next_second()
        pki.revoke(ca, "node-a")
        shutil.copy(ca / "crl.pem", a)
        assert share_a.step() == "publish"
        deadline = time.monotonic() + 6 * crlshare.SYNC_EVERY
        while b.read_bytes() != a.read_bytes():
            assert time.monotonic() < deadline, "the thread did not adopt the new list"
            time.sleep(0.1)
        assert os.stat(b).st_mtime_ns != before
    finally:
        share_b.stop()
    assert not share_b.thread.is_alive()


def test_decide() -> None:
    old, new = (1.0, b"x"), (2.0, b"a")
    assert crlshare.decide(None, None) == ""
    assert crlshare.decide(old, None) == "publish"
    assert crlshare.decide(None, old) == "adopt"
    assert crlshare.decide(new, old) == "publish"
    assert crlshare.decide(old, new) == "adopt"
    assert crlshare.decide(old, old) == ""
    # issued in the same second: every server orders them the same way
    assert crlshare.decide((1.0, b"b"), (1.0, b"a")) == "publish"
    assert crlshare.decide((1.0, b"a"), (1.0, b"b")) == "adopt"
