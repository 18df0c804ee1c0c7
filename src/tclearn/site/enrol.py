"""`tclearn site init NAME --host H --port P --dir D`: a site's keys and its enrolment request, made at the site.

Layout of the site folder D (nothing in it but the request ever leaves it):

    D/site.toml                  who and where: member id, host, port
    D/identity/NAME.key, .pub    the Ed25519 identity (0600): signs blocks and votes
    D/tls/NAME.key               the TLS key, ECDSA P-256 (0600)
    D/NAME.request.toml          the enrolment request for the operator (`tclearn pki sign`)

`tclearn site join` later adds D/kit/ (the operator's kit), D/node.toml and
D/state/ (chain, models, log).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tclearn.errors import ConfigError, StoreError
from tclearn.identity import Identity, check_member_id, load_identity, save_identity
from tclearn.ledger.genesis import load_config
from tclearn.pki.certs import generate_key
from tclearn.pki.requests import build_request, check_url
from tclearn.pki.store import load_private_key, write_owner_only

__all__ = ["SiteFiles", "init_site", "load_site"]


@dataclass(frozen=True)
class SiteFiles:
    """The files of a site folder."""

    root: Path
    member_id: str
    host: str
    port: int

    @property
    def config(self) -> Path:
        return self.root / "site.toml"

    @property
    def identity_key(self) -> Path:
        return self.root / "identity" / f"{self.member_id}.key"

    @property
    def tls_key(self) -> Path:
        return self.root / "tls" / f"{self.member_id}.key"

    @property
    def request(self) -> Path:
        return self.root / f"{self.member_id}.request.toml"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def identity(self) -> Identity:
        return load_identity(self.identity_key, self.member_id)

    def tls_public_key(self) -> object:
        return load_private_key(self.tls_key).public_key()


def init_site(member_id: str, host: str, port: int, directory: Path) -> SiteFiles:
    """Make the site's identity and TLS key and its request; refuse a folder that already holds a site."""
    check_member_id(member_id)
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must lie in 1..65535, got {port}")
    check_url(f"https://{host}:{port}")
    directory = Path(directory)
    site = SiteFiles(directory, member_id, host, port)
    if site.config.exists() or site.identity_key.exists() or site.tls_key.exists():
        raise StoreError(f"{directory} already holds a site ({site.config}): refusing to replace its keys")
    existed = directory.exists()
    try:
        (directory / "identity").mkdir(mode=0o700, parents=True, exist_ok=True)
        (directory / "tls").mkdir(mode=0o700, exist_ok=True)
        identity = Identity.generate(member_id)
        save_identity(identity, directory / "identity")
        tls_key = generate_key()
        write_owner_only(site.tls_key, tls_key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
        site.request.write_text(build_request(identity, tls_key, host, port))
        site.config.write_text("[site]\n" f"member_id = {json.dumps(member_id)}\n" f"host = {json.dumps(host)}\n"
                               f"port = {port}\n")
    except BaseException:
        if not existed:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            for path in (site.config, site.request, site.identity_key, site.identity_key.with_suffix(".pub"),
                         site.tls_key):
                path.unlink(missing_ok=True)
        raise
    return site


def load_site(directory: Path) -> SiteFiles:
    """The site of folder `directory` (ConfigError if `tclearn site init` did not make one there)."""
    path = Path(directory) / "site.toml"
    if not path.is_file():
        raise ConfigError(f"no site in {directory} (no site.toml; run `tclearn site init` first)")
    table = load_config(path, "site config").get("site")
    try:
        assert isinstance(table, dict)
        return SiteFiles(Path(directory), check_member_id(str(table["member_id"])), str(table["host"]),
                         int(table["port"]))
    except (AssertionError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: invalid [site] section: {exc}") from None
