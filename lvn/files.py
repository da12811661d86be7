"""Writing a file so that a crash leaves the old content or the new, never half.
(Used on MicroPython too, by lvn.static on the node.)"""

import binascii
import os

TYPE_CHECKING = False  # mypy reads it as true (MicroPython has no typing)

if TYPE_CHECKING:
    from pathlib import Path


def makedirs(path: str) -> None:
    """``mkdir -p``: os.makedirs on CPython, by hand on MicroPython, whose os
    has only mkdir (on OpenWrt /var/lib does not exist until made)."""
    if hasattr(os, "makedirs"):
        os.makedirs(path, exist_ok=True)
        return
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts)):
        try:
            os.mkdir("/" * path.startswith("/") + "/".join(parts[:i + 1]))
        except OSError as e:
            if e.errno != 17:  # EEXIST
                raise


def write_atomic(path: "str | Path", data: bytes, mode: int = 0o644) -> None:
    """Write a new temporary file beside ``path`` (a random name, created
    exclusively and never through a symlink, its mode set before a byte is
    written), fsync it, rename it over ``path``, fsync the directory.  A
    crash leaves the old content or the new; a failure removes the
    temporary file, and a later write the ones a killed writer left.
    (MicroPython has no os.open or fsync: there it writes a randomly named
    file and renames it.)"""
    path = str(path)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    makedirs(parent or "/")
    tmp = path + "." + binascii.hexlify(os.urandom(6)).decode() + ".tmp"
    if not hasattr(os, "open"):
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
        _remove_leftovers(parent or "/", path.rsplit("/", 1)[-1])
        return
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have narrowed it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dirfd = os.open(parent or "/", os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
    _remove_leftovers(parent or "/", path.rsplit("/", 1)[-1])


def _remove_leftovers(parent: str, name: str) -> None:
    """Temporary files of ``name`` that a killed writer left (each write has
    a file of its own name: they would pile up).  One writer per file."""
    for entry in os.listdir(parent):
        middle = entry[len(name) + 1:-4]
        if entry.startswith(name + ".") and entry.endswith(".tmp") and len(middle) == 12 \
                and all(c in "0123456789abcdef" for c in middle):
            try:
                os.remove(parent + "/" + entry)
            except OSError:
                pass


def check_private_dir(path: str) -> None:
    """Refuse a state directory another user could change (on OpenWrt
    /var/lib is tmpfs: whoever makes the directory first owns it): it
    must belong to this user or root and not be group- or world-writable.
    Creates it (0700) if missing.  Raises ValueError naming the problem."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if (st.st_mode & 0o170000) != 0o040000:
        raise ValueError(path + " is not a directory (a symlink or file is refused)")
    if st.st_uid not in (0, os.geteuid()):
        raise ValueError(path + " belongs to uid " + str(st.st_uid) + ", not root")
    if st.st_mode & 0o022:
        raise ValueError(path + " is writable by group or others (mode "
                         + oct(st.st_mode & 0o777) + "): chmod go-w " + path)
