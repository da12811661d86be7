"""Control protocol codec and authenticated datagrams (pure core)."""

from __future__ import annotations

import hmac
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lvn import datagram, protocol

CHECKS_DIR = Path(__file__).resolve().parents[1] / "protocol"
sys.path.insert(0, str(CHECKS_DIR))  # their runner, checks.py


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, CHECKS_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the pure core's self-checks, and the client policy's against a server session
SUITES = [_load("check_core"), _load("check_client")]


@pytest.mark.parametrize("fn", [fn for suite in SUITES for fn in suite.CHECKS],
                         ids=lambda f: f.__name__)
def test_core_check(fn: object) -> None:
    assert fn()  # type: ignore[operator]


@pytest.mark.parametrize("suite", SUITES, ids=lambda m: m.__name__)
def test_core_checks_under_micropython(micropython: str, suite: ModuleType) -> None:
    """The same checks on MicroPython: the core really imports nothing CPython-only."""
    res = subprocess.run([micropython, suite.__file__], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{suite.SUITE.title}: {len(suite.CHECKS)} passed, 0 failed" in res.stdout


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_the_standard_library(key: bytes, msg: bytes) -> None:
    assert datagram.hmac_sha256(key, msg) == hmac.new(key, msg, "sha256").digest()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)

MESSAGES = st.one_of(
    st.builds(lambda w, x: (protocol.HELLO, {"want": w, **x}),
              st.lists(st.sampled_from(["ipv4", "ipv6"])), st.dictionaries(
                  st.sampled_from(["name", "version", "x"]), JSON, max_size=2)),
    st.builds(lambda s, p, m, k, key: (protocol.LEASE, {"session": s, "key": key,
                                                        "data_port": p, "mtu": m,
                                                        "keepalive": k}),
              st.text(max_size=16), st.integers(0, 65535), st.integers(576, 9000),
              st.integers(1, 3600), st.binary(min_size=32, max_size=32).map(bytes.hex)),
    st.builds(lambda a, p: (protocol.ENDPOINT, {"address": a, "port": p}),
              st.text(max_size=40), st.integers(0, 65535)),
    st.just((protocol.READY, {})), st.just((protocol.BYE, {})),
    st.builds(lambda c, t: (protocol.ERROR, {"code": c, "text": t}), st.text(max_size=10),
              st.text(max_size=60)))


@given(st.lists(MESSAGES, max_size=6), st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_stream_round_trip_in_any_chunking(msgs: list[tuple[int, dict[str, object]]],
                                           cuts: list[int]) -> None:
    stream = b"".join(protocol.encode(t, f) for t, f in msgs)
    framer, got, pos, i = protocol.Framer(), [], 0, 0
    while pos < len(stream):
        step = cuts[i % len(cuts)]
        got += framer.feed(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    assert got == msgs and framer.pending() == 0


@given(st.binary(max_size=300))
def test_garbage_gives_messages_or_protocol_error_only(data: bytes) -> None:
    try:
        for mtype, body in protocol.Framer().feed(data):
            protocol.check(mtype, body)
    except protocol.ProtocolError:
        pass


def test_oversized_message_refused_before_it_arrives() -> None:
    header = bytes([protocol.VERSION, protocol.HELLO]) + (protocol.MAX_PAYLOAD + 1).to_bytes(2,
                                                                                            "big")
    with pytest.raises(protocol.ProtocolError, match="exceeds the limit"):
        protocol.Framer().feed(header)  # the payload never needs to be buffered
    with pytest.raises(protocol.ProtocolError, match="too large"):
        protocol.encode(protocol.ERROR, {"code": "x", "text": "y" * 5000})


@given(st.sampled_from(datagram.TYPES), st.binary(min_size=8, max_size=8),
       st.integers(1, 2**64 - 1), st.binary(min_size=32, max_size=32),
       st.integers(0, 36), st.integers(1, 255))
def test_any_changed_byte_breaks_the_datagram(mtype: int, session: bytes, counter: int,
                                              key: bytes, pos: int, flip: int) -> None:
    d = datagram.seal(mtype, session, counter, key)
    assert datagram.open_(d, key, counter - 1) == (mtype, counter)
    bad = d[:pos] + bytes([d[pos] ^ flip]) + d[pos + 1:]
    with pytest.raises(datagram.DatagramError):
        datagram.open_(bad, key, counter - 1)
