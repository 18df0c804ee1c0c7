"""`tclearn chain`: check and read a member's copy of the ledger.

    tclearn chain verify DB [--genesis HASH] [--signatures-only]
    tclearn chain show DB [--json] [--from N] [--limit N]

`show` marks the model's course (`tclearn.ledger.course`): the increments a
later revert outshone, and what each revert, hyper-parameter and membership
block changed (a "course" column; `reverted_by`, `change` and `note` in
--json, next to every block field).

Both open the chain read-only, so they can run while a node appends to it,
and never change it. Exit codes are those of `tclearn.cli.errors`: 0 valid,
1 invalid chain ("block N: reason"), 3 not a chain / missing / damaged file.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from tclearn.cli.errors import EXIT_INVALID, handle_errors, one_line
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.course import Course, course_of
from tclearn.ledger.sqlite_store import open_store
from tclearn.ledger.verify import CertificateCheck, check_signatures_only, verify_chain

__all__ = ["app", "block_json", "certificate_check"]

app = typer.Typer(help="Verify and inspect a chain file.", no_args_is_help=True)

ChainFile = Annotated[Path, typer.Argument(help="The chain file (chain.db).", show_default=False)]
HASH_PREFIX = 12


def certificate_check(signatures_only: bool = False) -> tuple[CertificateCheck, str]:
    """The certificate check to run, and its name for the report.

    By default the consensus layer's, which also recomputes the committee
    each block's votes must come from and the decision they support; with
    `signatures_only`, the ledger's, which checks the votes' signatures alone.
    """
    if signatures_only:
        return check_signatures_only, "vote signatures"
    from tclearn.consensus.certificate import check_certificate

    return check_certificate, "committee certificates"


@app.command("verify")
@handle_errors
def verify_command(
    db: ChainFile,
    genesis: Annotated[
        Optional[str], typer.Option("--genesis", help="Require this genesis block hash (the coalition's).")
    ] = None,
    signatures_only: Annotated[bool, typer.Option(
        "--signatures-only", help="Check the votes' signatures only, not that they come from the committee "
                                  "the protocol drew and support the block's decision.")] = False,
) -> None:
    """Verify every block of the chain: hashes, links, signatures, certificates, strengths."""
    with open_store(db, read_only=True) as store:
        check, check_name = certificate_check(signatures_only)
        try:
            state = verify_chain(store, certificate_check=check, genesis_hash=genesis)
        except InvalidBlockError as exc:
            typer.echo(f"INVALID {db}: {one_line(str(exc))}")
            raise typer.Exit(EXIT_INVALID) from None
    typer.echo(
        f"OK {db}: {state.height + 1} blocks valid, height {state.height}, "
        f"head {state.head_hash[:HASH_PREFIX]}, {check_name} checked"
    )


def _hexify(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _hexify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hexify(v) for v in value]
    return value


def block_json(block: Block) -> dict[str, Any]:
    """A block's fields as JSON-ready values (bytes as hex)."""
    out: dict[str, Any] = _hexify(block.to_dict())
    return out


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _table(blocks: list[Block], courses: list[Course], title: str) -> Table:
    table = Table(title=title)
    for name, justify in (("index", "right"), ("kind", "left"), ("time (UTC)", "left"), ("contributor", "left"),
                          ("model", "left"), ("votes q/b", "right"), ("hash", "left"), ("course", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for b, c in zip(blocks, courses):
        table.add_row(
            str(b.index), b.kind, _time(b.timestamp), b.contributor or "-", b.model_hash[:HASH_PREFIX],
            f"{len(b.quality_votes)}/{len(b.block_votes)}", b.block_hash[:HASH_PREFIX], c.note,
            style="dim" if c.reverted_by is not None else ("bold" if c.change is not None else None),
        )
    return table


def _with_course(block: Block, course: Course) -> dict[str, Any]:
    return {**block_json(block), "reverted_by": course.reverted_by, "change": _hexify(course.change),
            "note": course.note}


@app.command("show")
@handle_errors
def show_command(
    db: ChainFile,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON list of blocks, every field (bytes as hex).")] = False,
    start: Annotated[int, typer.Option("--from", min=0, help="First block index to show.")] = 0,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Show at most this many blocks.")] = None,
) -> None:
    """List the blocks: index, kind, time, contributor, model hash, votes, block hash, and the model's course."""
    with open_store(db, read_only=True) as store:
        height = store.height()
        end = height if limit is None else min(height, start + limit - 1)
        later = store.blocks_from(start)  # a revert after the window marks blocks in it
    courses = course_of(later)[: end - start + 1]
    blocks = later[: end - start + 1]
    if as_json:
        typer.echo(json.dumps([_with_course(b, c) for b, c in zip(blocks, courses)], indent=2))
        return
    Console(width=160).print(_table(blocks, courses, f"{db} — {height + 1} blocks"))
