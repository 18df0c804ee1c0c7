"""A coalition PKI directory on disk.

Layout (one place builds every path, so the CLI, the node and the tests agree):

    DIR/ca.key              CA private key, PKCS#8 PEM, 0600, optionally encrypted
    DIR/ca.crt              CA certificate, PEM
    DIR/members/<id>.key    member TLS key, PKCS#8 PEM, 0600
    DIR/members/<id>.crt    member certificate, PEM

Key files are created with O_EXCL and mode 0600 from the first byte (no window
where the key is world-readable, and never an overwrite of existing key
material), and are refused on load if group or others can read them, as ssh does.
In a real coalition the CA directory stays with whoever runs the CA; each member
receives `ca.crt` and its own pair, never another member's key.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tclearn.errors import IdentityError
from tclearn.fsutil import atomic_write
from tclearn.identity import check_member_id
from tclearn.pki.certs import (
    DEFAULT_HOSTS,
    build_ca_cert,
    build_member_cert,
    cert_fingerprint,
    generate_key,
    load_cert,
)
from tclearn.pki.errors import (
    AlreadyExistsError,
    BadPassphraseError,
    CANotFoundError,
    InvalidNameError,
    KeyFileError,
    MemberNotFoundError,
    PKIError,
)

__all__ = [
    "MemberFiles",
    "ca_cert_path",
    "ca_key_path",
    "check_owner_only",
    "init_ca",
    "issue_member",
    "list_members",
    "load_ca",
    "load_private_key",
    "member_files",
    "write_owner_only",
]


@dataclass(frozen=True)
class MemberFiles:
    """Where a member's TLS key and certificate are, and the certificate's fingerprint."""

    member_id: str
    key: Path
    cert: Path
    fingerprint: str


def ca_key_path(directory: Path) -> Path:
    return Path(directory) / "ca.key"


def ca_cert_path(directory: Path) -> Path:
    return Path(directory) / "ca.crt"


def _member_paths(directory: Path, member_id: str) -> tuple[Path, Path]:
    try:
        check_member_id(member_id)
    except IdentityError as exc:
        raise InvalidNameError(str(exc)) from None
    base = Path(directory) / "members"
    return base / f"{member_id}.key", base / f"{member_id}.crt"


def member_files(directory: Path, member_id: str) -> MemberFiles:
    """The files of an issued member; MemberNotFoundError if either is missing."""
    key, cert = _member_paths(directory, member_id)
    if not key.is_file() or not cert.is_file():
        raise MemberNotFoundError(f"member {member_id!r} has no key and certificate under {Path(directory) / 'members'}")
    return MemberFiles(member_id, key, cert, cert_fingerprint(cert.read_bytes()))


def write_owner_only(path: Path, data: bytes) -> None:
    """Create `path` with mode 0600 and write `data`; refuse to overwrite."""
    try:
        atomic_write(path, data, owner_only=True, exclusive=True)
    except FileExistsError:
        raise AlreadyExistsError(f"{path} already exists: refusing to overwrite key material") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from None


def _key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def check_owner_only(path: Path) -> None:
    """KeyFileError unless `path` exists and only its owner can read it (as ssh insists)."""
    try:
        mode = Path(path).stat().st_mode
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is readable by others: chmod 600 it")


def load_private_key(path: Path, passphrase: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key, refusing files others can read and wrong passphrases."""
    path = Path(path)
    check_owner_only(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise BadPassphraseError(f"key file {path} is not encrypted, but a passphrase was given") from None
        raise BadPassphraseError(f"key file {path} is encrypted: a passphrase is needed") from None
    except ValueError:
        raise BadPassphraseError(f"key file {path}: wrong passphrase, or not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"key file {path} is not an EC key")
    return key


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def init_ca(
    directory: Path,
    passphrase: bytes | None = None,
    name: str = "TCLearn coalition CA",
    days: int = 3650,
    now: datetime | None = None,
) -> Path:
    """Create the coalition CA in `directory`; return the CA certificate's path."""
    directory = Path(directory)
    key_path, cert_path = ca_key_path(directory), ca_cert_path(directory)
    if key_path.exists() or cert_path.exists():
        raise AlreadyExistsError(f"{directory} already holds a CA: refusing to replace it")
    if not name.strip():
        raise InvalidNameError("the CA needs a non-empty name")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PKIError(f"cannot create {directory}: {exc.strerror}") from None
    key = generate_key()
    cert = build_ca_cert(key, name, _now(now), days)
    write_owner_only(key_path, _key_pem(key, passphrase))
    cert_path.write_bytes(_cert_pem(cert))
    return cert_path


def load_ca(directory: Path, passphrase: bytes | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA key and certificate, checked to belong together."""
    key_path, cert_path = ca_key_path(directory), ca_cert_path(directory)
    if not key_path.is_file() or not cert_path.is_file():
        raise CANotFoundError(f"no coalition CA in {directory} (expected ca.key and ca.crt; run `tclearn pki init`)")
    key = load_private_key(key_path, passphrase)
    cert = load_cert(cert_path.read_bytes())
    if cert.public_key() != key.public_key():
        raise PKIError(f"{key_path} and {cert_path} do not belong together")
    return key, cert


def issue_member(
    directory: Path,
    member_id: str,
    hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
    days: int = 365,
    ca_passphrase: bytes | None = None,
    key_passphrase: bytes | None = None,
    now: datetime | None = None,
) -> MemberFiles:
    """Issue a key and certificate for `member_id`; refuse if the member already has one."""
    key_path, cert_path = _member_paths(directory, member_id)
    if key_path.exists() or cert_path.exists():
        raise AlreadyExistsError(f"member {member_id!r} already has a key or certificate in {key_path.parent}")
    ca_key, ca_cert = load_ca(directory, ca_passphrase)
    key = generate_key()
    cert = build_member_cert(member_id, key.public_key(), ca_key, ca_cert, _now(now), hosts, days)
    key_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_owner_only(key_path, _key_pem(key, key_passphrase))
    try:
        cert_path.write_bytes(_cert_pem(cert))
    except OSError as exc:
        key_path.unlink(missing_ok=True)
        raise PKIError(f"cannot write {cert_path}: {exc.strerror}") from None
    return MemberFiles(member_id, key_path, cert_path, cert_fingerprint(cert))


def list_members(directory: Path) -> list[MemberFiles]:
    """Every member with a certificate in the directory, sorted by id."""
    base = Path(directory) / "members"
    if not base.is_dir():
        return []
    found = []
    for cert in sorted(base.glob("*.crt")):
        found.append(MemberFiles(cert.stem, cert.with_suffix(".key"), cert, cert_fingerprint(cert.read_bytes())))
    return found
