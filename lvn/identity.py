"""Who a peer's certificate says it is (CPython; the node's mbedTLS checks
the server's name itself).

A node's identity is the one common name of its certificate, in the name
grammar of ``lvn pki``: it names the node's tunnel, lease, hooks
(LVN_PEER) and the lines of ``lvn status`` and LuCI, so a certificate
without a CN, with two, or with one carrying other characters (NUL,
escape sequences, markup) is refused.  A client checks the server's name
as RFC 6125 says: against the subjectAltName entries when there are any,
the CN only when there are none, DNS names without regard to case.
"""

from __future__ import annotations

import ipaddress
import re

from cryptography import x509

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def common_names(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]


def node_name(cert: x509.Certificate) -> str:
    """The identity of a peer's certificate; ValueError says why it has none."""
    cns = common_names(cert)
    if len(cns) != 1:
        raise ValueError(f"it has {len(cns)} common names, not one")
    if not NAME.fullmatch(cns[0]):
        raise ValueError(f"its common name {cns[0]!r} is not a valid name (1-63 letters, "
                         "digits, '.', '_', '-')")
    return cns[0]


def matches(cert: x509.Certificate, expected: str) -> bool:
    """Whether ``cert`` is for the host ``expected`` (a name or an address)."""
    try:
        ip = ipaddress.ip_address(expected)
    except ValueError:
        ip = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None and (san.get_values_for_type(x509.DNSName)
                            or san.get_values_for_type(x509.IPAddress)):
        if ip is not None:
            return ip in san.get_values_for_type(x509.IPAddress)
        return expected.lower() in (d.lower() for d in san.get_values_for_type(x509.DNSName))
    return expected.lower() in (cn.lower() for cn in common_names(cert))
