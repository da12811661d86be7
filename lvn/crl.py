"""The server's certificate revocation list: read it, notice a new one, warn
before it expires (docs/protocol.md, "Revocation").

A CRL carries a next-update time; past it OpenSSL refuses every client
("revocation list expired"), so the whole network would be locked out
the day the list ages.  ``lvn pki crl`` signs a fresh one; the server
re-reads the file when it changes (and on reload) and ends the live
sessions of certificates revoked since.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from . import LvnError, compat

WARN_DAYS = 7.0  # warn this long before the list's next update


@dataclass(frozen=True)
class Crl:
    path: str
    signature: tuple[int, int, int] | None  # the file as last read (inode, size, mtime)
    next_update: float | None              # Unix time; None: the list has none
    serials: frozenset[int]


def signature(path: str) -> tuple[int, int, int] | None:
    """Changes whenever the file is replaced or rewritten."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read(path: str) -> Crl:
    """The list at ``path``; LvnError naming the problem."""
    sig = signature(path)
    try:
        crl = x509.load_pem_x509_crl(Path(path).read_bytes())
    except (OSError, ValueError) as e:
        raise LvnError(f"cannot load the revocation list {path}: {e}") from None
    nxt = compat.crl_next_update(crl)
    return Crl(path, sig, nxt.timestamp() if nxt is not None else None,
               frozenset(r.serial_number for r in crl))


def expired(crl: Crl, now: float) -> bool:
    """Whether the list's next update is past (every client is refused)."""
    return crl.next_update is not None and crl.next_update <= now


def warning(crl: Crl, now: float, warn_days: float = WARN_DAYS) -> str | None:
    """What to tell the operator about the list's age, or None."""
    if crl.next_update is None:
        return None
    left = crl.next_update - now
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(crl.next_update))
    fix = f"run 'lvn pki crl' on the CA and copy its crl.pem to {crl.path}"
    if expired(crl, now):
        return f"the revocation list {crl.path} expired at {when}: every client is " \
               f"refused until it is renewed ({fix})"
    if left < warn_days * 86400:
        return f"the revocation list {crl.path} expires in {left / 86400:.1f} days " \
               f"({when}): then every client is refused; {fix}"
    return None
