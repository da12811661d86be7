"""The revocation list's lifecycle: re-signing, reading, the expiry warning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lvn import LvnError, crl, pki
from lvn.cli import main


def test_refresh_resigns_with_a_fresh_next_update(tmp_path: Path) -> None:
    pki.init(tmp_path)
    pki.issue(tmp_path, "node-1")
    serial = pki.revoke(tmp_path, "node-1")
    short = pki.refresh_crl(tmp_path, days=2)
    first = crl.read(str(short))
    assert first.serials == {serial}
    assert first.next_update is not None and 1.9 * 86400 < first.next_update - time.time() \
        < 2.1 * 86400
    w = crl.warning(first, time.time())
    assert w is not None and "expires in 2.0 days" in w and "lvn pki crl" in w
    assert main(["pki", "crl", str(tmp_path), "--days", "30"]) == 0
    second = crl.read(str(short))
    assert second.serials == {serial} and second.signature != first.signature
    assert crl.warning(second, time.time()) is None
    assert crl.warning(second, second.next_update + 1) is not None   # type: ignore[operator]
    assert "every client is refused" in str(crl.warning(second, second.next_update + 1))  # type: ignore[operator]


def test_a_bad_list_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "crl.pem"
    bad.write_text("not a list")
    with pytest.raises(LvnError, match="cannot load the revocation list .*crl.pem"):
        crl.read(str(bad))
