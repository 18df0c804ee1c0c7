"""Member identities: an id and an Ed25519 key pair.

Keys are saved as PEM (PKCS#8 for the private key, optionally encrypted with a
passphrase) with owner-only permissions; a key file readable by others is
refused on load, as ssh does.
"""

from __future__ import annotations

import functools
import hashlib
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tclearn.errors import IdentityError, SignatureError
from tclearn.fsutil import atomic_write

__all__ = [
    "Identity",
    "check_member_id",
    "public_key_from_bytes",
    "verify_signature",
    "load_identity",
    "save_identity",
]

MEMBER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def check_member_id(member_id: str) -> str:
    if not isinstance(member_id, str) or not MEMBER_ID_RE.match(member_id):
        raise IdentityError(
            f"invalid member id {member_id!r}: use 1-63 lower-case letters, digits, '.', '_' or '-'"
        )
    return member_id


@dataclass(frozen=True)
class Identity:
    """A member's id and signing key."""

    member_id: str
    private_key: Ed25519PrivateKey
    # where signing time goes (`tclearn.meter`); not part of who the member is
    meter: Any = field(default=None, compare=False, repr=False)

    def metered(self, meter: Any) -> "Identity":
        """The same identity, its signing timed by `meter` (a `tclearn.meter.Meter`)."""
        return replace(self, meter=meter)

    @classmethod
    def generate(cls, member_id: str) -> "Identity":
        return cls(check_member_id(member_id), Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, member_id: str, seed: bytes) -> "Identity":
        """Deterministic key from a seed: for the demo and tests only."""
        raw = hashlib.sha256(b"tclearn-demo-key\x00" + seed + b"\x00" + member_id.encode()).digest()
        return cls(check_member_id(member_id), Ed25519PrivateKey.from_private_bytes(raw))

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        if self.meter is not None:
            return self.meter.timed("crypto", self.private_key.sign, message)
        return self.private_key.sign(message)


def public_key_from_bytes(raw: bytes) -> Ed25519PublicKey:
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise SignatureError("an Ed25519 public key is 32 bytes")
    return _public_key(raw)


@functools.lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """Key objects are immutable: a chain check meets the same few keys thousands of times."""
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SignatureError("not a valid Ed25519 public key") from None


def verify_signature(public_key: bytes | Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Raise SignatureError unless `signature` is valid for `message`."""
    key = public_key_from_bytes(public_key) if isinstance(public_key, bytes) else public_key
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise SignatureError("an Ed25519 signature is 64 bytes")
    try:
        key.verify(signature, message)
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None


def save_identity(identity: Identity, directory: Path, passphrase: bytes | None = None) -> Path:
    """Write `<id>.key` (private, 0600) and `<id>.pub` (raw public key, hex)."""
    directory = Path(directory)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    )
    key_path = directory / f"{identity.member_id}.key"
    atomic_write(key_path, pem, owner_only=True)
    (directory / f"{identity.member_id}.pub").write_text(identity.public_key.hex() + "\n")
    return key_path


def load_identity(path: Path, member_id: str | None = None, passphrase: bytes | None = None) -> Identity:
    path = Path(path)
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(f"key file {path} is readable by others: chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        raise IdentityError(f"key file {path} is encrypted: a passphrase is needed") from None
    except ValueError:
        raise IdentityError(f"key file {path}: wrong passphrase or not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"key file {path} is not an Ed25519 key")
    return Identity(check_member_id(member_id or path.stem), key)
