"""Certificates of the coalition: CA, members, fingerprints, checks."""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tclearn.pki import (
    InvalidCertificateError,
    InvalidNameError,
    build_member_cert,
    cert_fingerprint,
    generate_key,
    init_ca,
    issue_member,
    load_ca,
    load_cert,
    member_id_from_cert,
    normalize_fingerprint,
    verify_member_cert,
)

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture()
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    init_ca(directory, now=NOW)
    return directory


def test_ca_certificate_is_a_self_signed_ca(pki: Path) -> None:
    _, ca = load_ca(pki)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca.verify_directly_issued_by(ca)
    assert ca.not_valid_after_utc - NOW == timedelta(days=3650)


def test_member_certificate_fields(pki: Path) -> None:
    files = issue_member(pki, "hospital-a", days=30, now=NOW)
    cert = load_cert(files.cert.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hospital-a"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - NOW == timedelta(days=30)
    assert verify_member_cert(cert, (pki / "ca.crt").read_bytes(), NOW) == "hospital-a"


def test_member_hosts_go_into_the_san(pki: Path) -> None:
    files = issue_member(pki, "b", hosts=["node-b.example.org", "10.1.2.3", "::1"], now=NOW)
    san = load_cert(files.cert.read_bytes()).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node-b.example.org"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"10.1.2.3", "::1"}


def test_member_validity_is_capped_at_the_ca(tmp_path: Path) -> None:
    init_ca(tmp_path, days=10, now=NOW)
    files = issue_member(tmp_path, "m", days=365, now=NOW)
    _, ca = load_ca(tmp_path)
    assert load_cert(files.cert.read_bytes()).not_valid_after_utc == ca.not_valid_after_utc


@pytest.mark.parametrize("member", ["Alice", "a/b", "", "../x", "a" * 64])
def test_invalid_member_ids_are_refused(pki: Path, member: str) -> None:
    with pytest.raises(InvalidNameError):
        issue_member(pki, member, now=NOW)


@pytest.mark.parametrize("host", ["bad host", "a..b", "-x.example", "x" * 254])
def test_invalid_hosts_are_refused(pki: Path, host: str) -> None:
    with pytest.raises(InvalidNameError):
        issue_member(pki, "m", hosts=[host], now=NOW)
    assert not (pki / "members" / "m.key").exists()


def test_fingerprint_is_sha256_of_der_in_every_input_form(pki: Path) -> None:
    files = issue_member(pki, "m", now=NOW)
    pem = files.cert.read_bytes()
    cert = load_cert(pem)
    der = cert.public_bytes(Encoding.DER)
    expected = "sha256:" + hashlib.sha256(der).hexdigest()
    assert files.fingerprint == expected
    assert {cert_fingerprint(x) for x in (pem, pem.decode(), der, cert)} == {expected}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is not installed")
def test_fingerprint_matches_openssl(pki: Path) -> None:
    files = issue_member(pki, "m", now=NOW)
    out = subprocess.run(
        ["openssl", "x509", "-in", str(files.cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True, text=True, timeout=10, check=True,
    ).stdout
    assert normalize_fingerprint(out) == files.fingerprint


def test_normalize_fingerprint_forms() -> None:
    hexdigest = "ab" * 32
    colons = ":".join(["AB"] * 32)
    for form in (f"sha256:{hexdigest}", hexdigest.upper(), colons, f"SHA256:{colons}"):
        assert normalize_fingerprint(form) == f"sha256:{hexdigest}"
    with pytest.raises(InvalidCertificateError):
        normalize_fingerprint("sha256:1234")


def test_member_id_from_cert(pki: Path) -> None:
    files = issue_member(pki, "lab_7.x", now=NOW)
    assert member_id_from_cert(files.cert.read_bytes()) == "lab_7.x"
    with pytest.raises(InvalidCertificateError):
        member_id_from_cert(b"not a certificate")


def test_verify_member_cert_refuses_another_ca_and_expiry(pki: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    init_ca(other, now=NOW)
    foreign = issue_member(other, "m", now=NOW)
    ca_pem = (pki / "ca.crt").read_bytes()
    with pytest.raises(InvalidCertificateError, match="not issued|does not verify"):
        verify_member_cert(foreign.cert.read_bytes(), ca_pem, NOW)
    own = issue_member(pki, "m", days=1, now=NOW)
    with pytest.raises(InvalidCertificateError, match="valid from"):
        verify_member_cert(own.cert.read_bytes(), ca_pem, NOW + timedelta(days=2))


def test_build_member_cert_needs_a_host(pki: Path) -> None:
    ca_key, ca = load_ca(pki)
    with pytest.raises(InvalidNameError):
        build_member_cert("m", generate_key().public_key(), ca_key, ca, NOW, hosts=[])
