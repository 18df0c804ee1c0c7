"""The PKI directory: permissions, passphrases, refusals to overwrite."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tclearn.errors import TransportError
from tclearn.pki import (
    AlreadyExistsError,
    BadPassphraseError,
    CANotFoundError,
    KeyFileError,
    MemberNotFoundError,
    init_ca,
    issue_member,
    list_members,
    load_ca,
    load_private_key,
    member_files,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_are_owner_only(tmp_path: Path) -> None:
    init_ca(tmp_path / "pki")
    files = issue_member(tmp_path / "pki", "alice")
    assert _mode(tmp_path / "pki" / "ca.key") == 0o600
    assert _mode(files.key) == 0o600
    assert _mode(tmp_path / "pki") == 0o700
    assert files.cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_errors_are_transport_errors(tmp_path: Path) -> None:
    with pytest.raises(TransportError):
        issue_member(tmp_path, "alice")


def test_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(CANotFoundError, match="pki init"):
        issue_member(tmp_path, "alice")
    assert not (tmp_path / "members" / "alice.key").exists()


def test_existing_ca_and_member_are_not_overwritten(tmp_path: Path) -> None:
    init_ca(tmp_path)
    ca_key = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(AlreadyExistsError):
        init_ca(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == ca_key
    first = issue_member(tmp_path, "alice")
    with pytest.raises(AlreadyExistsError):
        issue_member(tmp_path, "alice")
    assert member_files(tmp_path, "alice") == first


def test_encrypted_ca_needs_the_right_passphrase(tmp_path: Path) -> None:
    init_ca(tmp_path, passphrase=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "ca.key").read_bytes()
    with pytest.raises(BadPassphraseError, match="passphrase is needed"):
        issue_member(tmp_path, "alice")
    with pytest.raises(BadPassphraseError, match="wrong passphrase"):
        issue_member(tmp_path, "alice", ca_passphrase=b"battery staple")
    issue_member(tmp_path, "alice", ca_passphrase=b"correct horse")
    load_ca(tmp_path, b"correct horse")


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    init_ca(tmp_path)
    os.chmod(tmp_path / "ca.key", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_private_key(tmp_path / "ca.key")
    with pytest.raises(KeyFileError):
        issue_member(tmp_path, "alice")


def test_member_files_and_list(tmp_path: Path) -> None:
    init_ca(tmp_path)
    with pytest.raises(MemberNotFoundError):
        member_files(tmp_path, "bob")
    bob, alice = issue_member(tmp_path, "bob"), issue_member(tmp_path, "alice")
    assert list_members(tmp_path) == [alice, bob]
    assert alice.fingerprint != bob.fingerprint
