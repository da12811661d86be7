"""Check lvn.uci against the hand-written corpus (CPython and MicroPython).

For every corpus/NAME.uci the expected result is NAME.show (the lines of
``uci show t``) or NAME.error (the parse error message).  Usage:
    micropython tests/uci/check_corpus.py [CORPUS_DIR]
Prints one line per failing case and "uci corpus: N passed, M failed".
Exit status 0 only if every case passed and at least one ran.
"""

import os
import sys

HERE = sys.argv[0].rsplit("/", 1)[0] if "/" in sys.argv[0] else "."
sys.path.insert(0, HERE + "/../..")

from lvn import uci, uciwrite  # noqa: E402


def read(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def run_case(corpus: str, name: str) -> str | None:
    """None if the case passed, else what went wrong."""
    text = read(corpus + "/" + name + ".uci")
    files = os.listdir(corpus)
    try:
        got = "".join(line + "\n" for line in uciwrite.show(uci.parse(text, "t")))
        got_error = None
    except uci.UciError as e:
        got, got_error = "", str(e) + "\n"
    if name + ".error" in files:
        want = read(corpus + "/" + name + ".error")
        if got_error != want:
            return f"expected error {want!r}, got {got_error or got!r}"
        return None
    want = read(corpus + "/" + name + ".show")
    if got_error is not None:
        return f"unexpected error {got_error!r}"
    if got != want:
        return f"expected {want!r}, got {got!r}"
    return None


def cases(corpus: str) -> list[str]:
    return sorted(f[:-4] for f in os.listdir(corpus) if f.endswith(".uci"))


def main() -> int:
    corpus = sys.argv[1] if len(sys.argv) > 1 else HERE + "/corpus"
    passed = failed = 0
    for name in cases(corpus):
        problem = run_case(corpus, name)
        if problem is None:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {name}: {problem}")
    print(f"uci corpus: {passed} passed, {failed} failed")
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
