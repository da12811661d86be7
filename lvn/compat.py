"""What differs between the dependency versions that OpenWrt ships.

OpenWrt 24.10 ships cryptography 41 and pyOpenSSL 23.3; the current
packages feed ships newer ones (docs/openwrt.md has the table).  The
project supports both; everything version-dependent lives here.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from OpenSSL import SSL, crypto


def not_valid_before(cert: x509.Certificate) -> dt.datetime:
    """Start of validity, timezone-aware UTC (``not_valid_before_utc`` is
    cryptography >= 42; older ones return a naive UTC datetime)."""
    if hasattr(cert, "not_valid_before_utc"):
        return cert.not_valid_before_utc
    return cert.not_valid_before.replace(tzinfo=dt.UTC)


def not_valid_after(cert: x509.Certificate) -> dt.datetime:
    """End of validity, timezone-aware UTC."""
    if hasattr(cert, "not_valid_after_utc"):
        return cert.not_valid_after_utc
    return cert.not_valid_after.replace(tzinfo=dt.UTC)


def peer_certificate(conn: SSL.Connection) -> x509.Certificate | None:
    """The peer's certificate as a cryptography object
    (``get_peer_certificate(as_cryptography=True)`` is pyOpenSSL >= 24.2)."""
    cert = conn.get_peer_certificate()
    return cert.to_cryptography() if cert is not None else None


def crl_last_update(crl: x509.CertificateRevocationList) -> dt.datetime:
    """When a CRL was issued, timezone-aware UTC (``last_update_utc`` is
    cryptography >= 42)."""
    if hasattr(crl, "last_update_utc"):
        return crl.last_update_utc
    return crl.last_update.replace(tzinfo=dt.UTC)


def crl_next_update(crl: x509.CertificateRevocationList) -> dt.datetime | None:
    """A CRL's next update, timezone-aware UTC (``next_update_utc`` is
    cryptography >= 42)."""
    if hasattr(crl, "next_update_utc"):
        return crl.next_update_utc
    nxt = crl.next_update
    return nxt.replace(tzinfo=dt.UTC) if nxt is not None else None


def add_crl(store: crypto.X509Store, crl: x509.CertificateRevocationList) -> None:
    """Add a revocation list to a TLS context's store.  pyOpenSSL >= 23.1
    takes cryptography's type; 23.0 (Debian 12's python3-openssl) only its
    own, made with ``crypto.CRL.from_cryptography`` (gone in 24.3)."""
    try:
        store.add_crl(crl)
    except AttributeError:
        store.add_crl(crypto.CRL.from_cryptography(crl))  # type: ignore[attr-defined]
