"""``lvn pki``: a small CA for an lvn network (``cryptography``).

A PKI directory holds ``ca.key`` (0600), ``ca.pem``, ``crl.pem`` and
``revoked.json``; issued node certificates go to ``issued/NAME.pem`` with
their keys in ``issued/NAME.key`` (0600).  Keys are EC P-256.  Node
certificates carry the name as CN and as a DNS subjectAltName, and may
serve as TLS client and server.  Every file is written atomically.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import LvnError, compat, identity
from .files import write_atomic

CA_DAYS = 3650
NODE_DAYS = 825
CRL_DAYS = 30
ROLES = ("node", "server")


def check_name(name: str) -> None:
    if not identity.NAME.fullmatch(name):
        raise LvnError(f"invalid name {name!r} (1-63 letters, digits, '.', '_', '-', "
                       "starting with a letter or digit)")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _load_ca(pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    except FileNotFoundError:
        raise LvnError(f"{pki} is not a PKI directory (run: lvn pki init {pki})") from None
    except ValueError as e:
        raise LvnError(f"{pki}: cannot read the CA: {e}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise LvnError(f"{pki}/ca.key: not an EC key")
    return cert, key


def init(pki: Path, name: str = "lvn CA", days: int = CA_DAYS) -> Path:
    """Create a CA in ``pki``; refuses to overwrite one."""
    pki.mkdir(parents=True, exist_ok=True)
    if (pki / "ca.key").exists():
        raise LvnError(f"{pki}/ca.key exists: refusing to replace a CA")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    write_atomic(pki / "ca.key", _key_pem(key), 0o600)
    write_atomic(pki / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    write_atomic(pki / "revoked.json", b"[]\n", 0o644)
    _write_crl(pki, cert, key, [])
    return pki / "ca.pem"


def issue(pki: Path, name: str, days: int = NODE_DAYS,
          not_before: dt.datetime | None = None, role: str = "node") -> tuple[Path, Path]:
    """A certificate and key for ``name``: (cert path, key path).  ``role``
    "node": TLS client use only; "server": TLS server use only, so a stolen
    node key cannot pose as a server."""
    check_name(name)
    if role not in ROLES:
        raise LvnError(f"unknown certificate role {role!r} (node or server)")
    ca_cert, ca_key = _load_ca(pki)
    out = pki / "issued"
    out.mkdir(exist_ok=True)
    if (out / f"{name}.pem").exists():
        raise LvnError(f"{name} already has a certificate (revoke it first)")
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.SERVER_AUTH if role == "server"
                else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write_atomic(out / f"{name}.key", _key_pem(key), 0o600)
    write_atomic(out / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return out / f"{name}.pem", out / f"{name}.key"


def _revoked(pki: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((pki / "revoked.json").read_text())
    except FileNotFoundError:
        return []
    except ValueError as e:
        raise LvnError(f"{pki}/revoked.json: {e}") from None
    if not isinstance(data, list):
        raise LvnError(f"{pki}/revoked.json: not a list")
    return data


def _write_crl(pki: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
               revoked: list[dict[str, Any]], days: int = CRL_DAYS) -> None:
    now = _now()
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now).next_update(now + dt.timedelta(days=days)))
    for r in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(r["serial"]))
            .revocation_date(dt.datetime.fromtimestamp(r["time"], dt.UTC)).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    write_atomic(pki / "crl.pem", crl.public_bytes(serialization.Encoding.PEM), 0o644)


def refresh_crl(pki: Path, days: int = CRL_DAYS) -> Path:
    """Sign the revocation list again with a fresh next update ``days`` from
    now (run it from cron well within CRL_DAYS: a server refuses every
    client once its list is past its next update)."""
    ca_cert, ca_key = _load_ca(pki)
    _write_crl(pki, ca_cert, ca_key, _revoked(pki), days)
    return pki / "crl.pem"


def revoke(pki: Path, name: str) -> int:
    """Revoke ``name``'s certificate; the serial.  The CRL is rewritten."""
    check_name(name)  # (a path such as ../ca would have revoked the CA's own serial)
    ca_cert, ca_key = _load_ca(pki)
    path = pki / "issued" / f"{name}.pem"
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise LvnError(f"no certificate issued to {name!r} in {pki}/issued") from None
    revoked = _revoked(pki)
    revoked.append({"serial": str(cert.serial_number), "name": name,
                    "time": int(_now().timestamp())})
    _write_crl(pki, ca_cert, ca_key, revoked)
    write_atomic(pki / "revoked.json", json.dumps(revoked, indent=1).encode() + b"\n", 0o644)
    # keep the revoked certificate for the record, free the name
    path.replace(path.with_name(f"{name}.revoked-{cert.serial_number:x}.pem"))
    (pki / "issued" / f"{name}.key").unlink(missing_ok=True)
    return cert.serial_number


def show(path: Path) -> dict[str, Any]:
    """The facts of a certificate file."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise LvnError(f"{path}: not a PEM certificate ({e})") from None
    try:
        sans = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": f"{cert.serial_number:x}",
            "not_before": compat.not_valid_before(cert).isoformat(),
            "not_after": compat.not_valid_after(cert).isoformat(), "dns": sans}
