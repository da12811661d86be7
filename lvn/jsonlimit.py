"""JSON from a peer, with its nesting bounded (pure, both interpreters).

A 4 KiB frame holds 2,000 nested brackets: enough to raise RecursionError
in CPython's json (past every handler that expects ValueError) and to
exhaust a MicroPython heap.  ``loads`` refuses a text nested deeper than
``max_depth`` with ValueError, before parsing it.
"""

import json

MAX_DEPTH = 16


def depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (brackets in strings do not count)."""
    deepest = level = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            level += 1
            if level > deepest:
                deepest = level
        elif c in "]}":
            level -= 1
    return deepest


def loads(text: "str | bytes", max_depth: int = MAX_DEPTH) -> object:
    """``json.loads``, but ValueError for a text nested deeper than ``max_depth``."""
    if isinstance(text, bytes):
        text = text.decode()
    if depth(text) > max_depth:
        raise ValueError("JSON nested deeper than " + str(max_depth) + " levels")
    return json.loads(text)
