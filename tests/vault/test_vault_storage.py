"""Vault storage: AES-256-GCM at rest, wrapped data keys, authenticated metadata, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tclearn.ledger.encoding import sha256_hex
from tclearn.vault.errors import IntegrityError, ObjectNotFound, VaultError, VaultLockedError
from tclearn.vault.storage import MAGIC, Vault

from vault_helpers import PASS, SCRYPT_N


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.create(tmp_path / "v", PASS, SCRYPT_N)


def test_objects_round_trip_and_are_encrypted_at_rest(vault: Vault) -> None:
    data = b"model weights " * 1000
    info = vault.put(data, "model", {"height": 3})
    assert info.object_id == sha256_hex(data) and vault.has(info.object_id)
    raw = vault.path_of(info.object_id).read_bytes()
    assert b"model weights" not in raw and raw.startswith(MAGIC)
    assert oct(vault.path_of(info.object_id).stat().st_mode & 0o777) == "0o600"
    again = Vault.open(vault.root, PASS)
    got, meta = again.get(info.object_id)
    assert got == data and meta.meta == {"height": 3} and meta.kind == "model"


def test_chain_hash_as_id_and_put_is_idempotent(vault: Vault) -> None:
    model_hash = "ab" * 32  # the chain's canonical model hash, not the bytes' SHA-256
    vault.put(b"x", "model", object_id=model_hash)
    assert vault.put(b"x", "model", object_id=model_hash).object_id == model_hash
    with pytest.raises(IntegrityError):
        vault.put(b"other bytes", "model", object_id=model_hash)
    assert vault.get(model_hash)[0] == b"x" and vault.ids() == [model_hash]


def test_each_object_has_its_own_data_key(vault: Vault) -> None:
    a, b = vault.put(b"same" * 10, "model", object_id="01" * 32), vault.put(b"same" * 10, "model", object_id="02" * 32)
    ra, rb = (vault.path_of(i.object_id).read_bytes() for i in (a, b))
    assert ra[-40:] != rb[-40:]


def test_wrong_passphrase_and_missing_vault_are_refused(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(VaultLockedError):
        Vault.open(vault.root, b"wrong")
    with pytest.raises(VaultLockedError):
        Vault.open(tmp_path / "nowhere", PASS)
    with pytest.raises(VaultError):
        Vault.create(vault.root, PASS, SCRYPT_N)  # never replaces a key


def test_another_vaults_key_cannot_read(vault: Vault, tmp_path: Path) -> None:
    info = vault.put(b"secret", "model")
    other = Vault.create(tmp_path / "other", PASS, SCRYPT_N)
    (tmp_path / "other" / "objects" / info.object_id[:2]).mkdir()
    target = other.path_of(info.object_id)
    target.write_bytes(vault.path_of(info.object_id).read_bytes())
    with pytest.raises(IntegrityError):
        other.get(info.object_id)


@pytest.mark.parametrize("where", ["ciphertext", "metadata", "wrapped_key", "truncated", "magic"])
def test_tampered_objects_are_refused(vault: Vault, where: str) -> None:
    info = vault.put(b"weights" * 500, "model", {"height": 7})
    path = vault.path_of(info.object_id)
    raw = bytearray(path.read_bytes())
    if where == "ciphertext":
        raw[-100] ^= 1
    elif where == "metadata":  # the height 7 in the CBOR header becomes 6: metadata is authenticated
        i = raw.index(b"height") + len(b"height")
        raw[i] ^= 1
    elif where == "wrapped_key":
        i = raw.index(b"dek") + 6
        raw[i] ^= 1
    elif where == "truncated":
        raw = raw[:-10]
    else:
        raw[0] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        vault.get(info.object_id)


def test_unknown_and_malformed_ids(vault: Vault) -> None:
    with pytest.raises(ObjectNotFound):
        vault.get("cd" * 32)
    for bad in ("../../etc/passwd", "AB" * 32, "ab"):
        with pytest.raises(VaultError):
            vault.get(bad)


_WRITER = """
import os, sys, time
from pathlib import Path
from tclearn.vault.storage import Vault
v = Vault.open(Path(sys.argv[1]), b"correct horse battery staple")
if sys.argv[2] == "stall":  # the 3rd write stalls in fsync, its bytes in the temp file, before the rename
    real, calls = os.fsync, []
    def fsync(fd):
        calls.append(fd)
        if len(calls) == 5:
            print("stalled", flush=True)
            time.sleep(60)
        real(fd)
    os.fsync = fsync
print("ready", flush=True)
n = 0
while True:
    v.put(n.to_bytes(8, "big") * (1 << 20), "model")  # 8 MiB objects, each distinct
    n += 1
"""


def _kill_writer(root: Path, mode: str, delay: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), mode], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        if mode == "stall":
            assert proc.stdout.readline().strip() == b"stalled"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_kill_9_during_writes_leaves_whole_objects_or_none(vault: Vault) -> None:
    _kill_writer(vault.root, "stall", 0.0)  # killed with a whole temp file written, not renamed
    left = list(vault.root.glob("objects/*/.*.tmp"))
    assert len(left) == 1 and left[0].stat().st_size > 8 << 20
    assert len(Vault.open(vault.root, PASS).ids()) == 2 and not list(vault.root.glob("objects/*/.*.tmp"))
    for delay in (0.3, 0.7):  # and at arbitrary moments
        _kill_writer(vault.root, "run", delay)
    reopened = Vault.open(vault.root, PASS)
    assert not list(vault.root.glob("objects/*/.*.tmp"))  # swept on opening
    assert len(reopened.ids()) >= 2
    for oid in reopened.ids():
        data, _ = reopened.get(oid)  # every object that exists is whole
        assert len(data) == 8 << 20 and sha256_hex(data) == oid


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 3 * (1 << 20) + 7])
def test_streamed_encryption_is_one_gcm_over_the_whole_object(vault: Vault, size: int) -> None:
    """Chunk boundaries do not show: the file body is AES-256-GCM of the whole object (nonce and key per object)."""
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from tclearn.ledger.encoding import decode

    data = os.urandom(size)
    info = vault.put(data, "increment")
    got, _ = vault.get(info.object_id)
    assert got == data
    raw = vault.path_of(info.object_id).read_bytes()
    (n,) = struct.unpack(">I", raw[len(MAGIC): len(MAGIC) + 4])
    header = raw[len(MAGIC) + 4: len(MAGIC) + 4 + n]
    fields = decode(header)
    dek = vault._kek.decrypt(fields["dek"][:12], fields["dek"][12:], b"tclearn-vault-dek\x00" + info.object_id.encode())
    body = raw[len(MAGIC) + 4 + n:]
    assert AESGCM(dek).decrypt(fields["nonce"], body, b"tclearn-vault-object\x00" + header) == data
