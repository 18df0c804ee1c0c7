"""`tclearn pki`: the coalition CA and member certificates.

    tclearn pki init DIR [--passphrase-file F] [--name NAME] [--days N]
    tclearn pki issue DIR MEMBER [--host NAME/IP ...] [--days N] [--passphrase-file F]
    tclearn pki sign REQUEST --ca DIR [--days N] [--passphrase-file F]
    tclearn pki list DIR
    tclearn pki fingerprint CERT

Exit codes (20-29 belong to `pki`; 2 is a usage error, as for every command):

    0   success
    20  other PKI error (unreadable directory, key and certificate do not match)
    21  no CA in DIR (run `tclearn pki init` first)
    22  the CA or the member already exists (nothing was overwritten; `sign`: a request for a name
        the CA already issued to)
    23  key file problem: wrong or missing passphrase, readable by others
    24  invalid member id, host name or IP address
    25  invalid certificate, or an enrolment request whose CSR or signature does not verify
    26  member not found
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from tclearn.pki import (
    DEFAULT_HOSTS,
    AlreadyExistsError,
    CANotFoundError,
    InvalidCertificateError,
    InvalidNameError,
    KeyFileError,
    MemberNotFoundError,
    PKIError,
    cert_fingerprint,
    init_ca,
    issue_member,
    list_members,
    load_cert,
)

__all__ = ["EXIT_CODES", "app"]

app = typer.Typer(help="Coalition CA and member TLS certificates.", no_args_is_help=True)

EXIT_CODES: dict[type[PKIError], int] = {
    CANotFoundError: 21,
    AlreadyExistsError: 22,
    KeyFileError: 23,
    InvalidNameError: 24,
    InvalidCertificateError: 25,
    MemberNotFoundError: 26,
    PKIError: 20,
}


def _fail(exc: PKIError) -> NoReturn:
    code = next(c for cls, c in EXIT_CODES.items() if isinstance(exc, cls))
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


def _read_passphrase(path: Path | None) -> bytes | None:
    """The first line of the file, without its line ending; None when no file is given."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        _fail(KeyFileError(f"cannot read passphrase file {path}: {exc.strerror}"))
    passphrase = data.splitlines()[0] if data else b""
    if not passphrase:
        _fail(KeyFileError(f"passphrase file {path} is empty"))
    return passphrase


PassphraseFile = Annotated[
    Path | None,
    typer.Option("--passphrase-file", help="File whose first line is the CA key's passphrase.", dir_okay=False),
]


@app.command("init")
def init_command(
    directory: Annotated[Path, typer.Argument(help="PKI directory to create the CA in.")],
    passphrase_file: PassphraseFile = None,
    name: Annotated[str, typer.Option(help="CA common name.")] = "TCLearn coalition CA",
    days: Annotated[int, typer.Option(help="CA validity in days.", min=1)] = 3650,
) -> None:
    """Create the coalition CA: DIR/ca.key (0600, encrypted if a passphrase is given) and DIR/ca.crt."""
    passphrase = _read_passphrase(passphrase_file)
    try:
        cert_path = init_ca(directory, passphrase=passphrase, name=name, days=days)
    except PKIError as exc:
        _fail(exc)
    typer.echo(f"CA certificate: {cert_path}")
    typer.echo(f"fingerprint:    {cert_fingerprint(cert_path.read_bytes())}")


@app.command("issue")
def issue_command(
    directory: Annotated[Path, typer.Argument(help="PKI directory holding the CA.")],
    member: Annotated[str, typer.Argument(help="Member id (the certificate's CN).")],
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Host name or IP address for the SAN; repeat for several. "
                     f"Default: {', '.join(DEFAULT_HOSTS)}."),
    ] = None,
    days: Annotated[int, typer.Option(help="Certificate validity in days (capped at the CA's).", min=1)] = 365,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Issue DIR/members/MEMBER.key (0600) and MEMBER.crt, good for TLS server and client auth."""
    passphrase = _read_passphrase(passphrase_file)
    try:
        files = issue_member(directory, member, hosts=tuple(host) if host else DEFAULT_HOSTS,
                             days=days, ca_passphrase=passphrase)
    except PKIError as exc:
        _fail(exc)
    typer.echo(f"key:         {files.key}")
    typer.echo(f"certificate: {files.cert}")
    typer.echo(f"fingerprint: {files.fingerprint}")


@app.command("sign")
def sign_command(
    request: Annotated[Path, typer.Argument(help="A site's enrolment request (from `tclearn site init`).")],
    ca: Annotated[Path, typer.Option("--ca", help="PKI directory holding the coalition CA.")],
    days: Annotated[int, typer.Option(help="Certificate validity in days (capped at the CA's).", min=1)] = 365,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Sign a site's request into DIR/members/NAME.crt; print its [[members]] entry for coalition.toml.

    Both proofs are checked (the CSR's own signature, the site's Ed25519 signature of the whole
    request); a name the CA already issued to is refused. No private key is made or seen here.
    """
    from tclearn.pki.requests import sign_request

    passphrase = _read_passphrase(passphrase_file)
    try:
        signed = sign_request(ca, request, days=days, ca_passphrase=passphrase)
    except PKIError as exc:
        _fail(exc)
    typer.echo(f"certificate: {signed.cert}")
    typer.echo(f"fingerprint: {signed.fingerprint}")
    typer.echo(f"entry:       {signed.entry}  (for coalition.toml:)")
    typer.echo(signed.members_toml(), nl=False)


@app.command("list")
def list_command(directory: Annotated[Path, typer.Argument(help="PKI directory.")]) -> None:
    """Members with a certificate in DIR: id, fingerprint, expiry."""
    try:
        members = list_members(directory)
        for files in members:
            expiry = load_cert(files.cert.read_bytes()).not_valid_after_utc
            typer.echo(f"{files.member_id}\t{files.fingerprint}\texpires {expiry:%Y-%m-%d}")
    except PKIError as exc:
        _fail(exc)


@app.command("fingerprint")
def fingerprint_command(cert: Annotated[Path, typer.Argument(help="Certificate file (PEM or DER).")]) -> None:
    """Print a certificate's fingerprint as genesis records it (sha256:<hex>)."""
    try:
        data = cert.read_bytes()
    except OSError as exc:
        _fail(InvalidCertificateError(f"cannot read {cert}: {exc.strerror}"))
    try:
        typer.echo(cert_fingerprint(data))
    except PKIError as exc:
        _fail(exc)
