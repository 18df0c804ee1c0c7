"""`tclearn site join KIT --dir D --data PATH --data-kind KIND`: a kit checked against the site, node.toml written.

Before the site's node ever starts, the kit must be this site's, for this
coalition: the kit names this site's member id and URL, its genesis lists this
site's Ed25519 key under that id, its certificate holds this site's TLS key,
was issued by the kit's CA and has the fingerprint genesis records, its G
hashes to genesis's `test_set.hash`, and this site's own data fit the task.
Anything else is refused in one line (a kit for another coalition, most
often) and nothing is written. Then D/node.toml points at the site's keys, the
kit's files, the site's data and D/state/.

A joining kit (`tclearn site kit`, marked by joining.toml) is for a site that
genesis does not list: it is checked the same way, except that the site's
Ed25519 key must be the one joining.toml records (the membership block will
carry it) and genesis must *not* list the site (a founding member joins with
its `tclearn init` kit). Its node then waits for the membership block that
adds it (`tclearn.node.joining`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from tclearn.errors import ConfigError, StoreError
from tclearn.ledger.block import Block
from tclearn.node.config import NodeConfig
from tclearn.node.data_source import member_data, task_from_genesis
from tclearn.node.data_spec import DataSpec
from tclearn.pki.certs import cert_fingerprint, load_cert, verify_member_cert
from tclearn.pki.errors import PKIError
from tclearn.site.enrol import SiteFiles, load_site
from tclearn.site.joining_kit import JoiningMark, read_joining_mark

__all__ = ["check_kit", "join_kit"]


def _joining_identity_problem(mark: JoiningMark, site: SiteFiles, listed: bool, coalition: str) -> str | None:
    if mark.member_id != site.member_id:
        return f"this joining kit is for member {mark.member_id!r}; this site is {site.member_id!r}"
    if listed:
        return (f"{site.member_id!r} is already listed in the genesis of {coalition!r}: join with the kit "
                f"`tclearn init` wrote, not a joining kit")
    if mark.public_key != site.identity().public_key:
        return f"this joining kit records another identity key for {site.member_id!r} than this site's"
    return None


def _rel(path: Path, base: Path) -> Path:
    return Path(os.path.relpath(path.absolute(), base.absolute()))


def check_kit(kit: NodeConfig, site: SiteFiles, joining: JoiningMark | None = None) -> Block:
    """The kit's genesis, once the kit is shown to be this site's (ConfigError naming what differs).

    `joining`: the kit's joining.toml, for a site genesis does not list (`tclearn site kit`).
    """
    if kit.member_id != site.member_id:
        raise ConfigError(f"this kit is for member {kit.member_id!r}; this site is {site.member_id!r}")
    try:
        genesis = Block.from_bytes(kit.genesis.read_bytes())
        payload = genesis.payload["config"]
        coalition = str(payload["coalition_id"])
        members = {str(m["id"]): (bytes(m["public_key"]), str(m.get("cert_fingerprint", "")))
                   for m in payload["members"]}
    except OSError as exc:
        raise ConfigError(f"the kit's genesis {kit.genesis}: {exc.strerror or exc}") from None
    except Exception as exc:  # a damaged block of any kind
        raise ConfigError(f"the kit's genesis {kit.genesis} is not a genesis block: {exc}") from None
    identity = site.identity()
    if joining is not None:
        problem = _joining_identity_problem(joining, site, site.member_id in members, coalition)
        if problem:
            raise ConfigError(problem)
    elif members.get(site.member_id, (b"", ""))[0] != identity.public_key:
        raise ConfigError(f"this kit is for another coalition: the genesis of {coalition!r} does not list this "
                          f"site's identity key as {site.member_id!r}")
    if (kit.host, kit.port) != (site.host, site.port):
        raise ConfigError(f"the kit puts {site.member_id} at {kit.url}, but the site enrolled as {site.url}")
    try:
        cert = kit.tls_cert.read_bytes()
        ca = kit.ca_cert.read_bytes()
        verify_member_cert(cert, ca, datetime.now(UTC))
    except OSError as exc:
        raise ConfigError(f"the kit's certificates: {exc.strerror or exc}: {exc.filename}") from None
    except PKIError as exc:
        raise ConfigError(f"the kit's certificate {kit.tls_cert}: {exc}") from None
    if load_cert(cert).public_key() != site.tls_public_key():
        raise ConfigError(f"the kit's certificate {kit.tls_cert} is not for this site's TLS key {site.tls_key}")
    recorded = joining.fingerprint if joining is not None else members[site.member_id][1]
    if cert_fingerprint(cert) != recorded or cert_fingerprint(cert) != kit.fingerprint:
        where = "the kit's joining.toml and node.toml record" if joining is not None else \
            f"the genesis of {coalition!r} records"
        raise ConfigError(f"the kit's certificate is not the one {where}")
    return genesis


def join_kit(kit_dir: Path, site_dir: Path, data: DataSpec) -> Path:
    """Check the kit and this site's data, then write SITE/node.toml; return its path."""
    site = load_site(site_dir)
    target = Path(site_dir) / "node.toml"
    if target.exists():
        raise StoreError(f"{target} already exists: this site has joined (remove it to join again)")
    kit = NodeConfig.load(Path(kit_dir) / "node.toml")
    joining = read_joining_mark(Path(kit_dir))
    genesis = check_kit(kit, site, joining)
    payload = genesis.payload["config"]
    task = task_from_genesis(payload)
    # G against genesis, and this site's own data against the task: refused here, not at the first round
    member_data(data, kit.test_set, task, recorded_test_hash=str(payload["test_set_hash"]), seed=kit.seed,
                partners=kit.partners, index=kit.index)
    base = Path(site_dir)
    node = replace(
        kit, data_dir=Path("state"), identity_key=_rel(site.identity_key, base), tls_key=_rel(site.tls_key, base),
        tls_cert=_rel(kit.tls_cert, base), ca_cert=_rel(kit.ca_cert, base), genesis=_rel(kit.genesis, base),
        data=replace(data, path=None if data.path is None else Path(data.path).absolute()),
        test_set=replace(kit.test_set, path=None if kit.test_set.path is None else _rel(kit.test_set.path, base)))
    target.write_text(f"# {site.member_id} in coalition {payload['coalition_id']} (from the kit in {kit_dir})\n"
                      + node.to_toml())
    return target
