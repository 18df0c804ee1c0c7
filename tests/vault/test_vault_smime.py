"""S/MIME offline exchange: signed requests, encrypted replies, refusals journaled, openssl both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tclearn.pki import ca_cert_path, issue_member, load_private_key
from tclearn.vault.errors import AccessDenied, RequestError
from tclearn.vault.smime import build_request, open_reply, request_payload, serve_request, smime_paths
from tclearn.vault.supervisor import Supervisor

from vault_helpers import Clock

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _member(pki: Path, m: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key_path, cert_path = smime_paths(pki, m)
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, x509.load_pem_x509_certificate(cert_path.read_bytes())


def _request(pki: Path, m: str, version: str, clock: Clock, action: str = "download", **kw: str) -> bytes:
    key, cert = _member(pki, m)
    return build_request(request_payload(m, action, version, clock.ms, **kw), key, cert)


@pytest.fixture
def model(sup: Supervisor) -> str:
    v = sup.publish("h1", b"\x00\x01safetensors-bytes\xff" * 100, "model").object_id
    doc = sup.policy
    doc["grants"].append({"member": "h2", "version": v, "actions": ["download"]})
    sup.set_policy(doc, by="supervisor")
    return v


def test_a_granted_request_gets_the_model_encrypted_for_the_member(sup: Supervisor, pki: Path, clock: Clock,
                                                                    model: str) -> None:
    reply, req = serve_request(sup, _request(pki, "h2", model, clock, ref="site-7"), ca_cert_path(pki).read_bytes())
    assert req.member == "h2" and b"safetensors-bytes" not in reply
    key, cert = _member(pki, "h2")
    assert open_reply(reply, key, cert) == sup.vault.get(model)[0]
    e = sup.journal.entries[-1]
    assert (e.actor, e.action, e.outcome, e.ref, e.detail["channel"]) == ("h2", "download", "granted", "site-7", "smime")
    with pytest.raises(RequestError):  # another member's key cannot open it
        open_reply(reply, *_member(pki, "h3"))


def test_policy_refusals_are_journaled(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    with pytest.raises(AccessDenied):
        serve_request(sup, _request(pki, "h3", model, clock), ca_cert_path(pki).read_bytes())  # no download right
    doc = sup.policy
    doc["members"]["h2"]["revoked"] = True
    sup.set_policy(doc, by="supervisor")
    with pytest.raises(AccessDenied, match="revoked"):
        serve_request(sup, _request(pki, "h2", model, clock), ca_cert_path(pki).read_bytes())
    assert [e.outcome for e in sup.journal.entries if e.detail.get("channel") == "smime"] == ["refused", "refused"]


def test_a_replayed_request_is_refused(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    req = _request(pki, "h2", model, clock)
    ca = ca_cert_path(pki).read_bytes()
    serve_request(sup, req, ca)
    clock.ms += 1000
    with pytest.raises(RequestError, match="replayed"):
        serve_request(sup, req, ca)
    assert sup.journal.entries[-1].reason.startswith("replayed")


def test_stale_and_future_requests_are_refused(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    ca = ca_cert_path(pki).read_bytes()
    old = _request(pki, "h2", model, clock)
    clock.ms += 8 * 24 * 3600 * 1000
    with pytest.raises(RequestError, match="stale"):
        serve_request(sup, old, ca)
    future = Clock(clock.ms + 3600 * 1000)
    with pytest.raises(RequestError, match="future"):
        serve_request(sup, _request(pki, "h2", model, future), ca)


def _self_signed_ca_cert(member: str, key: rsa.RSAPrivateKey, *, days: int = 30,
                         start: datetime | None = None, issuer_key: object = None, issuer: x509.Name | None = None
                         ) -> x509.Certificate:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=days)).sign(issuer_key or key, hashes.SHA256()))


def test_forged_and_expired_certificates_are_refused(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    from tclearn.pki import load_ca

    ca = ca_cert_path(pki).read_bytes()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_key, ca_cert = load_ca(pki)
    forged = _self_signed_ca_cert("h2", key, issuer=ca_cert.subject)  # names the CA, signed by itself
    payload = request_payload("h2", "download", model, clock.ms)
    with pytest.raises(RequestError, match="not issued by the coalition CA"):
        serve_request(sup, build_request(payload, key, forged), ca)
    expired = _self_signed_ca_cert("h2", key, days=1, issuer_key=ca_key, issuer=ca_cert.subject)
    with pytest.raises(RequestError, match="not valid now"):
        serve_request(sup, build_request(request_payload("h2", "download", model, clock.ms), key, expired), ca)
    refused = [e for e in sup.journal.entries if e.action == "smime.request"]
    assert len(refused) == 2 and all(e.actor == "unknown" and e.outcome == "refused" for e in refused)


def test_a_request_signed_for_another_member_is_refused(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    key, cert = _member(pki, "h3")
    with pytest.raises(RequestError, match="signed by 'h3'"):
        serve_request(sup, build_request(request_payload("h2", "download", model, clock.ms), key, cert),
                      ca_cert_path(pki).read_bytes())


def test_a_tampered_request_is_refused(sup: Supervisor, pki: Path, clock: Clock, model: str) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs7

    key, cert = _member(pki, "h2")
    payload = request_payload("h2", "download", model, clock.ms)
    der = bytearray(pkcs7.PKCS7SignatureBuilder().set_data(payload).add_signer(cert, key, hashes.SHA256())
                    .sign(serialization.Encoding.DER, []))
    assert serve_request(sup, bytes(der), ca_cert_path(pki).read_bytes())[1].member == "h2"  # untouched: accepted
    der = bytearray(pkcs7.PKCS7SignatureBuilder().set_data(payload.replace(b'"nonce":"', b'"nonce":"00'))
                    .add_signer(cert, key, hashes.SHA256()).sign(serialization.Encoding.DER, []))
    i = der.index(b'"action":"download"')
    der[i + 10: i + 18] = b"use\x00\x00\x00\x00\x00"[:8]
    with pytest.raises(RequestError):
        serve_request(sup, bytes(der), ca_cert_path(pki).read_bytes())
    with pytest.raises(RequestError):
        serve_request(sup, b"not a CMS message at all", ca_cert_path(pki).read_bytes())
    assert sup.journal.entries[-1].outcome == "refused"


def test_an_ec_signer_cannot_receive_a_reply(sup: Supervisor, pki: Path, clock: Clock, model: str,
                                             tmp_path: Path) -> None:
    """Members' TLS keys are P-256: they may sign requests, but replies need an RSA recipient."""
    files = issue_member(pki, "h2", now=datetime(2026, 1, 1, tzinfo=UTC))
    key = load_private_key(files.key)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    with pytest.raises(RequestError, match="must be RSA"):
        serve_request(sup, build_request(request_payload("h2", "download", model, clock.ms), key, cert),
                      ca_cert_path(pki).read_bytes())
    files.key.unlink()
    files.cert.unlink()


def _openssl(*args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


@needs_openssl
def test_openssl_verifies_our_requests_and_decrypts_our_replies(sup: Supervisor, pki: Path, clock: Clock,
                                                               model: str, tmp_path: Path) -> None:
    req = tmp_path / "req.p7m"
    req.write_bytes(_request(pki, "h2", model, clock))
    content = _openssl("cms", "-verify", "-in", str(req), "-CAfile", str(ca_cert_path(pki)), "-purpose", "any")
    assert json.loads(content)["member"] == "h2"
    reply = tmp_path / "reply.p7m"
    reply.write_bytes(serve_request(sup, req.read_bytes(), ca_cert_path(pki).read_bytes())[0])
    key, cert = smime_paths(pki, "h2")
    out = _openssl("cms", "-decrypt", "-inform", "DER", "-in", str(reply), "-recip", str(cert), "-inkey", str(key),
                   "-binary")
    assert out == sup.vault.get(model)[0]


@needs_openssl
@pytest.mark.parametrize("form", ["nodetach-smime", "nodetach-der", "detached-smime", "nodetach-pem"])
def test_requests_signed_by_openssl_are_accepted(sup: Supervisor, pki: Path, clock: Clock, model: str,
                                                 tmp_path: Path, form: str) -> None:
    payload = tmp_path / "request.json"
    payload.write_bytes(request_payload("h2", "download", model, clock.ms, ref=form))
    key, cert = smime_paths(pki, "h2")
    args = ["cms", "-sign", "-in", str(payload), "-signer", str(cert), "-inkey", str(key), "-md", "sha256"]
    if form.startswith("nodetach"):
        args.append("-nodetach")
    if form.endswith("der"):
        args += ["-outform", "DER"]
    if form.endswith("pem"):
        args += ["-outform", "PEM"]
    reply, req = serve_request(sup, _openssl(*args), ca_cert_path(pki).read_bytes())
    assert req.ref == form and open_reply(reply, *_member(pki, "h2")) == sup.vault.get(model)[0]


def test_an_altered_reply_is_refused_against_the_chains_hash(sup: Supervisor, pki: Path, clock: Clock,
                                                             model: str) -> None:
    reply = bytearray(serve_request(sup, _request(pki, "h2", model, clock), ca_cert_path(pki).read_bytes())[0])
    reply[-40] ^= 0x01  # a bit of the AES-CBC ciphertext (unauthenticated in CMS EnvelopedData)
    with pytest.raises(RequestError):
        open_reply(bytes(reply), *_member(pki, "h2"), expect_sha256=model)
