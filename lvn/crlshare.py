"""One revocation list for every server (docs/servers.md, "Revocations").

With their leases in etcd, servers that have ``option crl`` share the
list under ``<etcd_prefix>/crl``: copy a new ``crl.pem`` to any one
server, and every other writes it over its own ``crl`` file, which it
then reads as before (lvn/crl.py; it looks every 5 s).  Of two lists the
one issued later wins; a list from etcd is taken only if the CA signed
it, so whoever can write to etcd can neither bring back an older list
(revocations undone) nor slip in one of its own.  The etcd calls run in
a thread of their own (lvn/etcdthread.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from . import LvnError, compat
from .etcd import Etcd, put, unchanged
from .etcdthread import EtcdThread
from .files import write_atomic

log = logging.getLogger("lvn")

SYNC_EVERY = 5.0  # s

# which list to keep: (issued, PEM), so that lists issued in the same
# second still order the same way on every server
Version = tuple[float, bytes]


def version(pem: bytes, ca: x509.Certificate) -> Version:
    """The list's place in time; LvnError unless ``ca`` signed it."""
    try:
        crl = x509.load_pem_x509_crl(pem)
    except ValueError as e:
        raise LvnError(f"not a revocation list: {e}") from None
    key = ca.public_key()
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey,
                            ed25519.Ed25519PublicKey)):
        raise LvnError("the CA's key cannot sign a revocation list")
    if crl.issuer != ca.subject or not crl.is_signature_valid(key):
        raise LvnError("not signed by this server's CA")
    return compat.crl_last_update(crl).timestamp(), pem


def decide(local: Version | None, shared: Version | None) -> str:
    """"publish" the file's list, "adopt" the shared one, or "" (the same)."""
    if local is not None and (shared is None or local > shared):
        return "publish"
    if shared is not None and (local is None or shared > local):
        return "adopt"
    return ""


class CrlShare(EtcdThread):
    """Keeps the file at ``path`` and the key ``<prefix>/crl`` in step."""

    every = SYNC_EVERY
    failing = "revocation list not shared"
    recovered = "revocation list shared through etcd again"

    def __init__(self, etcd: Etcd, prefix: str, path: str, ca_path: str) -> None:
        super().__init__(etcd, "crl-share")
        self.key, self.path = prefix.rstrip("/") + "/crl", path
        self.ca = x509.load_pem_x509_certificate(Path(ca_path).read_bytes())

    def step(self) -> str:
        """One round: what was done ("publish", "adopt", or "")."""
        return super().step() or ""

    def _step(self) -> str:
        local = shared = None
        try:
            local = version(Path(self.path).read_bytes(), self.ca)
        except OSError:
            pass  # not there yet: etcd's list is written
        except LvnError as e:
            log.debug("%s: %s: not published", self.path, e)
        kv = self.etcd.get(self.key)
        if kv is not None:
            try:
                shared = version(kv.value.encode(), self.ca)
            except LvnError as e:
                self._trouble(f"etcd's revocation list ({self.key}): {e}: ignored")
        done = decide(local, shared)
        if done == "publish" and local is not None:
            if self.etcd.txn([unchanged(kv, self.key)], [put(self.key, local[1].decode())]):
                log.info("revocation list %s published to etcd for the other servers",
                         self.path)
            else:
                done = ""  # another server wrote first: the next round compares again
        elif done == "adopt" and shared is not None:
            write_atomic(self.path, shared[1], 0o644)
            log.info("revocation list from etcd written to %s", self.path)
        return done
