"""`tclearn init coalition.toml --out OUT` in kit mode: genesis and one kit per member, no private key made.

Kit mode is chosen by the config: its members carry the `certificate` the
coalition CA signed from their enrolment requests (`tclearn pki sign` prints
each `[[members]]` entry: `id`, `public_key`, `certificate`, `url`), and a
`[kit]` table names the CA certificate and G:

    [kit]
    ca = "pki/ca.crt"          # the coalition CA's certificate
    test_set = "G.npz"         # G: a .npz file, a folder of them, or a Decathlon folder
    test_set_kind = "npz"      # npz (default) or nifti
    tick_ms = 100              # optional node settings, the same for every kit

Genesis records each member's certificate fingerprint (each certificate is
checked against the CA and must name its member) and G's hash
(`tclearn data hash`; a `[test_set] hash` in the config must agree). It is
signed by the founder, whose key stays at the founder's site: give it with
`--founder-key` (the operator runs `init` at the founding site). Written:

    OUT/genesis.block
    OUT/kits/<id>/node.toml, genesis.block, ca.crt, <id>.crt, members.toml, test_set/<G>

A kit goes into its site's folder as D/kit/; `tclearn site join D/kit --dir D`
checks it against the site's own keys and data. Nothing is written until
everything is checked; a failed run leaves OUT as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

from tclearn.data.content_hash import data_hash
from tclearn.errors import ConfigError, IdentityError, StoreError
from tclearn.founding import plan_from_config
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig, parse_config
from tclearn.node.config import NodeConfig, PeerInfo
from tclearn.node.data_spec import DataSpec
from tclearn.pki.certs import cert_fingerprint, load_cert, normalize_fingerprint, verify_member_cert
from tclearn.pki.errors import PKIError
from tclearn.pki.requests import check_url

__all__ = ["KIT_FIELDS", "KIT_MEMBER_FIELDS", "Kit", "KitPlan", "is_kit_config", "plan_kits", "write_kits"]

KIT_FIELDS = frozenset({"ca", "test_set", "test_set_kind", "tick_ms", "proposal_timeout_ticks"})
KIT_MEMBER_FIELDS = frozenset({"certificate", "url"})
GENESIS_FILE = "genesis.block"
KITS_DIR = "kits"


def is_kit_config(data: Mapping[str, Any]) -> bool:
    """Kit mode: some member names a certificate (or the config has a [kit] table)."""
    members = data.get("members")
    with_cert = isinstance(members, list) and any(
        isinstance(m, Mapping) and ("certificate" in m or "url" in m) for m in members)
    return with_cert or "kit" in data


@dataclass(frozen=True)
class Kit:
    """One member's kit: its node settings and the files it carries."""

    member_id: str
    node: NodeConfig
    certificate: Path


@dataclass(frozen=True)
class KitPlan:
    """Everything `write_kits` writes, checked."""

    out: Path
    genesis: Block
    config: GenesisConfig
    ca: Path
    test_set: Path
    test_set_kind: str
    kits: tuple[Kit, ...]


def _path(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"missing field {where} (a path)")
    p = Path(value)
    return p if p.is_absolute() else base / p


def _members(data: Mapping[str, Any], base: Path, ca: Path) -> list[dict[str, Any]]:
    """The member tables with `cert_fingerprint` filled in from each checked certificate."""
    try:
        ca_cert = load_cert(ca.read_bytes())
    except OSError as exc:
        raise ConfigError(f"kit.ca {ca}: {exc.strerror or exc}") from None
    now = datetime.now(UTC)
    members = []
    for i, m in enumerate(data["members"]):
        where = f"members[{i}]"
        if not isinstance(m, Mapping):
            raise ConfigError(f"{where} must be a table")
        for key in ("id", "public_key", "certificate", "url"):
            if key not in m:
                raise ConfigError(f"kit mode: {where} needs {key} (from `tclearn pki sign`); "
                                  f"no member key is generated here")
        cert_path = _path(base, m["certificate"], f"{where}.certificate")
        try:
            cert = cert_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}.certificate {cert_path}: {exc.strerror or exc}") from None
        try:
            named = verify_member_cert(cert, ca_cert, now)
            check_url(str(m["url"]))
        except PKIError as exc:
            raise ConfigError(f"{where} ({m['id']}): {exc}") from None
        if named != m["id"]:
            raise ConfigError(f"{where}: certificate {cert_path} names {named!r}, not {m['id']!r}")
        fingerprint = cert_fingerprint(cert)
        if m.get("cert_fingerprint") and normalize_fingerprint(str(m["cert_fingerprint"])) != fingerprint:
            raise ConfigError(f"{where}.cert_fingerprint differs from that of {cert_path} ({fingerprint})")
        table = {k: v for k, v in m.items() if k not in KIT_MEMBER_FIELDS}
        table["cert_fingerprint"] = fingerprint
        members.append({**table, "_cert": cert_path, "_url": str(m["url"])})
    return members


def plan_kits(config_path: Path, data: Mapping[str, Any], out: Path, founder: Identity | None,
              timestamp_ms: int | None) -> KitPlan:
    """Check the config, certificates, G and founder; build genesis (`tclearn.founding`) and each kit's settings."""
    base = config_path.parent
    if (out / GENESIS_FILE).exists() or (out / KITS_DIR).exists():
        raise StoreError(f"{out} already holds a genesis block or kits: refusing to overwrite them")
    kit = data.get("kit")
    if not isinstance(kit, Mapping):
        raise ConfigError("kit mode needs a [kit] table with ca and test_set")
    unknown = sorted(set(kit) - KIT_FIELDS)
    if unknown:
        raise ConfigError(f"unknown field kit.{unknown[0]} (known: {', '.join(sorted(KIT_FIELDS))})")
    ca = _path(base, kit.get("ca"), "kit.ca")
    test_set = _path(base, kit.get("test_set"), "kit.test_set")
    test_kind = str(kit.get("test_set_kind", "npz"))
    DataSpec(test_kind, test_set)  # checks the kind
    g_hash = data_hash(test_set)
    recorded = data.get("test_set", {}).get("hash", "0" * 64) if isinstance(data.get("test_set"), Mapping) else None
    if recorded not in (None, "0" * 64, g_hash):
        raise ConfigError(f"[test_set] hash {recorded} is not the hash of kit.test_set {test_set} ({g_hash})")
    members = _members(data, base, ca)
    clean = {**data, "members": [{k: v for k, v in m.items() if not k.startswith("_")} for m in members],
             "test_set": {"hash": g_hash}}
    clean.pop("kit", None)
    config, missing = parse_config(clean)
    if missing:
        raise ConfigError(f"kit mode: members {', '.join(missing)} have no public_key")
    if founder is None:
        raise IdentityError(f"kit mode: give the founder {config.founder_id}'s identity key with --founder-key "
                            f"(genesis is signed at the founding site; init generates no key)")
    expected = next(m.public_key for m in config.members if m.member_id == config.founder_id)
    if founder.member_id != config.founder_id or founder.public_key != expected:
        raise IdentityError(f"--founder-key is not the key of the founder {config.founder_id} in the config")
    plan = plan_from_config(config, founder, timestamp_ms)  # no identity made: every site keeps its own key
    config, genesis = plan.config, plan.genesis()
    peers = tuple(PeerInfo(m["id"], m["_url"], m["cert_fingerprint"]) for m in members)
    kits = []
    for index, m in enumerate(members):
        host, port = check_url(m["_url"])
        kit_test = Path("test_set") / test_set.name
        node = NodeConfig(
            member_id=m["id"], data_dir=Path("../state"), identity_key=Path(f"../identity/{m['id']}.key"),
            tls_cert=Path(f"{m['id']}.crt"), tls_key=Path(f"../tls/{m['id']}.key"), ca_cert=Path("ca.crt"),
            genesis=Path(GENESIS_FILE), port=port, fingerprint=m["cert_fingerprint"], host=host, task=config.task,
            seed=config.model_seed, index=index, partners=len(members), tick_ms=int(kit.get("tick_ms", 100)),
            proposal_timeout_ticks=int(kit.get("proposal_timeout_ticks", 100)), peers=peers,
            test_set=DataSpec(test_kind, kit_test))
        kits.append(Kit(m["id"], node, m["_cert"]))
    return KitPlan(out, genesis, config, ca, test_set, test_kind, tuple(kits))


def _members_toml(plan: KitPlan) -> str:
    lines = [f"# The members of coalition {plan.config.coalition_id} (genesis {plan.genesis.block_hash})"]
    for m, kit in zip(plan.config.members, plan.kits):
        lines += ["", "[[members]]", f"id = {json.dumps(m.member_id)}", f"url = {json.dumps(kit.node.url)}",
                  f"fingerprint = {json.dumps(m.cert_fingerprint)}", f"public_key = {json.dumps(m.public_key.hex())}"]
    return "\n".join(lines) + "\n"


def _kit_node_toml(node: NodeConfig) -> str:
    text = node.to_toml()
    # the paths a kit writes are relative to the kit folder; to_toml writes them as given
    return ("# This member's node settings, from the coalition's operator. Put this folder in the site's\n"
            "# folder as kit/, then run `tclearn site join kit --dir SITE --data PATH --data-kind KIND`.\n" + text)


def write_kits(plan: KitPlan) -> None:
    """Write genesis and the kits under a temporary name, then rename; undo on failure."""
    out = plan.out
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{KITS_DIR}.{os.getpid()}.tmp"
    try:
        for kit in plan.kits:
            d = tmp / kit.member_id
            (d / "test_set").mkdir(parents=True)
            (d / GENESIS_FILE).write_bytes(plan.genesis.to_bytes())
            shutil.copyfile(plan.ca, d / "ca.crt")
            shutil.copyfile(kit.certificate, d / f"{kit.member_id}.crt")
            if plan.test_set.is_dir():
                shutil.copytree(plan.test_set, d / "test_set" / plan.test_set.name)
            else:
                shutil.copyfile(plan.test_set, d / "test_set" / plan.test_set.name)
            (d / "members.toml").write_text(_members_toml(plan))
            (d / "node.toml").write_text(_kit_node_toml(kit.node))
        genesis_tmp = out / f".{GENESIS_FILE}.{os.getpid()}.tmp"
        genesis_tmp.write_bytes(plan.genesis.to_bytes())
        os.replace(tmp, out / KITS_DIR)
        os.replace(genesis_tmp, out / GENESIS_FILE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(out / KITS_DIR, ignore_errors=True) if not (out / GENESIS_FILE).exists() else None
        Path(out / f".{GENESIS_FILE}.{os.getpid()}.tmp").unlink(missing_ok=True)
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        raise
