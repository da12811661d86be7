"""UCI parser: the hand-written corpus (also under MicroPython) and round trips."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lvn import uci, uciwrite

UCI_DIR = Path(__file__).resolve().parents[1] / "uci"
CORPUS = UCI_DIR / "corpus"

_spec = importlib.util.spec_from_file_location("check_corpus", UCI_DIR / "check_corpus.py")
assert _spec and _spec.loader
check_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_corpus)

CASES = check_corpus.cases(str(CORPUS))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert sum((CORPUS / f"{c}.error").exists() for c in CASES) >= 10


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name: str) -> None:
    assert check_corpus.run_case(str(CORPUS), name) is None


def test_corpus_under_micropython(micropython: str) -> None:
    """lvn/uci.py must really run on MicroPython: the same corpus, its interpreter."""
    res = subprocess.run([micropython, str(UCI_DIR / "check_corpus.py")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"uci corpus: {len(CASES)} passed, 0 failed" in res.stdout


def test_error_carries_position() -> None:
    with pytest.raises(uci.UciError) as e:
        uci.parse("config s 'n'\n\n\toption a 'x' 'y'\n")
    assert (e.value.reason, e.value.line, e.value.byte) == ("too many arguments", 3, 18)


def test_section_accessors() -> None:
    pkg = uci.parse("config t 'a'\n\toption o '1'\n\tlist l 'x'\n\tlist l 'y'\nconfig t\n")
    a = pkg.section("a")
    assert a is not None
    assert a.get("o") == "1" and a.get("missing", "d") == "d"
    assert a.get_list("l") == ["x", "y"] and a.get_list("o") == ["1"]
    assert a.get("l") == "x y"
    assert pkg.ref(pkg.of_type("t")[1]) == "lvn.@t[1]"


NAMES = st.text(alphabet="abcxyz_019", min_size=1, max_size=6)
TYPES = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                max_size=8)
VALUES = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                        blacklist_characters="\x00\r"), max_size=12)


@st.composite
def packages(draw: st.DrawFn) -> uci.Package:
    pkg = uci.Package("lvn")
    used: set[str] = set()
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.none(), NAMES))
        if name in used:
            name = None
        if name is not None:
            used.add(name)
        s = uci.Section(draw(TYPES), name)
        for opt in draw(st.lists(NAMES, max_size=4, unique=True)):
            if draw(st.booleans()):
                s.set(opt, draw(st.lists(VALUES, min_size=1, max_size=3)))
            else:
                s.set(opt, draw(VALUES.filter(bool)))
        pkg.sections.append(s)
    return pkg


@given(packages())
def test_export_then_parse_round_trips(pkg: uci.Package) -> None:
    again = uci.parse(uciwrite.export(pkg), "lvn")
    assert again == pkg
    assert uciwrite.show(again) == uciwrite.show(pkg)


def test_nul_byte_is_refused_with_its_position() -> None:
    """uci would silently drop the rest of the line; lvn refuses the file."""
    with pytest.raises(uci.UciError) as e:
        uci.parse("config s 'n'\n\toption a 'x\0y'\n")
    assert (e.value.reason, e.value.line, e.value.byte) == ("NUL byte", 2, 12)
    assert str(e.value) == "Parse error (NUL byte) at line 2, byte 12"
