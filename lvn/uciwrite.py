"""The UCI file format written: ``uci show``'s lines and ``uci export``'s
file (lvn/uci.py parses it).  Pure, like the parser, but not shipped on
the node, which only reads its configuration.
"""

from .uci import Package


def quote(value: str) -> str:
    """Single-quote a value the way uci prints it (``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


def show(pkg: Package) -> list[str]:
    """The lines ``uci show PACKAGE`` prints for this package."""
    lines = []
    for s in pkg.sections:
        ref = pkg.ref(s)
        lines.append(f"{ref}={s.type}")
        for name, value in s.items():
            if isinstance(value, list):
                text = " ".join(quote(v) for v in value)
            else:
                text = quote(value)
            lines.append(f"{ref}.{name}={text}")
    return lines


def export(pkg: Package) -> str:
    """The package in the UCI file format (what ``uci export`` writes)."""
    out = [f"package {pkg.name}\n"]
    for s in pkg.sections:
        out.append(f"\nconfig {quote(s.type)}" + (f" {quote(s.name)}" if s.name else "") + "\n")
        for name, value in s.items():
            if isinstance(value, list):
                for item in value:
                    out.append(f"\tlist {name} {quote(item)}\n")
            else:
                out.append(f"\toption {name} {quote(value)}\n")
    out.append("\n")
    return "".join(out)
