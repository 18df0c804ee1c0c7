"""Offline exchange with the vault: S/MIME (CMS, RFC 8551 / 5652) requests and replies.

Theory of operation. A site without an online connection writes a request
(a small JSON document: member, action, version, a fresh nonce, the time,
a reference) and signs it with its key and certificate as CMS SignedData
(`build_request`, or `openssl cms -sign -nodetach`). The supervisor checks the
signature and the signer's certificate against the coalition CA
(`verify_request`), refuses replays and stale requests, asks the access
policy and journals the outcome (`serve_request`); a granted request is
answered with the model as CMS EnvelopedData: a fresh AES-256 key encrypts
the model, and is itself encrypted for the member's RSA certificate
(`build_reply`). The member opens it with its private key (`open_reply`, or
`openssl cms -decrypt`).

Libraries. `cryptography` builds both messages and decrypts replies; it does
not verify CMS signatures, so `verify_request` parses SignedData with
`asn1crypto` (a pure-Python ASN.1/CMS parser, no native code, the parser
under pyHanko and oscrypto) and checks the digest, the signed attributes and
the signature itself with `cryptography`; the certificate path is ours (the
coalition has one CA, members' certificates are issued directly by it).
`cryptography`'s envelope builder encrypts for RSA recipients only, and the
coalition's TLS certificates are P-256: S/MIME replies need an RSA
certificate per member (`issue_smime_cert`, kept under ``PKI/smime/``).
Requests may be signed with either kind.
"""

from __future__ import annotations

import base64
import email
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tclearn.errors import IdentityError
from tclearn.identity import check_member_id
from tclearn.pki.certs import cert_fingerprint, load_cert
from tclearn.vault.errors import RequestError, VaultError
from tclearn.vault.supervisor import Supervisor

__all__ = ["REQUEST_FORMAT", "SmimeRequest", "build_request", "request_payload", "verify_request",
           "serve_request", "build_reply", "open_reply", "issue_smime_cert", "smime_paths"]

REQUEST_FORMAT = "tclearn-smime-request/1"
MAX_REQUEST_BYTES = 256 * 1024
MAX_PAYLOAD_BYTES = 8 * 1024
MAX_AGE_MS = 7 * 24 * 3600 * 1000  # an offline site may take days to carry a request over
MAX_SKEW_MS = 10 * 60 * 1000
SMIME_ACTIONS = ("use", "download")
_NONCE_RE = re.compile(r"^[0-9a-f]{32,128}$")
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
_DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class SmimeRequest:
    """A request whose signature and certificate verified."""

    member: str
    action: str
    version: str
    nonce: str
    time_ms: int
    ref: str
    certificate: x509.Certificate
    request_sha256: str


# --- certificates for S/MIME ---------------------------------------------------

def smime_paths(pki_dir: Path, member_id: str) -> tuple[Path, Path]:
    base = Path(pki_dir) / "smime"
    return base / f"{member_id}.key", base / f"{member_id}.crt"


def issue_smime_cert(pki_dir: Path, member_id: str, ca_passphrase: bytes | None = None,
                     key_passphrase: bytes | None = None, days: int = 365, key_size: int = 3072,
                     now: datetime | None = None) -> tuple[Path, Path]:
    """An RSA key and an S/MIME certificate (emailProtection) for `member_id`, issued by the coalition CA."""
    from tclearn.pki import load_ca
    from tclearn.pki.store import write_owner_only

    try:
        check_member_id(member_id)
    except IdentityError as exc:
        raise VaultError(str(exc)) from None
    key_path, cert_path = smime_paths(pki_dir, member_id)
    if key_path.exists() or cert_path.exists():
        raise VaultError(f"{member_id} already has an S/MIME key or certificate in {key_path.parent}")
    ca_key, ca_cert = load_ca(Path(pki_dir), ca_passphrase)
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    from datetime import timedelta
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(key_passphrase) if key_passphrase else serialization.NoEncryption())
    write_owner_only(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


# --- requests --------------------------------------------------------------------

def request_payload(member: str, action: str, version: str, now_ms: int, ref: str = "",
                    nonce: str | None = None) -> bytes:
    doc = {"format": REQUEST_FORMAT, "member": member, "action": action, "version": version,
           "nonce": nonce or secrets.token_hex(16), "time_ms": int(now_ms), "ref": ref}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def build_request(payload: bytes, key: Any, cert: x509.Certificate) -> bytes:
    """The request as clear-signed S/MIME (multipart/signed, RFC 8551 §3.5.3), signer certificate included."""
    return (pkcs7.PKCS7SignatureBuilder().set_data(payload).add_signer(cert, key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Binary]))


def _to_der(data: bytes) -> tuple[bytes, bytes | None]:
    """CMS DER and, for a detached (multipart/signed) message, the signed content."""
    stripped = data.lstrip()
    if stripped[:1] == b"\x30":
        return stripped, None
    if stripped.startswith(b"-----BEGIN"):
        body = b"".join(line for line in stripped.splitlines() if line and not line.startswith(b"-----"))
        return base64.b64decode(body, validate=False), None
    msg = email.message_from_bytes(data)
    ctype = msg.get_content_type()
    if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return base64.b64decode(msg.get_payload(), validate=False), None
    if ctype == "multipart/signed":
        boundary = msg.get_boundary()
        if not boundary:
            raise RequestError("multipart/signed without a boundary")
        delim = b"--" + boundary.encode()
        raw = data.replace(b"\r\n", b"\n")
        parts = raw.split(b"\n" + delim)
        first = raw.split(delim + b"\n", 1)
        if len(first) != 2 or len(parts) < 3:
            raise RequestError("multipart/signed message without its two parts")
        content = first[1].split(b"\n" + delim, 1)[0].replace(b"\n", b"\r\n")  # canonical MIME form
        for part in msg.get_payload():
            if part.get_content_type() in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
                return base64.b64decode(part.get_payload(), validate=False), content
        raise RequestError("multipart/signed message without a pkcs7-signature part")
    raise RequestError(f"not an S/MIME, PEM or DER CMS message (content type {ctype})")


def _verify_cms(der: bytes, detached: bytes | None) -> tuple[bytes, x509.Certificate]:
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].native != "signed_data":
            raise RequestError("the CMS message is not SignedData")
        sd = info["content"]
        encap = sd["encap_content_info"]
        if encap["content_type"].native != "data":
            raise RequestError("signed content is not of type data")
        content = encap["content"].native if encap["content"].native is not None else detached
        if content is None:
            raise RequestError("signature without content")
        signers = list(sd["signer_infos"])
        if len(signers) != 1:
            raise RequestError(f"a request has one signer, this one has {len(signers)}")
        si = signers[0]
        certs = [c.chosen for c in sd["certificates"] if c.name == "certificate"] if sd["certificates"] else []
        sid = si["sid"]
        if sid.name == "issuer_and_serial_number":
            want = sid.chosen
            found = [c for c in certs if c.issuer == want["issuer"] and c.serial_number == want["serial_number"].native]
        else:
            found = [c for c in certs if c.key_identifier == sid.chosen.native]
        if len(found) != 1:
            raise RequestError("the signer's certificate is not in the message")
        cert = x509.load_der_x509_certificate(found[0].dump())
        digest_name = si["digest_algorithm"]["algorithm"].native
        if digest_name not in _DIGESTS:
            raise RequestError(f"digest {digest_name} not accepted (sha256, sha384, sha512)")
        algo = _DIGESTS[digest_name]()
        signed_attrs = si["signed_attrs"]
        if signed_attrs.native:
            attrs = {a["type"].native: a["values"] for a in signed_attrs}
            if [v.native for v in attrs.get("content_type", [])] != ["data"]:
                raise RequestError("signed attributes: content type is not data")
            md = [v.native for v in attrs.get("message_digest", [])]
            if md != [hashlib.new(digest_name, content).digest()]:
                raise RequestError("signed attributes: message digest does not match the content")
            to_verify = b"\x31" + signed_attrs.dump()[1:]  # DER of the SET OF, as signed (RFC 5652 §5.4)
        else:
            to_verify = content
        signature = si["signature"].native
        sig_algo = si["signature_algorithm"].signature_algo
    except RequestError:
        raise
    except Exception as exc:  # asn1crypto raises many types on malformed DER
        raise RequestError(f"malformed CMS message: {type(exc).__name__}: {exc}") from None
    public = cert.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey) and sig_algo == "rsassa_pkcs1v15":
            public.verify(signature, to_verify, padding.PKCS1v15(), algo)
        elif isinstance(public, ec.EllipticCurvePublicKey) and sig_algo == "ecdsa":
            public.verify(signature, to_verify, ec.ECDSA(algo))
        else:
            raise RequestError(f"signature algorithm {sig_algo} with a {type(public).__name__} is not accepted")
    except InvalidSignature:
        raise RequestError("the request's signature does not verify") from None
    return content, cert


def _check_cert(cert: x509.Certificate, ca_cert: x509.Certificate, now: datetime) -> str:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise RequestError("the signer's certificate was not issued by the coalition CA") from None
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise RequestError(f"the signer's certificate is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} "
                           f"to {cert.not_valid_after_utc:%Y-%m-%d})")
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        raise RequestError("the signer's certificate has no single CN")
    try:
        return check_member_id(str(cns[0].value))
    except IdentityError as exc:
        raise RequestError(f"the signer's certificate does not name a member: {exc}") from None


def verify_request(data: bytes, ca_cert: Any, now: datetime) -> SmimeRequest:
    """Parse and verify a signed request; RequestError names the first problem."""
    if len(data) > MAX_REQUEST_BYTES:
        raise RequestError(f"request of {len(data)} bytes exceeds {MAX_REQUEST_BYTES}")
    der, detached = _to_der(data)
    content, cert = _verify_cms(der, detached)
    member = _check_cert(cert, load_cert(ca_cert), now)
    if len(content) > MAX_PAYLOAD_BYTES:
        raise RequestError("request payload too large")
    try:
        doc = json.loads(content)
        ok = (isinstance(doc, dict) and doc.get("format") == REQUEST_FORMAT and isinstance(doc.get("nonce"), str)
              and type(doc.get("time_ms")) is int and isinstance(doc.get("ref", ""), str))
    except (ValueError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise RequestError(f"the signed content is not a {REQUEST_FORMAT} request")
    if doc.get("member") != member:
        raise RequestError(f"the request names {doc.get('member')!r} but is signed by {member!r}")
    if doc.get("action") not in SMIME_ACTIONS:
        raise RequestError(f"action must be one of {', '.join(SMIME_ACTIONS)}")
    if not isinstance(doc.get("version"), str) or not _HASH_RE.match(doc["version"]):
        raise RequestError("version must be a 64-hex model hash")
    if not _NONCE_RE.match(doc["nonce"]):
        raise RequestError("nonce must be 32-128 lower-case hex digits")
    return SmimeRequest(member, doc["action"], doc["version"], doc["nonce"], doc["time_ms"], doc.get("ref", ""),
                        cert, hashlib.sha256(data).hexdigest())


# --- the supervisor's side --------------------------------------------------------

def serve_request(supervisor: Supervisor, data: bytes, ca_cert: Any) -> tuple[bytes, SmimeRequest]:
    """Verify, check for replay, authorize and journal one request; return the encrypted reply.

    Every refusal of a request that reached us is journaled (the actor is the
    certificate's member when the signature verified, else ``unknown``).
    """
    now_ms = supervisor.clock_ms()
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    digest = hashlib.sha256(data).hexdigest()
    try:
        req = verify_request(data, ca_cert, now)
    except RequestError as exc:
        supervisor.refuse("unknown", "smime.request", None, str(exc), "", {"channel": "smime", "request_sha256": digest})
        raise
    detail = {"channel": "smime", "nonce": req.nonce, "request_sha256": digest,
              "cert": cert_fingerprint(req.certificate), "request_time_ms": req.time_ms}
    ref = req.ref or req.nonce
    problem = None
    if _nonce_seen(supervisor, req.nonce):
        problem = "replayed request (its nonce was seen before)"
    elif req.time_ms < now_ms - MAX_AGE_MS:
        problem = "stale request (older than 7 days)"
    elif req.time_ms > now_ms + MAX_SKEW_MS:
        problem = "request dated in the future"
    elif not isinstance(req.certificate.public_key(), rsa.RSAPublicKey):
        problem = "the reply is encrypted for the signer's certificate, which must be RSA (tclearn smime issue)"
    if problem:
        supervisor.refuse(req.member, req.action, req.version, problem, ref, detail)
        raise RequestError(problem)
    model, _ = supervisor.fetch(req.member, req.version, req.action, ref, detail)  # AccessDenied is journaled
    return build_reply(model, req.certificate), req


def _nonce_seen(supervisor: Supervisor, nonce: str) -> bool:
    return any(e.detail.get("channel") == "smime" and e.detail.get("nonce") == nonce
               for e in supervisor.journal.entries)


def build_reply(model: bytes, recipient: x509.Certificate) -> bytes:
    """CMS EnvelopedData (DER): AES-256-CBC under a fresh key, the key wrapped for `recipient` (RSA)."""
    if not isinstance(recipient.public_key(), rsa.RSAPublicKey):
        raise VaultError("S/MIME replies need an RSA recipient certificate")
    return (pkcs7.PKCS7EnvelopeBuilder().set_data(model).add_recipient(recipient)
            .set_content_encryption_algorithm(algorithms.AES256)
            .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))


def open_reply(data: bytes, key: rsa.RSAPrivateKey, cert: x509.Certificate, expect_sha256: str | None = None) -> bytes:
    """Decrypt a reply. CMS EnvelopedData with AES-CBC is not authenticated (cryptography builds no
    AuthEnvelopedData): pass the chain's model hash (SHA-256 of the canonical safetensors bytes) as
    `expect_sha256` so that an altered reply is refused rather than opened as garbage."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            model = pkcs7.pkcs7_decrypt_pem(data, cert, key, [])
        elif data[:1] == b"\x30":
            model = pkcs7.pkcs7_decrypt_der(data, cert, key, [])
        else:
            model = pkcs7.pkcs7_decrypt_smime(data, cert, key, [])
    except ValueError as exc:
        raise RequestError(f"cannot open the reply: {exc}") from None
    if expect_sha256 is not None and hashlib.sha256(model).hexdigest() != expect_sha256.lower():
        raise RequestError("the reply's model is not the expected version (altered, or another model)")
    return model
