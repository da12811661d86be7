"""The UCI file format (/etc/config/*): parser, ``uci show`` and export.

Pure and MicroPython-friendly: no imports, no ``__future__``, no
``dataclasses``; annotations are never evaluated by MicroPython and are
valid at run time on CPython >= 3.10.  The rules follow libuci's file
parser (file.c) in strict mode; docs/config.md states them.
"""


class UciError(Exception):
    """A parse error; ``str()`` reads like uci's own message."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"Parse error ({reason}) at line {line}, column {column}")
        self.reason = reason
        self.line = line
        self.column = column


class Section:
    """One ``config TYPE ['NAME']`` block.  ``name`` is None if anonymous.

    Options are strings (``option``) or lists of strings (``list``), kept
    in the order they first appeared (an explicit list: MicroPython's dict
    does not keep order across deletions).
    """

    def __init__(self, type_: str, name: str | None = None) -> None:
        self.type = type_
        self.name = name
        self._items: list[tuple[str, str | list[str]]] = []

    def items(self) -> list[tuple[str, str | list[str]]]:
        return list(self._items)

    def _index(self, option: str) -> int:
        for i, (name, _) in enumerate(self._items):
            if name == option:
                return i
        return -1

    def value(self, option: str) -> str | list[str] | None:
        i = self._index(option)
        return self._items[i][1] if i >= 0 else None

    def get(self, option: str, default: str | None = None) -> str | None:
        """An option as a string (a list is joined with spaces)."""
        value = self.value(option)
        if value is None:
            return default
        if isinstance(value, list):
            return " ".join(value)
        return value

    def get_list(self, option: str) -> list[str]:
        """The items of a list; an ``option`` counts as a one-item list."""
        value = self.value(option)
        if value is None:
            return []
        if isinstance(value, list):
            return list(value)
        return [value]

    def set(self, option: str, value: str | list[str]) -> None:
        """Set in place, or append a new option at the end."""
        i = self._index(option)
        if i >= 0:
            self._items[i] = (option, value)
        else:
            self._items.append((option, value))

    def delete(self, option: str) -> None:
        i = self._index(option)
        if i >= 0:
            del self._items[i]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Section) and self.type == other.type
                and self.name == other.name and self._items == other._items)

    def __repr__(self) -> str:
        return f"Section({self.type!r}, {self.name!r}, {self._items!r})"


class Package:
    """A parsed config file: its sections in file order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sections: list[Section] = []

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def of_type(self, type_: str) -> list[Section]:
        return [s for s in self.sections if s.type == type_]

    def ref(self, section: Section) -> str:
        """How ``uci show`` names a section: ``pkg.name`` or ``pkg.@type[i]``."""
        if section.name is not None:
            return f"{self.name}.{section.name}"
        i = 0
        for s in self.sections:
            if s is section:
                break
            if s.type == section.type:
                i += 1
        return f"{self.name}.@{section.type}[{i}]"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Package) and self.name == other.name
                and self.sections == other.sections)


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NAME_CHARS = _ALNUM + "_"
_PACKAGE_CHARS = _NAME_CHARS + "-"
_SPACE = " \t\r\f\v"
_KEYWORDS = {"package": "package", "p": "package", "config": "config", "c": "config",
             "option": "option", "o": "option", "list": "list", "l": "list"}


def valid_name(text: str) -> bool:
    """Section and option names: letters, digits and ``_`` (shell-safe)."""
    return bool(text) and all(c in _NAME_CHARS for c in text)


def valid_type(text: str) -> bool:
    """Section types: any printable ASCII except space."""
    return bool(text) and all(33 <= ord(c) <= 126 for c in text)


def _valid_package(text: str) -> bool:
    return bool(text) and all(c in _PACKAGE_CHARS for c in text)


class _Token:
    def __init__(self, text: str, quoted: bool, line: int, column: int) -> None:
        self.text = text
        self.quoted = quoted
        self.line = line
        self.column = column


class _Lexer:
    """Splits the text into commands (lists of tokens)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.line_start = 0

    def _where(self) -> tuple[int, int]:
        return self.line, self.pos - self.line_start + 1

    def _newline(self) -> None:
        self.pos += 1
        self.line += 1
        self.line_start = self.pos

    def _continuation(self) -> bool:
        """Consume backslash-newline (a line continuation) if it is next."""
        t = self.text
        if t.startswith("\\\n", self.pos):
            self.pos += 1
            self._newline()
            return True
        if t.startswith("\\\r\n", self.pos):
            self.pos += 2
            self._newline()
            return True
        return False

    def _quoted(self, out: list[str], quote: str) -> None:
        line, column = self._where()
        t = self.text
        self.pos += 1
        while True:
            if self.pos >= len(t):
                raise UciError("EOF with unterminated " + quote, line, column)
            c = t[self.pos]
            if c == quote:
                self.pos += 1
                return
            if c == "\n":
                out.append(c)
                self._newline()
                continue
            if c == "\\" and quote == '"':
                if self._continuation():
                    continue
                if self.pos + 1 < len(t):
                    self.pos += 1
                    c = t[self.pos]
            out.append(c)
            self.pos += 1

    def command(self) -> list[_Token] | None:
        """The next command's tokens; None at the end of the text."""
        t = self.text
        tokens: list[_Token] = []
        while True:
            # between tokens
            while self.pos < len(t):
                if t[self.pos] in _SPACE:
                    self.pos += 1
                elif not self._continuation():
                    break
            if self.pos >= len(t):
                return tokens if tokens else None
            c = t[self.pos]
            if c == "\n":
                self._newline()
                if tokens:
                    return tokens
                continue
            if c == ";":
                self.pos += 1
                if tokens:
                    return tokens
                continue
            if c == "#":
                while self.pos < len(t) and t[self.pos] != "\n":
                    self.pos += 1
                continue
            tokens.append(self._token())

    def _token(self) -> _Token:
        t = self.text
        line, column = self._where()
        out: list[str] = []
        quoted = False
        while self.pos < len(t):
            c = t[self.pos]
            if c in _SPACE or c == "\n" or c == ";":
                break
            if c == "#":
                # a comment ends the token and the rest of the line
                while self.pos < len(t) and t[self.pos] != "\n":
                    self.pos += 1
                break
            if c == "'" or c == '"':
                quoted = True
                self._quoted(out, c)
                continue
            if c == "\\":
                if self._continuation():
                    continue
                if self.pos + 1 < len(t) and t[self.pos + 1] != "\n":
                    self.pos += 1
                    c = t[self.pos]
            out.append(c)
            self.pos += 1
        return _Token("".join(out), quoted, line, column)


def parse(text: str, package: str = "lvn") -> Package:
    """Parse the text of a UCI file; raises :class:`UciError`."""
    lexer = _Lexer(text)
    pkg = Package(package)
    current: Section | None = None
    while True:
        tokens = lexer.command()
        if tokens is None:
            return pkg
        head = tokens[0]
        keyword = None if head.quoted else _KEYWORDS.get(head.text)
        if keyword is None:
            raise UciError("invalid command", head.line, head.column)
        args = tokens[1:]
        if keyword == "package":
            _expect(args, 1, head, "package without name")
            if not _valid_package(args[0].text):
                raise UciError("invalid character in name field", args[0].line, args[0].column)
        elif keyword == "config":
            current = _config(pkg, args, head)
        else:
            if current is None:
                raise UciError("option/list command found before the first section",
                               head.line, head.column)
            _option(current, args, head, keyword == "list")


def _expect(args: list[_Token], most: int, head: _Token, missing: str) -> None:
    if not args or not args[0].text:
        where = args[0] if args else head
        raise UciError(missing if not args else "insufficient arguments",
                       where.line, where.column)
    if len(args) > most:
        raise UciError("too many arguments", args[most].line, args[most].column)


def _config(pkg: Package, args: list[_Token], head: _Token) -> Section:
    _expect(args, 2, head, "insufficient arguments")
    type_ = args[0].text
    if not valid_type(type_):
        raise UciError("invalid character in type field", args[0].line, args[0].column)
    name = args[1].text if len(args) > 1 and args[1].text else None
    if name is None:
        section = Section(type_)
        pkg.sections.append(section)
        return section
    if not valid_name(name):
        raise UciError("invalid character in name field", args[1].line, args[1].column)
    existing = pkg.section(name)
    if existing is not None:
        if existing.type != type_:
            raise UciError("section of different type overwrites prior section with same name",
                           args[1].line, args[1].column)
        return existing
    section = Section(type_, name)
    pkg.sections.append(section)
    return section


def _option(section: Section, args: list[_Token], head: _Token, is_list: bool) -> None:
    _expect(args, 2, head, "insufficient arguments")
    name = args[0].text
    if not valid_name(name):
        raise UciError("invalid character in name field", args[0].line, args[0].column)
    value = args[1].text if len(args) > 1 else ""
    old = section.value(name)
    if is_list:
        if isinstance(old, list):
            old.append(value)
        else:
            # like libuci, a string turned into a list moves to the end
            section.delete(name)
            section.set(name, [old, value] if old is not None else [value])
    elif not value:
        section.delete(name)  # an empty option deletes it
    else:
        section.set(name, value)


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
