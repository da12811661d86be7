"""lvn pki: certificates that pyOpenSSL's verifier accepts or refuses as intended."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from OpenSSL import crypto

from lvn import LvnError, pki


def verify(ca_dir: Path, cert: Path, with_crl: bool = True) -> str | None:
    """None if ``cert`` verifies against the CA (and its CRL); else the reason."""
    store = crypto.X509Store()
    store.add_cert(crypto.load_certificate(crypto.FILETYPE_PEM, (ca_dir / "ca.pem").read_bytes()))
    if with_crl:
        store.add_crl(x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes()))
        store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
    leaf = crypto.load_certificate(crypto.FILETYPE_PEM, cert.read_bytes())
    try:
        crypto.X509StoreContext(store, leaf).verify_certificate()
    except crypto.X509StoreContextError as e:
        return str(e)
    return None


def test_issue_verify_revoke(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    pki.init(ca)
    a, a_key = pki.issue(ca, "node-a")
    b, _ = pki.issue(ca, "node-b")
    assert verify(ca, a) is None and verify(ca, b) is None
    for key in (ca / "ca.key", a_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    facts = pki.show(a)
    assert facts["subject"] == "CN=node-a" and facts["dns"] == ["node-a"]

    serial = pki.revoke(ca, "node-a")
    revoked = next((ca / "issued").glob("node-a.revoked-*.pem"))
    assert f"{serial:x}" in revoked.name
    assert "revoked" in (verify(ca, revoked) or "")
    assert verify(ca, b) is None          # the other node is unaffected
    c, _ = pki.issue(ca, "node-a")        # the name can be issued again
    assert verify(ca, c) is None


def test_wrong_ca_expired_and_not_yet_valid(tmp_path: Path) -> None:
    ca, other = tmp_path / "ca", tmp_path / "other"
    pki.init(ca)
    pki.init(other)
    foreign, _ = pki.issue(other, "intruder")
    assert verify(ca, foreign, with_crl=False) is not None
    now = dt.datetime.now(dt.UTC)
    old, _ = pki.issue(ca, "old", days=1, not_before=now - dt.timedelta(days=3))
    assert "expired" in (verify(ca, old) or "")
    future, _ = pki.issue(ca, "future", days=10, not_before=now + dt.timedelta(days=2))
    assert "not yet valid" in (verify(ca, future) or "")


def test_errors(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    with pytest.raises(LvnError, match="not a PKI directory"):
        pki.issue(ca, "x")
    pki.init(ca)
    with pytest.raises(LvnError, match="refusing to replace a CA"):
        pki.init(ca)
    with pytest.raises(LvnError, match="invalid name"):
        pki.issue(ca, "../etc/passwd")
    pki.issue(ca, "n1")
    with pytest.raises(LvnError, match="already has a certificate"):
        pki.issue(ca, "n1")
    with pytest.raises(LvnError, match="no certificate issued to 'n2'"):
        pki.revoke(ca, "n2")
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(LvnError, match="not a PEM certificate"):
        pki.show(tmp_path / "junk.pem")
