"""Writing a file so that a crash leaves the old content or the new, never half.
(Used on MicroPython too, by lvn.static on the node.)"""

import os

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython
    TYPE_CHECKING = False  # type: ignore[misc]

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
    """Write a temporary file created with ``mode`` (no window with wider
    permissions), fsync it, rename it over ``path``, fsync the directory.
    (MicroPython has no os.open or fsync: there it writes and renames.)"""
    path = str(path)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    makedirs(parent or "/")
    tmp = path + ".tmp"
    if not hasattr(os, "open"):
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
        return
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    dirfd = os.open(parent or "/", os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)
