"""Authenticated datagrams on the tunnel's UDP socket (sans-I/O).

Probe and keepalive datagrams share the data socket with the tunnel, so
they start with the control prefix 0xFFFFFFFF that the kernel leaves to
the socket's owner (docs/wire-format.md).  Layout (big endian, 37 bytes):

    0xFFFFFFFF | type u8 | session 8 bytes | counter u64 | MAC 16 bytes

MAC = HMAC-SHA256(key, everything before it), first 16 bytes; ``key`` is
32 random bytes the server draws for the session and sends in LEASE over
the mutually authenticated TLS channel, so only the two ends of that
channel can make one (docs/protocol.md).  The counter must grow: a
replayed datagram is refused.  LOAD_PROBE and LOAD (docs/servers.md,
"Choosing a server") are made with the key the servers of one overlay
share instead, and the session field carries the probe's random nonce,
which the answer repeats.  Each direction has its own counter, and
each side accepts only the types the other sends, so a datagram reflected
back to its sender is refused too.  The kernel's own keepalive is just the
4-byte prefix: it keeps NAT bindings open and proves nothing.

Pure and MicroPython-friendly: HMAC is built from ``hashlib.sha256``
(MicroPython has no ``hmac`` module).
"""

import hashlib
import struct

PREFIX = b"\xff\xff\xff\xff"
PROBE = 1        # client -> server
KEEPALIVE = 2    # client -> server
ACK = 3          # server -> client: the answer to a keepalive (liveness)
CHALLENGE = 4    # server -> client, to a new address: prove you are there
RESPONSE = 5     # client -> server: the answer, its MAC bound to the challenge
LOAD_PROBE = 6   # client -> any server of its list: how loaded are you?
LOAD = 7         # server -> client: its load, the counter field (load_figure)
TYPES = (PROBE, KEEPALIVE, ACK, CHALLENGE, RESPONSE, LOAD_PROBE, LOAD)
KEY_SIZE = 32
SESSION_SIZE = 8
MAC_SIZE = 16
_BODY = ">4sB8sQ"
SIZE = struct.calcsize(_BODY) + MAC_SIZE  # 37
_BLOCK = 64


class DatagramError(Exception):
    """Not a valid authenticated datagram (the reason is the message)."""


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256 (RFC 2104) from hashlib alone."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + b"\0" * (_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def _equal(a: bytes, b: bytes) -> bool:
    """Compare without an early exit (no timing hint about the MAC)."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def seal(mtype: int, session: bytes, counter: int, key: bytes, bound: bytes = b"") -> bytes:
    """The datagram of type ``mtype`` with its MAC; ``bound``: bytes the MAC
    covers without sending them (a RESPONSE's challenge counter)."""
    if mtype not in TYPES or len(session) != SESSION_SIZE or len(key) != KEY_SIZE:
        raise DatagramError("bad datagram parameters")
    if not 0 <= counter < 1 << 64:
        raise DatagramError("counter out of range")
    body = struct.pack(_BODY, PREFIX, mtype, session, counter)
    return body + hmac_sha256(key, body + bound)[:MAC_SIZE]


def load_figure(clients: int, capacity: int) -> int:
    """A LOAD's counter field: clients in the high 32 bits, capacity in the
    low ones (0: the server takes no new clients, it drains)."""
    return (min(clients, 0xFFFFFFFF) << 32) | min(capacity, 0xFFFFFFFF)


def load_of(data: bytes, key: bytes) -> tuple[int, int]:
    """A LOAD's (clients, capacity); DatagramError if it is not one."""
    mtype, figure = open_(data, key, -1)
    if mtype != LOAD:
        raise DatagramError("not a LOAD")
    return figure >> 32, figure & 0xFFFFFFFF


def challenge_binding(counter: int) -> bytes:
    """What a RESPONSE's MAC is bound to: the counter of the CHALLENGE it answers."""
    return struct.pack(">Q", counter)


def mtype_of(data: bytes) -> int:
    """The (unauthenticated) type byte of a datagram of the right shape."""
    session_of(data)
    return data[4]


def is_nat_keepalive(data: bytes) -> bool:
    """The kernel's unauthenticated keepalive (just the prefix)."""
    return data == PREFIX


def session_of(data: bytes) -> bytes:
    """The session id of a datagram, to find its key; DatagramError if malformed."""
    if len(data) != SIZE or data[:4] != PREFIX:
        raise DatagramError(f"not an lvn datagram ({len(data)} bytes)")
    return data[5:5 + SESSION_SIZE]


def open_(data: bytes, key: bytes, last_counter: int, bound: bytes = b"") -> tuple[int, int]:
    """Check a datagram: ``(type, counter)``.

    Raises DatagramError if it is malformed, its MAC is wrong, or its
    counter is not above ``last_counter`` (a replay).  Only after this
    succeeds may the sender's address be believed.
    """
    session_of(data)
    body, mac = data[:SIZE - MAC_SIZE], data[SIZE - MAC_SIZE:]
    _, mtype, _, counter = struct.unpack(_BODY, body)
    if not _equal(hmac_sha256(key, body + bound)[:MAC_SIZE], mac):
        raise DatagramError("bad MAC")
    if mtype not in TYPES:
        raise DatagramError(f"unknown datagram type {mtype}")
    if counter <= last_counter:
        raise DatagramError(f"replayed (counter {counter}, last {last_counter})")
    return mtype, counter
