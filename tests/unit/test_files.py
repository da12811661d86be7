"""write_atomic: mode from creation, old content survives a failed rename."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lvn.files import write_atomic


def test_mode_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f"
    write_atomic(path, b"one", 0o600)
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o600
    write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failed_rename_keeps_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f"
    write_atomic(path, b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
