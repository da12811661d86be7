"""Peer identities (lvn/identity.py) and certificate roles (lvn pki)."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lvn import LvnError, identity, pki


def cert(cns: list[str], sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, c) for c in cns]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
         .public_key(key.public_key()).serial_number(1)
         .not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(key, hashes.SHA256())


@pytest.mark.parametrize("cns", [[], ["a", "b"], ["<b id=x>"], ["node\x00x"], ["a\x1b[2J"],
                                 ["-lead"], ["x" * 64], ["node\n"]])
def test_a_peer_without_exactly_one_valid_name_is_refused(cns: list[str]) -> None:
    with pytest.raises(ValueError, match="common name"):
        identity.node_name(cert(cns))


def test_a_valid_name() -> None:
    assert identity.node_name(cert(["node-17.ninux_x"])) == "node-17.ninux_x"


def test_server_names_as_rfc_6125_says() -> None:
    # the SAN first: a CN that the SAN does not list is not the server's name
    c = cert(["srv"], [x509.DNSName("GW1.example.net")])
    assert identity.matches(c, "gw1.example.net") and not identity.matches(c, "srv")
    # no SAN: the CN, regardless of case
    assert identity.matches(cert(["Srv"]), "srv")
    import ipaddress
    c = cert(["srv"], [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
    assert identity.matches(c, "10.0.0.1") and not identity.matches(c, "10.0.0.2")


def test_names_are_checked_before_any_file_is_touched(tmp_path: Path) -> None:
    pki.init(tmp_path)
    for bad in ("../ca", "node\n", "a/b", ""):
        with pytest.raises(LvnError, match="invalid name"):
            pki.issue(tmp_path, bad)
        with pytest.raises(LvnError, match="invalid name"):
            pki.revoke(tmp_path, bad)
    assert (tmp_path / "revoked.json").read_text().strip() == "[]"


def test_node_and_server_certificates_have_one_purpose_each(tmp_path: Path) -> None:
    pki.init(tmp_path)
    node, node_key = pki.issue(tmp_path, "node-1")
    server, server_key = pki.issue(tmp_path, "gw", role="server")

    def ekus(p: Path) -> list[x509.ObjectIdentifier]:
        c = x509.load_pem_x509_certificate(p.read_bytes())
        return list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert ekus(node) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ekus(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    # a TLS client refuses a node's certificate as a server's (OpenSSL's purpose check)
    store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    store.load_verify_locations(tmp_path / "ca.pem")
    import socket
    import threading
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(node, node_key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            srv.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(listener.getsockname(), timeout=30) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="unsuitable certificate purpose"):
            store.wrap_socket(raw, server_hostname="node-1")
    t.join(timeout=30)
    listener.close()
