"""Netlink messages, attributes and acks as bytes (sans-I/O).

The kernel speaks netlink in its own byte order; ``order`` is a struct
prefix ("<" or ">"), the running machine's by default, so that a host test
can also read a big-endian router's messages.  Attribute spaces are
described the pyroute2 way (a class with ``nla_map``: index = attribute
type, ``(name, kind)``; a nested space is the class attribute named by its
kind, with ``nla_flags``), which plain classes on MicroPython can follow
too.  Pure and MicroPython-friendly: imports ``struct`` and ``sys`` only.

Acks are read here rather than by pyroute2: its nlmsgerr decoder looks for
the extended-ack attributes on top of the echoed request header, which on
a big-endian machine loses the kernel's message (docs/netlink-api.md).
"""

import struct
import sys

try:
    from typing import Any
except ImportError:  # MicroPython, which does not evaluate annotations
    pass

NATIVE = "<" if sys.byteorder == "little" else ">"

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_CAPPED = 0x100     # on an ack: the request is echoed without its payload
NLM_F_ACK_TLVS = 0x200   # on an ack: extended-ack attributes follow
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG = 1
NLMSGERR_ATTR_OFFS = 2
NLMSGERR_ATTR_MISS_TYPE = 5
HDR_SIZE = 16
_SCALARS = {"uint8": "B", "uint16": "H", "uint32": "I", "uint64": "Q"}
# what struct.unpack raises for a payload of the wrong size (MicroPython
# has no struct.error)
_UNPACK_ERRORS = (ValueError, getattr(struct, "error", ValueError))


class NetlinkFormatError(ValueError):
    """Bytes that are not a well-formed netlink message (the reason is the message)."""


class Ack:
    """The kernel's answer to a request: ``errno`` 0 is success.

    ``message``: the extended ack's text, if any; ``offset``: where in the
    request the offending attribute starts; ``missing``: the type of a
    required attribute that was absent.
    """

    __slots__ = ("errno", "message", "offset", "missing", "seq")

    def __init__(self, errno: int, seq: int, message: str | None = None,
                 offset: int | None = None, missing: int | None = None) -> None:
        self.errno = errno
        self.seq = seq
        self.message = message
        self.offset = offset
        self.missing = missing

    def __repr__(self) -> str:
        return f"Ack(errno={self.errno}, seq={self.seq}, message={self.message!r})"


def _align(n: int) -> int:
    return (n + 3) & ~3


def message(mtype: int, flags: int, seq: int, payload: bytes, order: str = NATIVE) -> bytes:
    """One netlink message (header + payload, port id 0: the kernel's)."""
    return struct.pack(order + "IHHII", HDR_SIZE + len(payload), mtype, flags, seq, 0) + payload


def attr(atype: int, payload: bytes, order: str = NATIVE) -> bytes:
    """One attribute, padded to 4 bytes."""
    return struct.pack(order + "HH", 4 + len(payload), atype) + payload + b"\0" * (
        -len(payload) % 4)


def split(buf: bytes, order: str = NATIVE) -> list[tuple[int, int, int, bytes]]:
    """``(type, flags, seq, payload)`` of each message in one datagram."""
    out = []
    off = 0
    while off < len(buf):
        if off + HDR_SIZE > len(buf):
            raise NetlinkFormatError(f"truncated netlink header at byte {off}")
        length, mtype, flags, seq, _ = struct.unpack_from(order + "IHHII", buf, off)
        if length < HDR_SIZE or off + length > len(buf):
            raise NetlinkFormatError("netlink message length " + str(length) + " at byte "
                                     + str(off) + " does not fit the " + str(len(buf))
                                     + " bytes received")
        out.append((mtype, flags, seq, bytes(buf[off + HDR_SIZE:off + length])))
        off += _align(length)
    return out


def attrs(buf: bytes, off: int = 0, order: str = NATIVE) -> list[tuple[int, bytes]]:
    """``(type, payload)`` of each attribute from ``off`` on (flags masked off)."""
    out = []
    while off + 4 <= len(buf):
        length, atype = struct.unpack_from(order + "HH", buf, off)
        if length < 4 or off + length > len(buf):
            raise NetlinkFormatError(f"attribute length {length} at byte {off} does not fit")
        out.append((atype & NLA_TYPE_MASK, bytes(buf[off + 4:off + length])))
        off += _align(length)
    return out


def parse_ack(flags: int, seq: int, payload: bytes, order: str = NATIVE) -> Ack:
    """An NLMSG_ERROR message: errno and, with NLM_F_ACK_TLVS, the extended ack.

    Layout: error (s32, negative) | the request's header (echoed) | the
    request's payload unless NLM_F_CAPPED | attributes, 4-byte aligned.
    """
    if len(payload) < 4 + HDR_SIZE:
        raise NetlinkFormatError("netlink error message of " + str(len(payload))
                                 + " bytes (at least " + str(4 + HDR_SIZE) + " expected)")
    (err,) = struct.unpack_from(order + "i", payload, 0)
    ack = Ack(-err, seq)
    if not flags & NLM_F_ACK_TLVS:
        return ack
    start = 4 + HDR_SIZE
    if not flags & NLM_F_CAPPED:
        (echoed,) = struct.unpack_from(order + "I", payload, 4)
        if echoed < HDR_SIZE or 4 + echoed > len(payload):
            raise NetlinkFormatError("the request echoed in a netlink error claims "
                                     + str(echoed) + " bytes of " + str(len(payload) - 4))
        start = 4 + echoed
    _extack(ack, payload, start, order)
    return ack


def parse_done(flags: int, seq: int, payload: bytes, order: str = NATIVE) -> Ack:
    """NLMSG_DONE, the end of a dump: errno (0, or why the dump stopped part
    way) then, with NLM_F_ACK_TLVS, the extended ack."""
    if len(payload) < 4:
        return Ack(0, seq)
    (err,) = struct.unpack_from(order + "i", payload, 0)
    ack = Ack(-err, seq)
    if flags & NLM_F_ACK_TLVS:
        _extack(ack, payload, 4, order)
    return ack


def _extack(ack: Ack, payload: bytes, start: int, order: str) -> None:
    for atype, value in attrs(payload, _align(start), order):
        if atype == NLMSGERR_ATTR_MSG:
            ack.message = value.rstrip(b"\0").decode("utf-8", "replace") or None
        elif atype == NLMSGERR_ATTR_OFFS and len(value) == 4:
            ack.offset = struct.unpack(order + "I", value)[0]
        elif atype == NLMSGERR_ATTR_MISS_TYPE and len(value) == 4:
            ack.missing = struct.unpack(order + "I", value)[0]


_INDEX: dict[object, dict[str, tuple[int, str]]] = {}


def _index(space: object) -> dict[str, tuple[int, str]]:
    index = _INDEX.get(space)
    if index is None:
        index = {}
        for i, entry in enumerate(space.nla_map):  # type: ignore[attr-defined]
            index[entry[0]] = (i, entry[1])
        _INDEX[space] = index
    return index


def encode_attrs(space: object, values: list[tuple[str, Any]],
                 order: str = NATIVE) -> bytes:
    """pyroute2-style ``[(name, value)]`` as attributes of ``space``.

    Kinds: uint8/16/32/64, asciiz, ip4addr/ip6addr (an address as text),
    cdata (bytes as they are), flag (no payload), or a nested space (value ``{"attrs": [...]}``).
    """
    out = bytearray()
    index = _index(space)
    for name, value in values:
        atype, kind = index[name]
        if kind in _SCALARS:
            payload = struct.pack(order + _SCALARS[kind], value)
        elif kind == "asciiz":
            payload = value.encode() + b"\0"
        elif kind == "ip4addr":
            payload = ip4_packed(value)
        elif kind == "ip6addr":
            payload = ip6_packed(value)
        elif kind == "cdata":
            payload = bytes(value)
        elif kind == "flag":
            payload = b""
        else:
            nested = getattr(space, kind)
            payload = encode_attrs(nested, value["attrs"], order)
            atype |= nested.nla_flags
        out += attr(atype, payload, order)
    return bytes(out)


def decode_attrs(space: object, buf: bytes, off: int = 0,
                 order: str = NATIVE) -> dict[str, Any]:
    """The inverse of encode_attrs: ``{name: value}`` of the attributes of
    ``space`` in ``buf[off:]`` (a nested space gives a dict; unknown types
    and kinds ``none``/``cdata`` are left out; a repeated name keeps the
    last).  Short payloads raise NetlinkFormatError."""
    out: dict[str, Any] = {}
    entries = space.nla_map  # type: ignore[attr-defined]
    for atype, payload in attrs(buf, off, order):
        atype &= NLA_TYPE_MASK
        if atype >= len(entries):
            continue
        name, kind = entries[atype][0], entries[atype][1]
        if kind in ("none", "cdata"):
            continue
        if kind not in _SCALARS and kind not in ("asciiz", "ip4addr", "ip6addr", "flag"):
            out[name] = decode_attrs(getattr(space, kind), payload, 0, order)
            continue
        try:
            if kind in _SCALARS:
                value: Any = struct.unpack(order + _SCALARS[kind], payload)[0]
            elif kind == "asciiz":
                value = bytes(payload).split(b"\0", 1)[0].decode()
            elif kind == "flag":
                value = True
            else:
                value = ip_text(bytes(payload))
        except _UNPACK_ERRORS:
            raise NetlinkFormatError(name + ": payload of " + str(len(payload))
                                     + " bytes") from None
        out[name] = value
    return out


def ip4_packed(text: str) -> bytes:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bytes(int(p) for p in parts)


def ip6_packed(text: str) -> bytes:
    """RFC 4291 text (with "::" and a trailing dotted quad) as 16 bytes."""
    if text.count("::") > 1:
        raise ValueError(f"not an IPv6 address: {text!r}")
    head, sep, tail = text.partition("::")

    def groups(part: str) -> list[int]:
        if not part:
            return []
        out = []
        items = part.split(":")
        for i, g in enumerate(items):
            if "." in g and i == len(items) - 1:
                try:
                    v4 = ip4_packed(g)
                except ValueError:
                    raise ValueError(f"not an IPv6 address: {text!r}") from None
                out += [v4[0] << 8 | v4[1], v4[2] << 8 | v4[3]]
            elif 1 <= len(g) <= 4 and all(c in "0123456789abcdefABCDEF" for c in g):
                out.append(int(g, 16))
            else:
                raise ValueError(f"not an IPv6 address: {text!r}")
        return out

    first, last = groups(head), groups(tail)
    missing = 8 - len(first) - len(last)
    if (missing < 1 if sep else missing != 0):
        raise ValueError(f"not an IPv6 address: {text!r}")
    return b"".join(struct.pack(">H", g) for g in first + [0] * missing + last)


def ip_text(packed: bytes) -> str:
    """4 or 16 bytes as an address in its canonical text (RFC 5952 for IPv6)."""
    if len(packed) == 4:
        return ".".join(str(b) for b in packed)
    if len(packed) != 16:
        raise ValueError(f"an address is 4 or 16 bytes, not {len(packed)}")
    groups = [packed[i] << 8 | packed[i + 1] for i in range(0, 16, 2)]
    if groups[:5] == [0] * 5 and groups[5] == 0xFFFF:  # IPv4-mapped
        return "::ffff:" + ip_text(packed[12:])
    best, start = (0, 0), -1
    for i in range(9):
        if i < 8 and groups[i] == 0:
            if start < 0:
                start = i
        elif start >= 0:
            if i - start > best[1] - best[0] and i - start > 1:
                best = (start, i)
            start = -1
    text = [f"{g:x}" for g in groups]
    if best[1] > best[0]:
        return ":".join(text[:best[0]]) + "::" + ":".join(text[best[1]:])
    return ":".join(text)
