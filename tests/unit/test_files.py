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


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    """The old fixed name path + ".tmp" let a local user plant a symlink and
    have root truncate (and chmod 0644) the file it points to."""
    victim = tmp_path / "shadow"
    victim.write_bytes(b"secret")
    victim.chmod(0o600)
    path = tmp_path / "status.json"
    (tmp_path / "status.json.tmp").symlink_to(victim)
    write_atomic(path, b"{}", 0o644)
    assert victim.read_bytes() == b"secret" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert path.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shadow", "status.json",
                                                          "status.json.tmp"]


def test_mode_is_set_even_under_a_narrow_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "f", b"x", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        write_atomic(tmp_path / "f", b"x")
    assert list(tmp_path.iterdir()) == []


def test_state_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    from lvn.files import check_private_dir
    check_private_dir(str(tmp_path / "new"))
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ValueError, match="writable by group or others"):
        check_private_dir(str(shared))
    (tmp_path / "link").symlink_to(tmp_path / "new")
    with pytest.raises(ValueError, match="not a directory"):
        check_private_dir(str(tmp_path / "link"))
    if os.geteuid() == 0:
        other = tmp_path / "other"
        other.mkdir()
        os.chown(other, 65534, 65534)
        with pytest.raises(ValueError, match="belongs to uid 65534"):
            check_private_dir(str(other))
