"""The UCI file format (/etc/config/*): the parser (lvn/uciwrite.py writes it).

Pure and MicroPython-friendly: no imports, no ``__future__``, no
``dataclasses``; annotations are never evaluated by MicroPython and are
valid at run time on CPython >= 3.10.  The rules follow libuci's file
parser (file.c) in strict mode; docs/config.md states them.
"""


class UciError(Exception):
    """A parse error; ``str()`` is uci's own message: the line as libuci
    counts it (lines read so far, the last one only if it ends in a
    newline) and the byte offset into the command's line buffer."""

    def __init__(self, reason: str, line: int, byte: int) -> None:
        super().__init__(f"Parse error ({reason}) at line {line}, byte {byte}")
        self.reason = reason
        self.line = line
        self.byte = byte


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


def _valid(text: str, name: bool, package: bool) -> bool:
    """libuci's uci_validate_str: letters, digits, ``_``; ``-`` in package
    names; any printable ASCII but space in types."""
    if not text:
        return False
    for c in text:
        if c in _NAME_CHARS or (c == "-" and package):
            continue
        if name or not 33 <= ord(c) <= 126:
            return False
    return True


def valid_name(text: str) -> bool:
    """Section and option names: letters, digits and ``_`` (shell-safe)."""
    return _valid(text, True, False)


def valid_type(text: str) -> bool:
    """Section types: any printable ASCII except space."""
    return _valid(text, False, False)


_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_SPACE = b" \t\n\v\f\r"  # C's isspace()
_BACKSLASH, _SQ, _DQ = 0x5C, 0x27, 0x22
_NL, _CR, _HASH, _SEMI = 0x0A, 0x0D, 0x23, 0x3B
# the command word, as libuci's uci_parse_line tells them apart
_COMMANDS = {b"p": "package", b"package": "package", b"c": "config", b"config": "config",
             b"o": "option", b"option": "option", b"l": "list", b"list": "list"}


class _Reader:
    """libuci's parse context (file.c): one command line in a buffer that
    the parser rewrites in place, read a line at a time (``uci_getln``);
    positions and line numbers are counted as libuci counts them, so errors
    name the same line and byte as ``uci`` does."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fpos = 0  # read position in data
        self.buf = bytearray()
        self.filled = 0  # libuci's buf_filled
        self.pos = 0
        self.line = 0

    def at(self, i: int) -> int:
        return self.buf[i] if i < len(self.buf) else 0

    def cur(self) -> int:
        return self.at(self.pos)

    def put(self, i: int, c: int) -> None:
        if i >= len(self.buf):
            self.buf.extend(bytes(i + 1 - len(self.buf)))
        self.buf[i] = c

    def string(self, i: int) -> bytes:
        """The C string at i (up to the next NUL)."""
        end = self.buf.find(b"\0", i)
        return bytes(self.buf[i:end if end >= 0 else len(self.buf)])

    def getln(self, offset: int) -> None:
        """fgets() into the buffer at offset; False-like at the end."""
        self.put(offset, 0)
        if self.fpos >= len(self.data):
            return
        nl = self.data.find(b"\n", self.fpos)
        end = len(self.data) if nl < 0 else nl + 1
        chunk = self.data[self.fpos:end]
        self.fpos = end
        for k, c in enumerate(chunk):
            self.put(offset + k, c)
        self.put(offset + len(chunk), 0)
        self.filled = offset + len(chunk)
        if chunk[-1] == _NL:
            self.line += 1

    def error(self, reason: str) -> UciError:
        return UciError(reason, self.line, self.pos)

    def skip_space(self) -> None:
        while self.cur() and self.cur() in _SPACE:
            self.pos += 1

    def addc(self, target: list[int]) -> None:
        self.put(target[0], self.cur())
        target[0] += 1
        self.pos += 1

    def backslash(self) -> bool:
        """Skip a backslash; False if it ended the line (continuation)."""
        self.pos += 1
        c = self.cur()
        if not c or c == _NL or (c == _CR and self.at(self.pos + 1) == _NL
                                 and not self.at(self.pos + 2)):
            self.getln(self.pos)
            return False
        return True

    def quoted(self, target: list[int], quote: int) -> None:
        self.pos += 1
        while True:
            c = self.cur()
            if c == quote:
                self.pos += 1
                return
            if not c:
                self.getln(self.pos)  # a value over several lines
                if not self.cur():
                    raise self.error("EOF with unterminated " + chr(quote))
                continue
            if c == _BACKSLASH and quote == _DQ and not self.backslash():
                continue
            self.addc(target)

    def word(self, target: list[int]) -> None:
        """libuci's parse_str: one argument, written in place at target."""
        more = True
        while True:
            c = self.cur()
            if c == _SQ or c == _DQ:
                self.quoted(target, c)
            elif c == _HASH:
                self.put(self.pos, 0)
                break
            elif not c:
                break
            elif c == _SEMI:
                more = False
                break
            elif c == _BACKSLASH and not self.backslash():
                pass
            else:
                self.addc(target)
            if not self.cur() or self.cur() in _SPACE:
                break
        if self.cur() and more:
            self.pos += 1
        self.put(target[0], 0)

    def arg(self, required: bool = False, name: bool = False, package: bool = False) -> str:
        """libuci's next_arg: the next argument ("" if there is none)."""
        self.skip_space()
        val = self.pos
        if self.cur() == _SEMI:
            self.put(self.pos, 0)
            self.pos += 1
        else:
            self.word([val])
        text = self.string(val).decode()
        if not text:
            if required:
                raise self.error("insufficient arguments")
        elif name and not _valid(text, True, package):
            raise self.error("invalid character in name field")
        return text

    def end(self) -> None:
        """libuci's assert_eol (strict mode)."""
        self.skip_space()
        if self.arg():
            raise self.error("too many arguments")

    def command(self) -> str | None:
        """strtok() the command word; the command, None at the end of the line."""
        i = self.pos
        while self.at(i) in (0x20, 0x09):
            i += 1
        if not self.at(i):
            return None
        j = i
        while self.at(j) and self.at(j) not in (0x20, 0x09):
            j += 1
        if self.at(j):
            self.put(j, 0)
        word = self.string(i)
        if word[:1] == b"#":
            return None
        command = _COMMANDS.get(word)
        if command is None:
            raise self.error("invalid command")
        return command

    def skip_command(self, command: str) -> None:
        """Past the command word and the NUL strtok() wrote after it."""
        skip = len(self.string(self.pos)) + 1
        if self.pos + skip > self.filled:
            raise self.error(("option" if command == "list" else command) + " without name")
        self.pos += skip


def parse(text: str, package: str = "lvn") -> Package:
    """Parse the text of a UCI file as ``uci`` (strict mode) reads it;
    raises :class:`UciError`.  A NUL byte is refused (uci would silently
    drop the rest of its line)."""
    data = text.encode()
    nul = data.find(b"\0")
    if nul >= 0:
        # the line and the offset in it, as uci counts a command's bytes
        raise UciError("NUL byte", data.count(b"\n", 0, nul) + 1,
                       nul - data.rfind(b"\n", 0, nul) - 1)
    r = _Reader(data)
    pkg = Package(package)
    current: Section | None = None
    while r.fpos < len(data):
        r.pos = 0
        r.getln(0)
        r.skip_space()
        while True:
            command = r.command()
            if command is None:
                break
            if command != "config" and command != "package" and current is None:
                raise r.error("option/list command found before the first section")
            r.skip_command(command)
            if command == "package":
                r.arg(True, True, True)  # `uci show` checks it, keeps the file's name
                r.end()
            elif command == "config":
                current = _config(pkg, r)
            elif current is not None:
                _option(current, r, command == "list")
    return pkg


def _config(pkg: Package, r: _Reader) -> Section:
    type_ = r.arg(True)
    if not valid_type(type_):
        raise r.error("invalid character in type field")
    name = r.arg(False, True)
    r.end()
    if not name:
        section = Section(type_)
        pkg.sections.append(section)
        return section
    existing = pkg.section(name)
    if existing is not None:
        if existing.type != type_:
            raise r.error("section of different type overwrites prior section with same name")
        return existing
    section = Section(type_, name)
    pkg.sections.append(section)
    return section


def _option(section: Section, r: _Reader, is_list: bool) -> None:
    name = r.arg(True, True)
    value = r.arg()
    r.end()
    old = section.value(name)
    if is_list:
        if isinstance(old, list):
            old.append(value)
        else:
            # an option becomes a list where it stands
            section.set(name, [old, value] if old is not None else [value])
    elif value:
        section.set(name, value)
    # an empty option value changes nothing (libuci's uci_set)
