"""Enrolment requests: a site asks to join with keys it made itself; the operator's CA signs.

Theory of operation. `tclearn site init` makes, at the site, the member's
Ed25519 identity (it signs blocks and votes) and its TLS key (ECDSA P-256), and
writes one request file (TOML) holding:

* `member_id` and `url` (where the site's node will answer),
* `public_key`: the Ed25519 public key, hex,
* `csr`: a PKCS#10 certificate signing request (CN = member id, SAN = the
  host), signed by the TLS key — proof the site holds that key,
* `signature`: the Ed25519 signature of all of the above — proof the site
  holds the identity key, and that nobody changed the URL or swapped the CSR.

`tclearn pki sign` checks both proofs, refuses a member id the CA already
issued to, and signs the CSR into a member certificate. No private key ever
leaves the site.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tclearn.errors import IdentityError, SignatureError
from tclearn.identity import Identity, check_member_id, verify_signature
from tclearn.pki.certs import build_member_cert, cert_fingerprint, parse_host
from tclearn.pki.errors import AlreadyExistsError, InvalidCertificateError, InvalidNameError, PKIError
from tclearn.pki.store import load_ca

__all__ = ["MAX_REQUEST_BYTES", "EnrolmentRequest", "SignedMember", "build_request", "read_request", "sign_request"]

MAX_REQUEST_BYTES = 64 * 1024
_DOMAIN = b"tclearn-enrolment-request-v1\x00"


def _signed_bytes(member_id: str, url: str, public_key: bytes, csr_der: bytes) -> bytes:
    parts = [member_id.encode(), url.encode(), public_key, csr_der]
    return _DOMAIN + b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of an `https://host:port` URL; InvalidNameError otherwise."""
    split = urlsplit(url)
    try:
        port = split.port
    except ValueError:
        port = None
    if split.scheme != "https" or not split.hostname or port is None or split.path not in ("", "/"):
        raise InvalidNameError(f"a node URL is https://HOST:PORT, got {url!r}")
    parse_host(split.hostname)
    return split.hostname, port


@dataclass(frozen=True)
class EnrolmentRequest:
    """A site's request to join: who, where, its identity key and its CSR (both proofs checked)."""

    member_id: str
    url: str
    public_key: bytes
    csr: x509.CertificateSigningRequest

    @property
    def hosts(self) -> list[str]:
        try:
            san = self.csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        return [str(n) for n in san.get_values_for_type(x509.IPAddress)] + san.get_values_for_type(x509.DNSName)


def build_request(identity: Identity, tls_key: ec.EllipticCurvePrivateKey, host: str, port: int) -> str:
    """The request file's text: a CSR signed by `tls_key`, all of it signed by `identity`."""
    url = f"https://{host}:{port}"
    check_url(url)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.member_id)]))
           .add_extension(x509.SubjectAlternativeName([parse_host(host)]), critical=False)
           .sign(tls_key, hashes.SHA256()))
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = identity.sign(_signed_bytes(identity.member_id, url, identity.public_key, der))
    pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    return ("# A TCLearn enrolment request: give it to the coalition's operator (`tclearn pki sign`).\n"
            "# It holds public keys only; the private keys stay in this site's folder.\n"
            "[request]\n"
            f"member_id = {json.dumps(identity.member_id)}\n"
            f"url = {json.dumps(url)}\n"
            f"public_key = {json.dumps(identity.public_key.hex())}\n"
            f"signature = {json.dumps(signature.hex())}\n"
            f"csr = \"\"\"\n{pem}\"\"\"\n")


def read_request(path: Path) -> EnrolmentRequest:
    """Parse and check a request file: the CSR's own signature, the Ed25519 signature, names and URL."""
    try:
        if path.stat().st_size > MAX_REQUEST_BYTES:
            raise InvalidCertificateError(f"{path} is over {MAX_REQUEST_BYTES} bytes: not an enrolment request")
        table = tomllib.loads(path.read_text(encoding="utf-8"))["request"]
        member_id, url, csr_pem = str(table["member_id"]), str(table["url"]), str(table["csr"])
        public_key, signature = bytes.fromhex(table["public_key"]), bytes.fromhex(table["signature"])
    except OSError as exc:
        raise PKIError(f"cannot read enrolment request {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidCertificateError(f"{path} is not an enrolment request ([request] with member_id, url, "
                                      f"public_key, signature, csr): {exc}") from None
    try:
        check_member_id(member_id)
    except IdentityError as exc:
        raise InvalidNameError(str(exc)) from None
    check_url(url)
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise InvalidCertificateError(f"{path}: the csr is not a PEM certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise InvalidCertificateError(f"{path}: the CSR's signature does not verify")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise InvalidCertificateError(f"{path}: the CSR's key must be ECDSA P-256")
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1 or cns[0].value != member_id:
        raise InvalidCertificateError(f"{path}: the CSR's CN is not the member id {member_id!r}")
    der = csr.public_bytes(serialization.Encoding.DER)
    try:
        verify_signature(public_key, signature, _signed_bytes(member_id, url, public_key, der))
    except (SignatureError, IdentityError, ValueError):
        raise InvalidCertificateError(f"{path}: the request's Ed25519 signature does not verify "
                                      f"(altered, or not made by {member_id!r}'s identity key)") from None
    return EnrolmentRequest(member_id, url, public_key, csr)


@dataclass(frozen=True)
class SignedMember:
    """What `sign_request` wrote: the member's certificate and its entry for the coalition config."""

    member_id: str
    url: str
    public_key: bytes
    cert: Path
    fingerprint: str
    entry: Path

    def members_toml(self, relative_to: Path | None = None) -> str:
        cert = self.cert if relative_to is None else Path(_relative(self.cert, relative_to))
        return ("[[members]]\n"
                f"id = {json.dumps(self.member_id)}\n"
                f"public_key = {json.dumps(self.public_key.hex())}\n"
                f"certificate = {json.dumps(str(cert))}\n"
                f"url = {json.dumps(self.url)}\n")


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path.absolute(), base.absolute())


def sign_request(ca_dir: Path, request_path: Path, *, days: int = 365, ca_passphrase: bytes | None = None,
                 now: datetime | None = None) -> SignedMember:
    """Check the request, refuse a name the CA already issued, write DIR/members/<id>.crt and <id>.toml."""
    request = read_request(request_path)
    members = Path(ca_dir) / "members"
    cert_path, key_path = members / f"{request.member_id}.crt", members / f"{request.member_id}.key"
    entry_path = members / f"{request.member_id}.toml"
    for existing in (cert_path, key_path, entry_path):
        if existing.exists():
            raise AlreadyExistsError(f"the CA already issued a certificate to {request.member_id!r} ({existing}): "
                                     f"refusing to sign a second one for that name")
    ca_key, ca_cert = load_ca(ca_dir, ca_passphrase)
    hosts = request.hosts
    if not hosts:
        raise InvalidCertificateError(f"{request_path}: the CSR names no host (SAN)")
    public = request.csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert = build_member_cert(request.member_id, public, ca_key, ca_cert, now or datetime.now(UTC), hosts, days)
    members.mkdir(mode=0o755, parents=True, exist_ok=True)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        with open(cert_path, "xb") as fh:
            fh.write(pem)
    except OSError as exc:
        raise PKIError(f"cannot write {cert_path}: {exc.strerror}") from None
    signed = SignedMember(request.member_id, request.url, request.public_key, cert_path, cert_fingerprint(cert),
                          entry_path)
    try:
        entry_path.write_text(signed.members_toml(relative_to=members))
    except OSError as exc:
        cert_path.unlink(missing_ok=True)
        raise PKIError(f"cannot write {entry_path}: {exc.strerror}") from None
    return signed
