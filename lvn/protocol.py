"""The lvn control protocol over TLS: message framing and codec (sans-I/O).

docs/protocol.md is the specification.  A message on the TLS stream is a
4-byte header (version, type, payload length, big endian) and a payload
that is one compact JSON object.  :class:`Framer` turns received bytes into
messages and enforces the limits; :func:`encode` makes the bytes to send.

Pure and MicroPython-friendly: imports only ``json`` and ``struct``, no
``__future__``, ``dataclasses``, ``enum`` or ``typing`` at run time.
"""

import json
import struct

from . import jsonlimit

# 2: the server draws the datagram key and sends it in LEASE (1 exported it
# from TLS 1.3, which MicroPython's TLS does not offer); 1 is refused.
VERSION = 2
MAX_PAYLOAD = 4096  # bytes; a larger message closes the session

# message types
HELLO = 1      # client -> server: who I am, what I want
LEASE = 2      # server -> client: overlay addresses and tunnel parameters
ENDPOINT = 3   # server -> client: the reflexive address the probe came from
READY = 4      # either way: tunnel is set up on my side
ERROR = 5      # either way: why the session ends
BYE = 6        # either way: orderly close

NAMES = {HELLO: "hello", LEASE: "lease", ENDPOINT: "endpoint", READY: "ready",
         ERROR: "error", BYE: "bye"}

# The fields each message must carry, with their JSON types; more fields are
# allowed and ignored (a later minor version may add some).
REQUIRED: dict[int, dict[str, type]] = {
    HELLO: {"want": list},
    LEASE: {"session": str, "key": str, "data_port": int, "mtu": int, "keepalive": int},
    ENDPOINT: {"address": str, "port": int},
    READY: {},
    ERROR: {"code": str, "text": str},
    BYE: {},
}

_HEADER = ">BBH"
HEADER_SIZE = 4


class ProtocolError(Exception):
    """The peer sent something this protocol does not allow."""


def encode(mtype: int, fields: dict[str, object] | None = None) -> bytes:
    """The bytes of one message; raises ProtocolError if it would be invalid."""
    body = fields if fields is not None else {}
    check(mtype, body)
    payload = json.dumps(body, separators=(",", ":")).encode()
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"message too large: {len(payload)} bytes")
    return struct.pack(_HEADER, VERSION, mtype, len(payload)) + payload


def check(mtype: int, body: object) -> None:
    """Raise ProtocolError unless ``body`` is a valid payload for ``mtype``."""
    if mtype not in REQUIRED:
        raise ProtocolError(f"unknown message type {mtype}")
    if not isinstance(body, dict):
        raise ProtocolError(f"{NAMES[mtype]}: payload is not an object")
    for name, kind in REQUIRED[mtype].items():
        value = body.get(name)
        # bool is an int in Python: refuse it where a number is expected
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ProtocolError(f"{NAMES[mtype]}: field {name!r} missing or not {kind.__name__}")


class Framer:
    """Reassembles messages from a byte stream.

    ``feed(data)`` returns the complete messages as ``(type, fields)``
    pairs; it raises ProtocolError on a bad header, a version it does not
    speak, an oversized or malformed payload.  After an error the session
    must be closed: the stream can no longer be trusted.
    """

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[int, dict[str, object]]]:
        self._buf += data
        out = []
        while len(self._buf) >= HEADER_SIZE:
            version, mtype, length = struct.unpack(_HEADER, self._buf[:HEADER_SIZE])
            if version != VERSION:
                raise ProtocolError("the peer speaks protocol version " + str(version)
                                    + ", this agent speaks " + str(VERSION)
                                    + ": run the same lvn release on both ends")
            if length > MAX_PAYLOAD:
                raise ProtocolError(f"message of {length} bytes exceeds the limit of {MAX_PAYLOAD}")
            if mtype not in REQUIRED:
                raise ProtocolError(f"unknown message type {mtype}")
            if len(self._buf) < HEADER_SIZE + length:
                break
            payload = self._buf[HEADER_SIZE:HEADER_SIZE + length]
            self._buf = self._buf[HEADER_SIZE + length:]
            try:
                body = jsonlimit.loads(payload.decode())
            except (ValueError, UnicodeError) as e:
                raise ProtocolError(f"{NAMES[mtype]}: payload is not JSON ({e})") from None
            check(mtype, body)
            assert isinstance(body, dict)  # check() refused anything else
            out.append((mtype, body))
        return out

    def pending(self) -> int:
        """Bytes received that do not make a whole message yet."""
        return len(self._buf)
