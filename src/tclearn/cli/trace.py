"""`tclearn trace`: name the member whose watermarked copy a leaked model came from (level C).

    tclearn trace SUSPECT.safetensors --vault DIR --passphrase-file F [--p-false 1e-6] [--json]
                  [--supervisor-pub HEX] [--show N]

Read-only: the vault passphrase unlocks the clean versions and the
downloads' secret keys (stored encrypted in the vault); the journal is
verified against the supervisor's public key (DIR's `supervisor.pub`, or
`--supervisor-pub`) before any of its entries is believed. The suspect is
any safetensors file (other float dtypes are converted), at most
`MAX_SUSPECT_BYTES`. Every download whose score reaches the threshold is
accused; the threshold keeps the chance of accusing anyone innocent below
`--p-false` (over all the keys tested). Exit 0 whether or not someone is
accused (the output says which); the vault's codes 31-39 on a vault error
(32 a tampered journal, 34 a wrong passphrase), 6 when the suspect is not a
model, 2 for a bad option.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import typer

from tclearn.cli.errors import handle_errors
from tclearn.errors import ConfigError
from tclearn.watermark.fingerprint import DEFAULT_FALSE_ACCUSATION

__all__ = ["trace_command", "MAX_SUSPECT_BYTES"]

MAX_SUSPECT_BYTES = 2 * 1024**3


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@handle_errors
def trace_command(
    suspect: Path = typer.Argument(..., exists=True, dir_okay=False, help="The leaked model (safetensors)."),
    vault: Path = typer.Option(..., "--vault", exists=True, file_okay=False, help="The supervisor's vault folder."),
    passphrase_file: Path = typer.Option(..., "--passphrase-file", exists=True, dir_okay=False,
                                         help="File whose first line is the vault passphrase."),
    p_false: float = typer.Option(DEFAULT_FALSE_ACCUSATION, "--p-false",
                                  help="Accept at most this chance of accusing an innocent member."),
    supervisor_pub: Optional[str] = typer.Option(None, "--supervisor-pub",
                                                 help="The supervisor's Ed25519 public key (hex); default: DIR's."),
    show: int = typer.Option(3, "--show", min=0, max=5, help="Also list this many best-scoring downloads (≤ 5)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Name the member, version and download a leaked model came from, with a score and a false-accusation bound."""
    from tclearn.cli.vault import _vault_passphrase, _verified_entries
    from tclearn.learning.serialize import canonical_state, state_from_bytes
    from tclearn.vault.storage import Vault
    from tclearn.watermark.custody import Tracer

    if not 0.0 < p_false < 1.0:
        raise ConfigError("--p-false must lie in (0, 1)")
    if suspect.stat().st_size > MAX_SUSPECT_BYTES:
        raise ConfigError(f"{suspect} is larger than {MAX_SUSPECT_BYTES} bytes")
    state = canonical_state(state_from_bytes(suspect.read_bytes(), require_canonical=False))
    entries = _verified_entries(vault, supervisor_pub)
    report = Tracer.from_vault(Vault.open(vault, _vault_passphrase(passphrase_file)), entries).trace(state, p_false)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    typer.echo(f"{report.keys_tested} watermarked downloads; {report.versions_tested} version(s) fit the suspect; "
               f"threshold {report.threshold:.2f} (p_false {p_false:g})")
    for s in report.accused:
        typer.echo(f"ACCUSED {s.member}\tversion {s.version}\tdownload {s.download_id[:16]} "
                   f"(journal #{s.journal_seq}, {_iso(s.time_ms)})\tscore {s.score:.1f}\t"
                   f"false accusation ≤ {s.false_accusation:.1e}")
    if not report.accused:
        typer.echo("nobody accused: the suspect carries none of our marks")
    if show > 0 and report.ranking:
        typer.echo("best scores:")
        for s in report.ranking[:show]:
            typer.echo(f"  {s.member}\tdownload {s.download_id[:16]}\tscore {s.score:.1f}")
