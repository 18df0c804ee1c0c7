"""`tclearn init CONFIG --out DIR`: found a coalition's chain from its TOML config.

Reads and validates the config (see `examples/coalition.toml`), generates an
Ed25519 key for every member that lacks a `public_key` (DIR/keys/<id>.key,
mode 0600, encrypted with `--passphrase-file` if given; <id>.pub beside it),
builds the task's model from its seed and hashes it (`tclearn.learning`),
builds block 0 signed by the founder and stores it in DIR/chain.db.

Nothing is written until everything has been checked, and a run that fails
half-way removes what it wrote: a bad config, an existing chain or key, or
an unreadable passphrase leaves DIR as it was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tclearn.cli.errors import handle_errors
from tclearn.errors import ConfigError, EncodingError, IdentityError, StoreError
from tclearn.founding import generated_identities, plan_from_config, resolve_initial_model
from tclearn.identity import Identity, load_identity, save_identity
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig, load_config, parse_config
from tclearn.ledger.hyperparams import GENESIS_KEYS
from tclearn.ledger.policies import LEARNING_RATE_POLICY_KEYS
from tclearn.ledger.sqlite_store import SQLiteChainStore

__all__ = ["init_command", "resolve_initial_model", "check_known_fields", "KNOWN_FIELDS", "CHAIN_FILE", "KEYS_DIR"]

CHAIN_FILE = "chain.db"
KEYS_DIR = "keys"

# What `parse_config` reads; anything else is most likely a typo, and a typo
# in an optional field would otherwise be silently ignored.
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "coalition": frozenset({"id", "level", "supervisor", "founder"}),
    "members": frozenset({"id", "public_key", "cert_fingerprint", "certificate", "url"}),  # the last two: kit mode
    "model": frozenset({"task", "architecture", "config", "seed"}),
    "hyperparams": frozenset(GENESIS_KEYS),
    "consensus": frozenset({"lambda", "committee_size", "revert_authorized", "max_drop", "stop_patience",
                            "stop_min_delta"}),
    "adaptive_lr": LEARNING_RATE_POLICY_KEYS,
    "test_set": frozenset({"hash"}),
    "kit": frozenset({"ca", "test_set", "test_set_kind", "tick_ms", "proposal_timeout_ticks"}),  # tclearn.site.kits
}


def check_known_fields(data: Mapping[str, Any]) -> None:
    """Refuse sections and fields the config format does not have."""
    for section, value in data.items():
        if section not in KNOWN_FIELDS:
            raise ConfigError(f"unknown section [{section}] (known: {', '.join(sorted(KNOWN_FIELDS))})")
        tables = value if isinstance(value, list) else [value]
        for i, table in enumerate(tables):
            if not isinstance(table, Mapping):
                continue  # parse_config says what is wrong with it
            where = f"{section}[{i}]" if isinstance(value, list) else section
            for key in table:
                if key not in KNOWN_FIELDS[section]:
                    raise ConfigError(
                        f"unknown field {where}.{key} (known: {', '.join(sorted(KNOWN_FIELDS[section]))})"
                    )


def read_passphrase(path: Path | None) -> bytes | None:
    """The first line of the file, without its line ending; None when no file is given."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    passphrase = data.splitlines()[0] if data else b""
    if not passphrase:
        raise IdentityError(f"passphrase file {path} is empty")
    return passphrase


def _founder_identity(
    config_data: Mapping[str, Any], generated: dict[str, Identity], founder_key: Path | None,
    passphrase: bytes | None,
) -> Identity:
    """The founder signs genesis: its generated key, or the one in `--founder-key`."""
    config, _ = parse_config(config_data, public_keys={m: i.public_key for m, i in generated.items()})
    founder_id = config.founder_id
    if founder_id in generated:
        if founder_key is not None:
            raise ConfigError(f"--founder-key given, but the founder {founder_id} has no public_key in the "
                              f"config: init generates its key")
        return generated[founder_id]
    if founder_key is None:
        raise IdentityError(f"the founder {founder_id} has a public_key in the config: "
                            f"give its private key with --founder-key to sign the genesis block")
    founder = load_identity(founder_key, founder_id, passphrase)
    expected = next(m.public_key for m in config.members if m.member_id == founder_id)
    if founder.public_key != expected:
        raise IdentityError(f"--founder-key {founder_key} is not the key of {founder_id} in the config")
    return founder


def _plan(config_path: Path, out: Path, passphrase: bytes | None, founder_key: Path | None,
          timestamp_ms: int | None) -> tuple[GenesisConfig, dict[str, Identity], Block]:
    """Everything init will write, checked, before anything is written."""
    data = load_config(config_path)
    check_known_fields(data)
    _, missing = parse_config(data)
    if out.exists() and not out.is_dir():
        raise StoreError(f"--out {out} exists and is not a directory")
    if (out / CHAIN_FILE).exists():
        raise StoreError(f"{out / CHAIN_FILE} already exists: refusing to overwrite a chain")
    for member in missing:
        for suffix in (".key", ".pub"):
            if (out / KEYS_DIR / f"{member}{suffix}").exists():
                raise IdentityError(f"{out / KEYS_DIR / (member + suffix)} already exists: refusing to overwrite a key")
    generated = {i.member_id: i for i in generated_identities(missing)}
    founder = _founder_identity(data, generated, founder_key, passphrase)
    config, _ = parse_config(data, public_keys={m: i.public_key for m, i in generated.items()})
    plan = plan_from_config(config, founder, timestamp_ms, tuple(generated.values()))  # tclearn.founding
    try:
        genesis = plan.genesis()  # checked as every member will check it: what we store must verify
    except EncodingError as exc:  # e.g. a TOML date in [model.config]
        raise ConfigError(f"the config cannot go into the genesis block: {exc}") from None
    return plan.config, generated, genesis


def _write(out: Path, generated: dict[str, Identity], genesis: Block, passphrase: bytes | None) -> None:
    """The chain (built under a temporary name), the keys, then the chain renamed; undo on failure."""
    made_dirs = [d for d in (out / KEYS_DIR, out, *out.parents) if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    chain_tmp = out / f".{CHAIN_FILE}.{os.getpid()}.tmp"
    written: list[Path] = []
    try:
        with SQLiteChainStore(chain_tmp, create=True) as store:
            store.append(genesis)
        for identity in generated.values():
            key_path = save_identity(identity, out / KEYS_DIR, passphrase)
            written += [key_path, key_path.with_suffix(".pub")]
        os.replace(chain_tmp, out / CHAIN_FILE)
    except BaseException:
        for path in (*written, chain_tmp, Path(f"{chain_tmp}-wal"), Path(f"{chain_tmp}-shm")):
            path.unlink(missing_ok=True)
        for directory in made_dirs:  # innermost first
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()
        raise


@handle_errors
def init_command(
    config: Annotated[Path, typer.Argument(help="The coalition's TOML config (see examples/coalition.toml).",
                                           show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Directory for chain.db and keys/ (created if absent).",
                                      show_default=False)],
    passphrase_file: Annotated[Optional[Path], typer.Option(
        "--passphrase-file", help="Encrypt the generated keys with the first line of this file.")] = None,
    founder_key: Annotated[Optional[Path], typer.Option(
        "--founder-key", help="The founder's private key, when the config already has its public_key.")] = None,
    timestamp_ms: Annotated[Optional[int], typer.Option(
        "--timestamp-ms", min=0, help="Genesis time in ms since the epoch (default: now).")] = None,
) -> None:
    """Create a coalition's chain: member keys and the genesis block.

    Kit mode (members with a `certificate`, or a [kit] table: see `tclearn.site.kits`):
    OUT/genesis.block and one kit per member; no member key is generated.
    """
    passphrase = read_passphrase(passphrase_file)
    if _kit_mode(config):
        _init_kits(config, out, founder_key, passphrase, timestamp_ms)
        return
    cfg, generated, genesis = _plan(config, out, passphrase, founder_key, timestamp_ms)
    _write(out, generated, genesis, passphrase)
    typer.echo(f"coalition {cfg.coalition_id} (level {cfg.level}), {len(cfg.members)} members, "
               f"founder {cfg.founder_id}")
    for member in cfg.members:
        note = f"key generated: {out / KEYS_DIR / (member.member_id + '.key')}" if member.member_id in generated \
            else "public key from the config"
        typer.echo(f"  {member.member_id}: {member.public_key.hex()[:16]}…  {note}")
    typer.echo(f"genesis {genesis.block_hash} (model {genesis.model_hash[:12]}) stored in {out / CHAIN_FILE}")


def _kit_mode(config_path: Path) -> bool:
    from tclearn.site.kits import is_kit_config

    return is_kit_config(load_config(config_path))


def _init_kits(config_path: Path, out: Path, founder_key: Path | None, passphrase: bytes | None,
               timestamp_ms: int | None) -> None:
    """Kit mode: genesis and one kit per member (`tclearn.site.kits`)."""
    from tclearn.site.kits import plan_kits, write_kits

    data = load_config(config_path)
    check_known_fields(data)
    founder = None
    if founder_key is not None:
        config, _ = parse_config({k: v for k, v in data.items() if k != "kit"})
        founder = load_identity(founder_key, config.founder_id, passphrase)
    plan = plan_kits(config_path, data, out, founder, timestamp_ms)
    write_kits(plan)
    cfg = plan.config
    typer.echo(f"coalition {cfg.coalition_id} (level {cfg.level}), {len(cfg.members)} members, "
               f"founder {cfg.founder_id}; G {plan.test_set} hash {cfg.test_set_hash}")
    for kit in plan.kits:
        typer.echo(f"  {kit.member_id}: {kit.node.url}  kit {out / 'kits' / kit.member_id}")
    typer.echo(f"genesis {plan.genesis.block_hash} (model {plan.genesis.model_hash[:12]}) in {out / 'genesis.block'}")
