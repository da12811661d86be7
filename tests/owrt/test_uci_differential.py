"""lvn/uci.py against OpenWrt's real ``uci`` CLI: the real one is the spec.

Hypothesis writes UCI files out of the pieces that make parsers disagree
(quotes of both kinds, backslashes, line continuations, CRLF, semicolons,
comments, empty values, option/list conversions, duplicate and anonymous
sections, odd names, ``package`` lines) and both must agree on every
``uci show`` line, the exit status and the error line.  NUL bytes are left
out: C's uci stops reading a line at one, lvn.uci refuses the file
(docs/config.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvn import uci, uciwrite

EXAMPLES = int(os.environ.get("LVN_UCI_EXAMPLES", "10000"))

KEYWORDS = ["config", "c", "option", "o", "list", "l", "package", "p", "conf", "optionx",
            "'option'", "#config"]
NAMES = ["a", "b", "lan", "x_1", "t", "lvn", "1", "a-b", "a.b", "é", "", "''", '""',
         "'a b'", '"a\\"b"', "a\\ b", "'it'\\''s'", "\"x'y\"", "a#b", "a;b", "'a;b'",
         "\\x", "'\\'", '"\\\\"', "\x01", "\x7f", "'multi\nline'", '"multi\\\nline"']
SEPARATORS = [" ", "\t", "  ", " \t", "\\\n", "\\\r\n", "\r", "\x0b", "\x0c"]
ENDINGS = ["\n", "\r\n", ";", "; ", " ;", " ; ", "\n\n", " # comment\n", "#\n", "\\\n",
           "\t\n", ""]


@st.composite
def uci_files(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        words = [draw(st.sampled_from(KEYWORDS))]
        words += [draw(st.one_of(st.sampled_from(NAMES),
                                 st.text(alphabet="ab_-'\"\\ ;#\t\r\n.é\x01", max_size=6)))
                  for _ in range(draw(st.integers(0, 3)))]
        text = draw(st.sampled_from(["", " ", "\t"])) + words[0]
        for w in words[1:]:
            text += draw(st.sampled_from(SEPARATORS)) + w
        lines.append(text + draw(st.sampled_from(ENDINGS)))
    # a valid prefix most of the time, so the interesting part is reached
    head = draw(st.sampled_from(["", "config t 'a'\n", "package t\n\nconfig s\n",
                                 "config t a\n\toption x 1\n\tlist y 2\n"]))
    return head + "".join(lines)


def real_uci(owrt: Path, confdir: Path, text: str) -> tuple[int, str, str]:
    (confdir / "t").write_bytes(text.encode())
    res = subprocess.run(["uci", "-c", str(confdir), "show", "t"], capture_output=True,
                         executable=str(owrt / "bin" / "uci"), timeout=30)
    return res.returncode, res.stdout.decode(errors="replace"), \
        res.stderr.decode(errors="replace")


def ours(text: str) -> tuple[int, str, str]:
    try:
        pkg = uci.parse(text, "t")
    except uci.UciError as e:
        return 1, "", f"uci: {e}\n"
    return 0, "".join(line + "\n" for line in uciwrite.show(pkg)), ""


@pytest.fixture(scope="module")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uci")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=uci_files())
def test_parser_agrees_with_real_uci(owrt: Path, confdir: Path, text: str) -> None:
    assert ours(text) == real_uci(owrt, confdir, text), repr(text)


def test_files_written_by_lvn_read_back_identically(owrt: Path, tmp_path: Path) -> None:
    """What tunnel_add/tunnel_del write (lvn.uciwrite.export) is what real uci reads."""
    pkg = uci.Package("t")
    s = uci.Section("tunnel", "it_s")
    s.set("remote", "a b 'c' \"d\" \\e ;#f\ng\r\th")
    s.set("list", ["x", "y z", "'"])
    pkg.sections += [s, uci.Section("agent")]
    text = uciwrite.export(pkg)
    code, out, err = real_uci(owrt, tmp_path, text)
    assert (code, err) == (0, "")
    assert out == "".join(line + "\n" for line in uciwrite.show(pkg))
    assert uci.parse(text, "t") == pkg
