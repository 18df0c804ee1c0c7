"""One atomic write for every store: overwrite or refuse, owner-only or not, never a half-written file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tclearn.fsutil import atomic_write


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_it_replaces_a_file_and_leaves_no_temporary_behind(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "f.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


def test_owner_only_files_are_0600_from_the_start(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    atomic_write(target, b"secret", owner_only=True)
    assert _mode(target) == 0o600


def test_other_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "report.json", b"{}")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "report.json") == 0o640


def test_exclusive_refuses_to_replace_and_keeps_the_old_bytes(tmp_path: Path) -> None:
    target = tmp_path / "ca.key"
    atomic_write(target, b"first", owner_only=True, exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write(target, b"second", owner_only=True, exclusive=True)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key"]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "snapshot"
    atomic_write(target, b"old")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError):
        atomic_write(target, b"new" * 1000)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snapshot"]
