"""X.509 certificates of a coalition: building, reading and checking them.

Theory of operation. The coalition runs one small CA. Each member holds an
ECDSA P-256 key and a certificate whose subject CN is its member id and whose
SAN lists the names and addresses its node answers on; the certificate is good
for both ends of a TLS connection (serverAuth + clientAuth). P-256 because it is
the curve every TLS 1.3 stack (Python's ssl, OpenSSL, curl) accepts for both
server and client authentication; Ed25519 certificates are still refused by
some clients.

A CA-issued certificate proves "the CA signed this", not "this is a member
today": the genesis block records each member's certificate *fingerprint*
(SHA-256 of the DER bytes, the value `openssl x509 -fingerprint -sha256`
prints), and the transport admits only fingerprints on that list.

These functions are pure: no files, and the time comes in as an argument.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tclearn.errors import IdentityError
from tclearn.identity import check_member_id
from tclearn.pki.errors import InvalidCertificateError, InvalidNameError

__all__ = [
    "DEFAULT_HOSTS",
    "CertLike",
    "build_ca_cert",
    "build_member_cert",
    "cert_fingerprint",
    "generate_key",
    "load_cert",
    "member_id_from_cert",
    "normalize_fingerprint",
    "parse_host",
    "verify_member_cert",
]

CertLike = x509.Certificate | bytes | str
"""A certificate as an object, PEM text, PEM bytes or DER bytes."""

DEFAULT_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1")
_CLOCK_SKEW = timedelta(minutes=5)
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key, for the CA and for members alike."""
    return ec.generate_private_key(ec.SECP256R1())


def _validity(now: datetime, days: int) -> tuple[datetime, datetime]:
    if days < 1:
        raise InvalidNameError(f"validity must be at least one day, got {days}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    # Backdate a little: a peer whose clock runs a few minutes late must not
    # refuse a certificate issued "in its future".
    return now - _CLOCK_SKEW, now + timedelta(days=days)


def build_ca_cert(
    key: ec.EllipticCurvePrivateKey, name: str, now: datetime, days: int = 3650
) -> x509.Certificate:
    """Self-signed CA certificate: CA:TRUE, path length 0 (members cannot issue)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TCLearn coalition"),
        ]
    )
    not_before, not_after = _validity(now, days)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def parse_host(host: str) -> x509.GeneralName:
    """A SAN entry for `host`: an IP address if it parses as one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not _HOSTNAME_RE.match(host):
        raise InvalidNameError(f"{host!r} is neither an IP address nor a valid host name")
    return x509.DNSName(host.lower())


def build_member_cert(
    member_id: str,
    member_public_key: ec.EllipticCurvePublicKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: datetime,
    hosts: tuple[str, ...] | list[str] = DEFAULT_HOSTS,
    days: int = 365,
) -> x509.Certificate:
    """Member certificate: CN = member id, SAN = hosts, usable as TLS server and client.

    Validity is capped at the CA's own expiry: a certificate that outlives its
    issuer would only fail verification later, with a less clear message.
    """
    try:
        check_member_id(member_id)
    except IdentityError as exc:
        raise InvalidNameError(str(exc)) from None
    if not hosts:
        raise InvalidNameError("a member certificate needs at least one host name or IP address")
    names = [parse_host(h) for h in dict.fromkeys(hosts)]
    not_before, not_after = _validity(now, days)
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(member_public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(member_public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def load_cert(cert: CertLike) -> x509.Certificate:
    """Accept a certificate object, PEM (text or bytes) or DER bytes."""
    if isinstance(cert, x509.Certificate):
        return cert
    data = cert.encode("ascii", "replace") if isinstance(cert, str) else bytes(cert)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidCertificateError(f"not an X.509 certificate: {exc}") from None


def cert_fingerprint(cert: CertLike) -> str:
    """`"sha256:<hex>"` of the DER encoding: what genesis records for each member."""
    der = load_cert(cert).public_bytes(Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def normalize_fingerprint(fingerprint: str) -> str:
    """Canonical `"sha256:<lower hex>"` from our form or OpenSSL's `AB:CD:…` form."""
    text = fingerprint.strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:"):]
    elif "=" in text:  # "sha256 Fingerprint=AB:CD:..." as openssl prints it
        text = text.split("=", 1)[1]
    text = text.replace(":", "").lower()
    if not _FINGERPRINT_RE.match(text):
        raise InvalidCertificateError(f"not a SHA-256 certificate fingerprint: {fingerprint!r}")
    return "sha256:" + text


def member_id_from_cert(cert: CertLike) -> str:
    """The member id a certificate names: its one subject CN, checked as a member id."""
    attrs = load_cert(cert).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(attrs) != 1:
        raise InvalidCertificateError(f"a member certificate has exactly one CN, this one has {len(attrs)}")
    value = attrs[0].value
    cn = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    try:
        return check_member_id(cn)
    except IdentityError as exc:
        raise InvalidCertificateError(f"certificate CN is not a member id: {exc}") from None


def verify_member_cert(cert: CertLike, ca_cert: CertLike, now: datetime) -> str:
    """Check `cert` was issued by the CA, is valid at `now` and fit for mTLS; return its member id.

    For tools that admit a certificate outside a TLS handshake (building the
    genesis block, say); a handshake does the same checks in OpenSSL.
    """
    leaf, ca = load_cert(cert), load_cert(ca_cert)
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError) as exc:
        raise InvalidCertificateError(f"certificate not issued by the coalition CA: {exc}") from None
    except InvalidSignature:
        raise InvalidCertificateError("certificate signature does not verify against the coalition CA") from None
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise InvalidCertificateError(
            f"certificate valid from {leaf.not_valid_before_utc:%Y-%m-%d} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d}, not at {now:%Y-%m-%d %H:%M}"
        )
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidCertificateError("certificate has no extendedKeyUsage") from None
    missing = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} - set(eku)
    if missing:
        raise InvalidCertificateError("certificate is not valid for both TLS server and client auth")
    return member_id_from_cert(leaf)
