"""`tclearn vault` and `tclearn audit`: the supervisor's encrypted vault and its audit journal (level B).

    tclearn vault init DIR --key SUP.key --passphrase-file F --member M [--member M ...] [--policy FILE]
    tclearn vault put DIR FILE --key SUP.key --passphrase-file F [--kind model] [--id HASH]
    tclearn vault get DIR ID --out FILE --key SUP.key --passphrase-file F
    tclearn vault policy show DIR [--at TIME] | tclearn vault policy set DIR FILE --key ... --passphrase-file F
    tclearn vault serve --config vault.toml [--max-seconds S]     (mutual TLS 1.3, see `tclearn.vault.service`)
    tclearn audit verify DIR [--supervisor-pub HEX] [--anchor SEQ:HASH ...] [--chain chain.db]
    tclearn audit head DIR                                         (SEQ:HASH to keep as an anchor)
    tclearn audit who DIR --version V [--before TIME] [--json]
    tclearn audit show DIR [--json] [--member M] [--version V]

TIME is ISO 8601 (`2026-09-21T10:00:00Z`) or milliseconds since the epoch.
The supervisor's key is an Ed25519 identity (`tclearn init` makes them); the
vault passphrase unlocks the key-encryption key. Exit codes 31-39 belong to
the vault (see `tclearn.cli.errors`): 31 access refused, 32 integrity
(a tampered object or journal), 33 bad S/MIME request, 34 vault locked
(wrong passphrase, no vault), 35 no such object, 39 other vault error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

import typer

from tclearn.cli.errors import handle_errors, register_exit_code
from tclearn.errors import ConfigError
from tclearn.vault.errors import AccessDenied, IntegrityError, ObjectNotFound, RequestError, VaultError, VaultLockedError

app = typer.Typer(help="The supervisor's encrypted vault (level B).", no_args_is_help=True)
policy_app = typer.Typer(help="Show or install the vault's access policy.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
audit_app = typer.Typer(help="Verify and query the vault's audit journal.", no_args_is_help=True)

EXIT_CODES = {AccessDenied: 31, IntegrityError: 32, RequestError: 33, VaultLockedError: 34, ObjectNotFound: 35,
              VaultError: 39}
for _cls, _code in EXIT_CODES.items():
    register_exit_code(_cls, _code)

KEY_HELP = "The supervisor's Ed25519 identity key (signs the journal)."
PASS_HELP = "File whose first line is the vault passphrase (unlocks the key-encryption key)."


def parse_time_ms(text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"not a time: {text!r} (ISO 8601 or ms since the epoch)") from None
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _vault_passphrase(path: Path) -> bytes:
    from tclearn.cli.init import read_passphrase

    value = read_passphrase(path)
    assert value is not None
    return value


def strengths_from_chain(chain: Path | None) -> dict[str, float] | None:
    """The members' strengths at the head of a chain file, after verifying the whole chain (quotas follow them)."""
    if chain is None:
        return None
    from tclearn.cli.chain import certificate_check
    from tclearn.ledger.sqlite_store import open_store
    from tclearn.ledger.verify import verify_chain

    with open_store(chain, read_only=True) as store:
        return verify_chain(store, certificate_check=certificate_check()[0]).strengths()


def open_supervisor(directory: Path, key: Path, passphrase_file: Path, key_passphrase_file: Path | None = None,
                    chain: Path | None = None) -> Any:
    from tclearn.cli.init import read_passphrase
    from tclearn.identity import load_identity
    from tclearn.vault.supervisor import Supervisor

    identity = load_identity(key, None, read_passphrase(key_passphrase_file))
    strengths = strengths_from_chain(chain)
    return Supervisor.open(directory, _vault_passphrase(passphrase_file), identity, strengths=strengths)


CHAIN_HELP = "The coalition's chain (verified): quotas follow the members' strengths at its head (default: 1/N)."


@app.command("init")
@handle_errors
def init_command(
    directory: Path = typer.Argument(..., file_okay=False, help="Folder of the new vault."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False, help=PASS_HELP),
    member: list[str] = typer.Option([], "--member", help="A coalition member (repeat); default policy: partners."),
    policy: Optional[Path] = typer.Option(None, "--policy", exists=True, dir_okay=False, help="Initial policy (JSON)."),
    key_passphrase_file: Optional[Path] = typer.Option(None, "--key-passphrase-file", dir_okay=False),
    scrypt_n: int = typer.Option(2**17, "--scrypt-n", hidden=True, help="scrypt cost of the passphrase (tests)."),
) -> None:
    """Create a vault: its wrapped key, an empty store, a journal whose first entry installs the policy."""
    from tclearn.cli.init import read_passphrase
    from tclearn.identity import load_identity
    from tclearn.vault.policy import load_policy_text
    from tclearn.vault.supervisor import Supervisor

    doc = load_policy_text(policy.read_text()) if policy else None
    if not member and doc is None:
        raise ConfigError("name the members (--member, repeated) or give a --policy")
    identity = load_identity(key, None, read_passphrase(key_passphrase_file))
    sup = Supervisor.create(directory, _vault_passphrase(passphrase_file), identity, member, policy=doc,
                            scrypt_n=scrypt_n)
    sup.close()
    typer.echo(f"vault {directory}: supervisor {identity.member_id}, policy {directory / 'policy.json'}")


@app.command("put")
@handle_errors
def put_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The object (a safetensors model, say)."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False, help=PASS_HELP),
    kind: str = typer.Option("model", "--kind", help="model, increment, data-ids…"),
    object_id: Optional[str] = typer.Option(None, "--id", help="The chain's hash of it (default: SHA-256 of the file)."),
) -> None:
    """Store a file encrypted in the vault (journaled); print its id."""
    sup = open_supervisor(directory, key, passphrase_file)
    try:
        typer.echo(sup.put_local(file.read_bytes(), kind, {"name": file.name}, object_id).object_id)
    finally:
        sup.close()


@app.command("get")
@handle_errors
def get_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    object_id: str = typer.Argument(...),
    out: Path = typer.Option(..., "--out", dir_okay=False),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False, help=PASS_HELP),
) -> None:
    """Decrypt an object to a file (the supervisor's read, journaled)."""
    from tclearn.fsutil import atomic_write

    sup = open_supervisor(directory, key, passphrase_file)
    try:
        data, _ = sup.get_local(object_id)
    finally:
        sup.close()
    atomic_write(out, data, owner_only=True)


def _verified_entries(directory: Path, supervisor_pub: str | None) -> list[Any]:
    from tclearn.vault.journal import verify_journal
    from tclearn.vault.supervisor import JOURNAL_FILE, SUPERVISOR_PUB

    pub = supervisor_pub or (directory / SUPERVISOR_PUB).read_text().strip()
    try:
        key = bytes.fromhex(pub)
    except ValueError:
        raise ConfigError("--supervisor-pub must be the supervisor's Ed25519 public key in hex") from None
    if not (directory / JOURNAL_FILE).exists():
        raise IntegrityError(f"no journal in {directory}")
    return verify_journal(directory / JOURNAL_FILE, key)


PUB_HELP = "The supervisor's Ed25519 public key (hex), as genesis or a member's records know it; default: DIR's."


@policy_app.command("show")
@handle_errors
def policy_show(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    at: Optional[str] = typer.Option(None, "--at", help="The policy in force at this time (default: now)."),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub", help=PUB_HELP),
) -> None:
    """Print the policy in force (at a time), rebuilt from the verified journal."""
    from tclearn.vault.policy import policy_at

    doc = policy_at(_verified_entries(directory, supervisor_pub), parse_time_ms(at))
    if doc is None:
        raise VaultError("no policy was in force at that time")
    typer.echo(json.dumps(doc, indent=2, sort_keys=True))


@policy_app.command("set")
@handle_errors
def policy_set(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The new policy (JSON)."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False, help=KEY_HELP),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False, help=PASS_HELP),
    reason: str = typer.Option("", "--reason", help="Why (journaled)."),
) -> None:
    """Install a new policy: validated, journaled and signed, then written to DIR/policy.json."""
    from tclearn.vault.policy import load_policy_text

    doc = load_policy_text(file.read_text())
    sup = open_supervisor(directory, key, passphrase_file)
    try:
        entry = sup.set_policy(doc, by=sup.journal.signer_id, reason=reason)
    finally:
        sup.close()
    typer.echo(f"policy {entry.object} in force from {_iso(entry.time_ms)} (journal entry {entry.seq})")


@audit_app.command("verify")
@handle_errors
def audit_verify(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="The vault folder."),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub", help=PUB_HELP),
    anchor: list[str] = typer.Option([], "--anchor", help="SEQ:HASH of a head kept earlier (`tclearn audit head`); "
                                                          "repeat. Detects a journal rolled back with its head."),
    chain: Optional[Path] = typer.Option(None, "--chain", exists=True, dir_okay=False,
                                         help="A level-B/C chain (verified first): the journal must verify under the "
                                              "supervisor key genesis records and hold every journal head the "
                                              "chain's proposals anchor."),
) -> None:
    """Check every entry's hash, signature and link and the signed head (exit 32 on any edit, cut or reordering)."""
    from tclearn.vault.journal import check_anchors

    entries = _verified_entries(directory, supervisor_pub)
    check_anchors(entries, anchor)
    last = f", last {_iso(entries[-1].time_ms)}" if entries else ""
    typer.echo(f"journal ok: {len(entries)} entries{last}")
    if chain is not None:
        checked = _check_chain_anchors(directory, chain, supervisor_pub)
        typer.echo(f"chain anchors ok: {len(checked.anchors)} journal heads anchored in {chain.name}"
                   + (f", the last at entry {checked.last_anchor_seq}" if checked.last_anchor_seq is not None else "")
                   + "; supervisor key as in genesis")


def _check_chain_anchors(directory: Path, chain: Path, supervisor_pub: str | None) -> Any:
    from tclearn.cli.chain import certificate_check
    from tclearn.ledger.sqlite_store import open_store
    from tclearn.ledger.verify import verify_chain
    from tclearn.vault.anchors import verify_journal_against_chain
    from tclearn.vault.supervisor import JOURNAL_FILE, SUPERVISOR_PUB

    with open_store(chain, read_only=True) as store:
        verify_chain(store, certificate_check=certificate_check()[0])
        blocks = list(store)
    pub_path = directory / SUPERVISOR_PUB
    pub = supervisor_pub or (pub_path.read_text().strip() if pub_path.exists() else None)
    return verify_journal_against_chain(directory / JOURNAL_FILE, blocks, bytes.fromhex(pub) if pub else None)


@audit_app.command("head")
@handle_errors
def audit_head(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub", help=PUB_HELP),
) -> None:
    """Print SEQ:HASH of the verified journal's last entry: keep it, and pass it to `audit verify --anchor` later."""
    entries = _verified_entries(directory, supervisor_pub)
    if not entries:
        raise IntegrityError("the journal is empty")
    typer.echo(f"{entries[-1].seq}:{entries[-1].hash}")


@audit_app.command("who")
@handle_errors
def audit_who(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    version: str = typer.Option(..., "--version", help="The model version (hash)."),
    before: Optional[str] = typer.Option(None, "--before", help="Only access before this time (the leak)."),
    as_json: bool = typer.Option(False, "--json"),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub", help=PUB_HELP),
) -> None:
    """Who held VERSION (granted use, download or publish) before a time, from the verified journal."""
    from tclearn.vault.journal import who_held

    rows = who_held(_verified_entries(directory, supervisor_pub), version, parse_time_ms(before))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        acts = ", ".join(f"{a}×{n}" for a, n in sorted(r["actions"].items()))
        typer.echo(f"{r['member']}\tfirst {_iso(r['first_ms'])}\tlast {_iso(r['last_ms'])}\t{acts}")
    if not rows:
        typer.echo("nobody")


@audit_app.command("show")
@handle_errors
def audit_show(
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    as_json: bool = typer.Option(False, "--json", help="JSON lines, as stored."),
    member: Optional[str] = typer.Option(None, "--member"),
    version: Optional[str] = typer.Option(None, "--version"),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub", help=PUB_HELP),
) -> None:
    """Print the verified journal, one entry a line (time, who, action, object, outcome, reason, ref)."""
    for e in _verified_entries(directory, supervisor_pub):
        if (member and e.actor != member) or (version and e.object != version):
            continue
        if as_json:
            typer.echo(json.dumps(e.to_json(), sort_keys=True))
        else:
            typer.echo(f"{e.seq}\t{_iso(e.time_ms)}\t{e.actor}\t{e.action}\t{(e.object or '-')[:16]}\t{e.outcome}"
                       f"\t{e.reason}\t{e.ref}")


@app.command("serve")
@handle_errors
def serve_command(
    config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="vault.toml"),
    max_seconds: float = typer.Option(0.0, "--max-seconds", min=0.0, help="Stop after this long (0: until SIGTERM)."),
    chain: Optional[Path] = typer.Option(None, "--chain", exists=True, dir_okay=False, help=CHAIN_HELP),
) -> None:
    """Serve the vault over mutual TLS 1.3 to the members listed in the config, until SIGTERM / Ctrl-C."""
    import signal
    import threading

    from tclearn.transport import MemberAllowList, NodeServer, server_context
    from tclearn.vault.service import VaultServiceConfig, vault_router

    cfg = VaultServiceConfig.load(config)
    sup = open_supervisor(cfg.vault_dir, cfg.supervisor_key, cfg.passphrase_file, chain=chain)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server = NodeServer(vault_router(sup), server_context(cfg.ca_cert, cfg.tls_cert, cfg.tls_key),
                            MemberAllowList(cfg.members), host=cfg.host, port=cfg.port,
                            member_id=sup.journal.signer_id).start()
        typer.echo(f"vault {cfg.vault_dir} serving at {server.url} for {len(cfg.members)} members", err=True)
        try:
            stop.wait(max_seconds or None)
        finally:
            server.stop()
    finally:
        sup.close()
        signal.signal(signal.SIGTERM, previous)
