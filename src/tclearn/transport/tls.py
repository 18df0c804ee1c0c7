"""TLS 1.3 contexts with mutual authentication, and the coalition allow-list.

Theory of operation. A connection between two nodes is admitted in two steps:

1. OpenSSL, during the handshake: TLS 1.3 only (minimum = maximum = 1.3), the
   peer presents a certificate (the server sets CERT_REQUIRED, so a client
   without one fails the handshake), the chain ends at the coalition CA and is
   checked with X509_STRICT.
2. Us, right after the handshake and before any HTTP byte is read: the SHA-256
   fingerprint of the peer's certificate must be on the `MemberAllowList`. The
   CA may have signed certificates for organisations that are not (or no
   longer) members; the allow-list, built from the genesis block and
   membership blocks, is what says who belongs to the coalition today.

Python's ssl module has no verify callback, so step 2 runs after the handshake;
a refused peer gets its connection closed without one byte of HTTP.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from tclearn.errors import TransportError
from tclearn.pki.certs import cert_fingerprint, member_id_from_cert, normalize_fingerprint
from tclearn.pki.errors import KeyFileError
from tclearn.pki.store import check_owner_only
from tclearn.transport.errors import PeerNotAllowedError, TLSConfigError

__all__ = ["MemberAllowList", "client_context", "server_context"]


class MemberAllowList:
    """Certificate fingerprints of the current coalition members; thread-safe.

    Built from fingerprints alone, or from a mapping fingerprint -> member id;
    with the mapping, the certificate's CN must also be the recorded member id.
    `replace` swaps the whole list at once, for a membership change; a
    connection identified before it is re-checked with `admits` on each
    request, so a removed member's kept-alive connection is refused too.
    """

    def __init__(self, members: Mapping[str, str] | Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._members: dict[str, str | None] = {}
        self._ids: frozenset[str | None] = frozenset()
        self.replace(members)

    @classmethod
    def from_certs(cls, certs: Iterable[bytes | str | Path]) -> MemberAllowList:
        """Allow-list of these certificates (PEM/DER bytes, or paths to them), bound to their CN."""
        members: dict[str, str] = {}
        for cert in certs:
            data = Path(cert).read_bytes() if isinstance(cert, Path) else cert
            members[cert_fingerprint(data)] = member_id_from_cert(data)
        return cls(members)

    def replace(self, members: Mapping[str, str] | Iterable[str]) -> None:
        if isinstance(members, Mapping):
            table: dict[str, str | None] = {normalize_fingerprint(fp): m for fp, m in members.items()}
        else:
            table = {normalize_fingerprint(fp): None for fp in members}
        with self._lock:
            self._members = table
            self._ids = frozenset(table.values())

    def admits(self, member_id: str) -> bool:
        """Whether `member_id` still has a certificate here (always, for a list of bare fingerprints)."""
        with self._lock:
            return member_id in self._ids or None in self._ids

    @property
    def fingerprints(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._members)

    def __contains__(self, fingerprint: object) -> bool:
        if not isinstance(fingerprint, str):
            return False
        try:
            fp = normalize_fingerprint(fingerprint)
        except TransportError:
            return False
        with self._lock:
            return fp in self._members

    def __len__(self) -> int:
        with self._lock:
            return len(self._members)

    def identify(self, der: bytes | None) -> str:
        """Member id of the peer whose certificate is `der`; PeerNotAllowedError if not a member."""
        if not der:
            raise PeerNotAllowedError("peer presented no certificate")
        fingerprint = cert_fingerprint(der)
        with self._lock:
            known = fingerprint in self._members
            expected = self._members.get(fingerprint)
        try:
            member_id = member_id_from_cert(der)
        except TransportError as exc:
            raise PeerNotAllowedError(f"certificate {fingerprint}: {exc}") from None
        if not known:
            raise PeerNotAllowedError(f"certificate {fingerprint} (CN={member_id}) is not a coalition member")
        if expected is not None and expected != member_id:
            raise PeerNotAllowedError(
                f"certificate {fingerprint} names {member_id!r}, but the coalition records it for {expected!r}"
            )
        return member_id


def _context(
    purpose: int, ca: Path | bytes, cert: Path, key: Path, key_password: bytes | None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        check_owner_only(Path(key))
    except KeyFileError as exc:
        raise TLSConfigError(str(exc)) from None
    try:
        if isinstance(ca, bytes):
            ctx.load_verify_locations(cadata=ca.decode("ascii"))
        else:
            ctx.load_verify_locations(cafile=str(ca))
    except (OSError, ssl.SSLError, UnicodeDecodeError) as exc:
        raise TLSConfigError(f"cannot load coalition CA {ca if not isinstance(ca, bytes) else '(PEM)'}: {exc}") from None
    try:
        ctx.load_cert_chain(str(cert), str(key), password=key_password or None)
    except ssl.SSLError as exc:
        raise TLSConfigError(f"cannot load certificate {cert} with key {key} (wrong passphrase, or they do not match): {exc}") from None
    except OSError as exc:
        raise TLSConfigError(f"cannot load certificate {cert} / key {key}: {exc.strerror or exc}") from None
    return ctx


def server_context(ca: Path | bytes, cert: Path, key: Path, key_password: bytes | None = None) -> ssl.SSLContext:
    """Server side: TLS 1.3 only, client certificate required and verified against the CA.

    No session tickets: every connection does a full handshake, so every
    connection shows us its certificate afresh.
    """
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, ca, cert, key, key_password)
    ctx.num_tickets = 0
    return ctx


def client_context(
    ca: Path | bytes, cert: Path, key: Path, key_password: bytes | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    """Client side: TLS 1.3 only, presents our certificate, verifies the server's against the CA.

    `check_hostname` (the default) also matches the URL's host against the
    server certificate's SAN; the member allow-list is checked on top of it.
    """
    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, ca, cert, key, key_password)
    ctx.check_hostname = check_hostname
    return ctx
