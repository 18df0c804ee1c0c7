"""`tclearn smime`: offline exchange with the vault (S/MIME, RFC 8551 / 5751), for sites without a connection.

    tclearn smime issue PKI MEMBER [--passphrase-file F]          (RSA key + S/MIME certificate from the CA)
    tclearn smime request --key K --cert C --version V [--action download|use] [--ref R] --out REQ
    tclearn smime serve --vault DIR --key SUP.key --passphrase-file F --ca CA.crt --in REQ --out REPLY [--chain DB]
    tclearn smime open --key K --cert C --in REPLY --out MODEL [--expect-sha256 H]

Requests are clear-signed S/MIME; `serve` also takes requests made by
`openssl cms -sign` (detached or `-nodetach`, S/MIME, PEM or DER). Replies
are CMS EnvelopedData (DER), AES-256, the key wrapped for the member's RSA
certificate: `openssl cms -decrypt -inform DER -binary` opens them too.
Exit codes: those of `tclearn vault` (31 refused by the policy, 33 bad,
replayed or stale request, 34 vault locked…); every refusal is journaled.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Optional

import typer

from tclearn.cli.errors import handle_errors
from tclearn.cli.vault import CHAIN_HELP, KEY_HELP, PASS_HELP, open_supervisor  # also registers the vault exit codes
from tclearn.errors import ConfigError
from tclearn.vault.errors import RequestError, VaultError

app = typer.Typer(help="Offline (S/MIME) requests to the vault and their encrypted replies.", no_args_is_help=True)


def _load_key_and_cert(key: Path, cert: Path, passphrase_file: Path | None) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from tclearn.cli.init import read_passphrase
    from tclearn.pki import check_owner_only

    check_owner_only(key)
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), read_passphrase(passphrase_file))
    except (TypeError, ValueError) as exc:
        raise VaultError(f"cannot load {key}: {exc}") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError as exc:
        raise VaultError(f"cannot load {cert}: {exc}") from None
    return private, certificate


@app.command("issue")
@handle_errors
def issue_command(
    pki: Path = typer.Argument(..., exists=True, file_okay=False, help="PKI directory holding the CA."),
    member: str = typer.Argument(..., help="Member id (the certificate's CN)."),
    passphrase_file: Optional[Path] = typer.Option(None, "--passphrase-file", dir_okay=False,
                                                   help="The CA key's passphrase."),
    days: int = typer.Option(365, "--days", min=1),
) -> None:
    """Issue PKI/smime/MEMBER.key (RSA-3072, 0600) and MEMBER.crt: replies are encrypted for it."""
    from tclearn.cli.init import read_passphrase
    from tclearn.vault.smime import issue_smime_cert

    key, cert = issue_smime_cert(pki, member, read_passphrase(passphrase_file), days=days)
    typer.echo(f"key:         {key}\ncertificate: {cert}")


@app.command("request")
@handle_errors
def request_command(
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="The member's private key (PEM)."),
    cert: Path = typer.Option(..., "--cert", exists=True, dir_okay=False, help="Its certificate (RSA to get a reply)."),
    version: str = typer.Option(..., "--version", help="The model version (hash) wanted."),
    action: str = typer.Option("download", "--action", help="download (take it out) or use (validate, train)."),
    ref: str = typer.Option("", "--ref", help="A reference linking this request to others (journaled)."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the signed request."),
    key_passphrase_file: Optional[Path] = typer.Option(None, "--key-passphrase-file", dir_okay=False),
) -> None:
    """Sign a request (fresh nonce, the time) with the member's key and certificate."""
    from tclearn.pki import member_id_from_cert
    from tclearn.vault.smime import build_request, request_payload
    from tclearn.fsutil import atomic_write

    if action not in ("download", "use"):
        raise ConfigError("--action must be download or use")
    private, certificate = _load_key_and_cert(key, cert, key_passphrase_file)
    member = member_id_from_cert(certificate)
    atomic_write(out, build_request(request_payload(member, action, version, int(time.time() * 1000), ref),
                                    private, certificate))
    typer.echo(f"request by {member} for {action} of {version[:16]}… written to {out}")


@app.command("serve")
@handle_errors
def serve_command(
    vault: Path = typer.Option(..., "--vault", exists=True, file_okay=False, help="The vault folder."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False, help=PASS_HELP),
    ca: Path = typer.Option(..., "--ca", exists=True, dir_okay=False, help="The coalition CA certificate."),
    request: Path = typer.Option(..., "--in", exists=True, dir_okay=False, help="The signed request."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the encrypted reply."),
    chain: Optional[Path] = typer.Option(None, "--chain", exists=True, dir_okay=False, help=CHAIN_HELP),
) -> None:
    """Check a request (signature, CA, replay, policy), journal it, answer with the model encrypted for the member."""
    from tclearn.vault.smime import MAX_REQUEST_BYTES, serve_request
    from tclearn.fsutil import atomic_write

    if request.stat().st_size > MAX_REQUEST_BYTES:
        raise RequestError(f"{request} is larger than a request may be ({MAX_REQUEST_BYTES} bytes)")
    sup = open_supervisor(vault, key, passphrase_file, chain=chain)
    try:
        reply, req = serve_request(sup, request.read_bytes(), ca.read_bytes())
    finally:
        sup.close()
    atomic_write(out, reply)
    typer.echo(f"{req.action} of {req.version[:16]}… granted to {req.member}; reply written to {out}")


@app.command("open")
@handle_errors
def open_command(
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help="The member's RSA private key."),
    cert: Path = typer.Option(..., "--cert", exists=True, dir_okay=False, help="Its certificate."),
    reply: Path = typer.Option(..., "--in", exists=True, dir_okay=False, help="The encrypted reply."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the model."),
    expect_sha256: Optional[str] = typer.Option(None, "--expect-sha256",
                                                help="Refuse unless the model has this hash: the chain's model hash "
                                                     "(replies are AES-CBC, not authenticated; this check is)."),
    key_passphrase_file: Optional[Path] = typer.Option(None, "--key-passphrase-file", dir_okay=False),
) -> None:
    """Decrypt a reply with the member's key."""
    from tclearn.vault.smime import open_reply
    from tclearn.fsutil import atomic_write

    private, certificate = _load_key_and_cert(key, cert, key_passphrase_file)
    data = open_reply(reply.read_bytes(), private, certificate, expect_sha256)
    digest = hashlib.sha256(data).hexdigest()
    atomic_write(out, data, owner_only=True)
    typer.echo(f"{len(data)} bytes, sha256 {digest}, written to {out}")
