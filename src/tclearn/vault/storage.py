"""Encrypted, content-addressed object storage: the supervisor's vault (level B).

Theory of operation. Each object (a model, an increment, a data-id list) is
stored under its id, the hash the chain records (the canonical model hash, or
the SHA-256 of the bytes when the caller names none). It is encrypted at rest
with AES-256-GCM under a fresh 256-bit data key (DEK); the DEK is wrapped with
AES-256-GCM by the vault's key-encryption key (KEK), bound to the object id.
The KEK is random, kept on disk only wrapped by a key derived from the
supervisor's passphrase (scrypt), and never leaves the supervisor: the chain
holds hashes, never keys.

File layout of one object: ``MAGIC | u32 header length | header | ciphertext``.
The header (canonical CBOR: id, kind, metadata, size, SHA-256 of the plain
bytes, wrapped DEK, nonce) is the AEAD's associated data, so a change to any
metadata byte fails decryption like a change to the ciphertext does.

Writes are atomic: the object goes to a temporary file in the same folder,
is fsynced, renamed into place and the folder fsynced; a writer killed at any
point leaves either the whole object or none (stale temporary files are
removed when the vault is next opened).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from tclearn.errors import EncodingError
from tclearn.fsutil import atomic_write
from tclearn.ledger.encoding import canonical_bytes, decode, sha256_hex
from tclearn.vault.errors import IntegrityError, ObjectNotFound, VaultError, VaultLockedError

__all__ = ["ObjectInfo", "Vault", "MAX_OBJECT_BYTES"]

MAGIC = b"TCLVAULT\x01"
KEK_FILE = "kek.json"
OBJECTS_DIR = "objects"
MAX_OBJECT_BYTES = 4 * 1024**3  # AES-GCM allows 64 GiB per nonce; a model is far smaller
MAX_HEADER_BYTES = 64 * 1024
DEFAULT_SCRYPT_N = 2**17  # ~128 MiB, a few tenths of a second: once per vault opening
CHUNK_BYTES = 1 << 20  # streamed through one reused buffer: no second copy of a large model in memory
TAG_BYTES = 16
_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def check_object_id(object_id: str) -> str:
    if not isinstance(object_id, str) or not _ID_RE.match(object_id):
        raise VaultError(f"an object id is 64 lower-case hex digits, got {object_id!r}")
    return object_id


@dataclass(frozen=True)
class ObjectInfo:
    """What the vault knows of an object without decrypting it."""

    object_id: str
    kind: str
    size: int
    sha256: str
    meta: dict[str, Any]


def _kek_from_passphrase(passphrase: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase)


class Vault:
    """An encrypted object store in one folder. Open it with the supervisor's passphrase."""

    def __init__(self, root: Path, kek: bytes) -> None:
        self.root = Path(root)
        self._kek = AESGCM(kek)
        self._objects = self.root / OBJECTS_DIR
        for stale in self._objects.glob("*/.*.tmp"):  # a writer killed mid-write
            stale.unlink(missing_ok=True)

    # --- the key-encryption key -------------------------------------------------
    @classmethod
    def create(cls, root: Path, passphrase: bytes, scrypt_n: int = DEFAULT_SCRYPT_N) -> "Vault":
        root = Path(root)
        if (root / KEK_FILE).exists():
            raise VaultError(f"{root} already holds a vault: refusing to replace its key")
        if not passphrase:
            raise VaultLockedError("a vault needs a non-empty passphrase")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (root / OBJECTS_DIR).mkdir(mode=0o700, exist_ok=True)
        kek, salt, nonce = secrets.token_bytes(32), secrets.token_bytes(16), secrets.token_bytes(12)
        wrapped = AESGCM(_kek_from_passphrase(passphrase, salt, scrypt_n)).encrypt(nonce, kek, b"tclearn-vault-kek")
        doc = {"format": "tclearn-vault-kek/1", "kdf": "scrypt", "n": scrypt_n, "r": 8, "p": 1,
               "salt": salt.hex(), "nonce": nonce.hex(), "wrapped_kek": wrapped.hex()}
        atomic_write(root / KEK_FILE, (json.dumps(doc, indent=1) + "\n").encode(), owner_only=True)
        return cls(root, kek)

    @classmethod
    def open(cls, root: Path, passphrase: bytes) -> "Vault":
        path = Path(root) / KEK_FILE
        try:
            doc = json.loads(path.read_text())
            salt, nonce = bytes.fromhex(doc["salt"]), bytes.fromhex(doc["nonce"])
            wrapped, n = bytes.fromhex(doc["wrapped_kek"]), int(doc["n"])
            if doc.get("kdf") != "scrypt" or not 2**10 <= n <= 2**22:
                raise ValueError("unknown key derivation")
        except FileNotFoundError:
            raise VaultLockedError(f"no vault in {root} (no {KEK_FILE}; run `tclearn vault init`)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VaultLockedError(f"{path} is damaged: {exc}") from None
        try:
            kek = AESGCM(_kek_from_passphrase(passphrase, salt, n)).decrypt(nonce, wrapped, b"tclearn-vault-kek")
        except InvalidTag:
            raise VaultLockedError("wrong vault passphrase (or a tampered key file)") from None
        return cls(root, kek)

    # --- objects ----------------------------------------------------------------
    def path_of(self, object_id: str) -> Path:
        check_object_id(object_id)
        return self._objects / object_id[:2] / object_id

    def has(self, object_id: str) -> bool:
        return self.path_of(object_id).is_file()

    def ids(self) -> list[str]:
        return sorted(p.name for p in self._objects.glob("??/*") if _ID_RE.match(p.name))

    def put(self, data: bytes, kind: str, meta: dict[str, Any] | None = None,
            object_id: str | None = None) -> ObjectInfo:
        """Encrypt and store `data` under `object_id` (default: its SHA-256); idempotent for equal bytes."""
        if not _KIND_RE.match(kind or ""):
            raise VaultError(f"object kind must be a short lower-case word, got {kind!r}")
        if len(data) > MAX_OBJECT_BYTES:
            raise VaultError(f"object of {len(data)} bytes exceeds the {MAX_OBJECT_BYTES}-byte limit")
        digest = sha256_hex(data)
        object_id = check_object_id(object_id or digest)
        path = self.path_of(object_id)
        if path.is_file():
            known = self.info(object_id)
            if known.sha256 != digest:
                raise IntegrityError(f"object {object_id[:16]}… already holds other bytes: refusing to overwrite")
            return known
        dek, dek_nonce, nonce = secrets.token_bytes(32), secrets.token_bytes(12), secrets.token_bytes(12)
        wrapped = dek_nonce + self._kek.encrypt(dek_nonce, dek, b"tclearn-vault-dek\x00" + object_id.encode())
        header_fields = {"v": 1, "id": object_id, "kind": kind, "meta": dict(meta or {}), "size": len(data),
                         "sha256": digest, "dek": wrapped, "nonce": nonce}
        try:
            header = canonical_bytes(header_fields)
        except EncodingError as exc:
            raise VaultError(f"object metadata cannot be stored: {exc}") from None
        if len(header) > MAX_HEADER_BYTES:
            raise VaultError("object metadata too large")
        path.parent.mkdir(mode=0o700, exist_ok=True)
        atomic_write(path, _encrypted(dek, nonce, b"tclearn-vault-object\x00" + header, data,
                                      [MAGIC, struct.pack(">I", len(header)), header]), owner_only=True)
        return ObjectInfo(object_id, kind, len(data), digest, header_fields["meta"])

    def _open(self, object_id: str) -> tuple[BinaryIO, dict[str, Any], bytes]:
        """The object's file, positioned at its ciphertext, and its header (fields and bytes)."""
        try:
            f = open(self.path_of(object_id), "rb")  # noqa: SIM115 (returned to the caller, who closes it)
        except FileNotFoundError:
            raise ObjectNotFound(f"the vault holds no object {object_id}") from None
        try:
            head = f.read(len(MAGIC) + 4)
            if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
                raise IntegrityError(f"object {object_id[:16]}…: not a vault object (bad magic)")
            (n,) = struct.unpack(">I", head[len(MAGIC):])
            header = f.read(n) if n <= MAX_HEADER_BYTES else b""
            if len(header) != n:
                raise IntegrityError(f"object {object_id[:16]}…: header length out of range")
            try:
                fields = decode(header)
                ok = (isinstance(fields, dict) and fields.get("v") == 1 and fields.get("id") == object_id
                      and isinstance(fields.get("dek"), bytes) and isinstance(fields.get("nonce"), bytes)
                      and isinstance(fields.get("meta"), dict) and type(fields.get("size")) is int)
            except EncodingError:
                ok = False
            if not ok:
                raise IntegrityError(f"object {object_id[:16]}…: damaged or foreign header")
            return f, fields, header
        except BaseException:
            f.close()
            raise

    def info(self, object_id: str) -> ObjectInfo:
        """The object's metadata, unauthenticated until `get` decrypts it."""
        f, fields, _ = self._open(object_id)
        f.close()
        return ObjectInfo(object_id, fields["kind"], fields["size"], fields["sha256"], fields["meta"])

    def get(self, object_id: str) -> tuple[bytearray, ObjectInfo]:
        """Decrypt an object; return its bytes (a bytearray: no copy of a large model) and authenticated metadata."""
        f, fields, header = self._open(object_id)
        with f:
            start = f.tell()
            end = f.seek(0, os.SEEK_END)
            size = fields["size"]
            if end - start != size + TAG_BYTES:
                raise IntegrityError(f"object {object_id[:16]}…: cut or padded (size differs from its header)")
            f.seek(end - TAG_BYTES)
            tag = f.read(TAG_BYTES)
            f.seek(start)
            wrapped = fields["dek"]
            try:
                dek = self._kek.decrypt(wrapped[:12], wrapped[12:], b"tclearn-vault-dek\x00" + object_id.encode())
                data = _decrypted(dek, fields["nonce"], tag, b"tclearn-vault-object\x00" + header, f, size)
            except (InvalidTag, ValueError):
                raise IntegrityError(f"object {object_id[:16]}…: ciphertext or metadata was altered "
                                     "(or another vault's key)") from None
        return data, ObjectInfo(object_id, fields["kind"], size, fields["sha256"], fields["meta"])


def _encrypted(dek: bytes, nonce: bytes, aad: bytes, data: bytes, prefix: list[bytes]) -> Iterator[bytes | memoryview]:
    """`prefix`, then AES-256-GCM of `data` chunk by chunk through one buffer, then the tag.

    The same bytes as `AESGCM(dek).encrypt(nonce, data, aad)`: a whole-object
    GCM, streamed so that a large model is not copied once more in memory.
    """
    yield from prefix
    enc = Cipher(algorithms.AES(dek), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    buf = bytearray(CHUNK_BYTES + 15)
    view, out = memoryview(data), memoryview(buf)
    for i in range(0, len(data), CHUNK_BYTES):
        n = enc.update_into(view[i: i + CHUNK_BYTES], buf)
        yield out[:n]
    enc.finalize()
    yield enc.tag


def _decrypted(dek: bytes, nonce: bytes, tag: bytes, aad: bytes, f: BinaryIO, size: int) -> bytearray:
    """Decrypt `size` bytes of `f` into one buffer; InvalidTag (and nothing returned) if anything was altered."""
    dec = Cipher(algorithms.AES(dek), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    out = bytearray(size + 15)  # update_into wants room for a block more than it writes
    dst, buf = memoryview(out), bytearray(CHUNK_BYTES)
    src, pos = memoryview(buf), 0
    while pos < size:
        n = f.readinto(src[: min(CHUNK_BYTES, size - pos)])
        if not n:
            raise ValueError("short read")
        pos += dec.update_into(src[:n], dst[pos:])
    dec.finalize()
    del dst, src
    del out[size:]
    return out
