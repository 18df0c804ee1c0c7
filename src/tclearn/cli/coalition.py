"""`tclearn coalition up|status|down`: a coalition of node processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tclearn.cli.errors import EXIT_TRANSPORT, EXIT_USAGE, fail, handle_errors

app = typer.Typer(help="Start, inspect and stop a local coalition of node processes.", no_args_is_help=True)


@app.command("up")
@handle_errors
def up(
    partners: int = typer.Option(4, "--partners", min=2, help="Members (one process each)."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory for keys, configs, chains, logs."),
    task: str = typer.Option("digits", "--task", help="Learning task."),
    seed: int = typer.Option(0, "--seed", help="Coalition seed (data split, initial weights)."),
    committee: int = typer.Option(0, "--committee", min=0, help="Validators per height (0: min(3, partners-1))."),
    wait: float = typer.Option(30.0, "--wait", min=0.0, help="Seconds to wait for every node to answer."),
    propose: str = typer.Option("turn", "--propose",
                                help="When nodes propose: turn (whenever their turn comes), on-demand "
                                     "(after `tclearn node propose`), never."),
    level: str = typer.Option("A", "--level",
                              help="Security level: A (nodes serve models to each other), B (models only through the "
                                   "supervisor's vault service, which is started too; nothing on disk in the clear); "
                                   "C is not built for nodes (refused)."),
) -> None:
    """Write the CA, certificates, identities, genesis and node.toml files, then start the nodes.

    A setup that fails leaves nothing behind (so a rerun works). Exit codes: 0 every node answered,
    2 bad options or `--out` already holds a coalition, 5 not every node answered within --wait.
    """
    from tclearn.levels import NODE_LEVELS, require_runnable_level
    from tclearn.node import setup_coalition, start_nodes, wait_for_height

    level = level.upper()
    require_runnable_level(level, "tclearn coalition up", NODE_LEVELS)
    try:
        setup_coalition(out, partners, task=task, seed=seed, committee=committee or None, propose=propose,
                        level=level)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    pids = start_nodes(out)
    ok = wait_for_height(out, 0, wait) if wait else True
    for m, pid in pids.items():
        typer.echo(f"{m}\tpid {pid}")
    if not ok:
        fail(f"not every node answered within {wait:.0f} s; see {out}/nodes/*/stdout.log", EXIT_TRANSPORT)


@app.command("status")
@handle_errors
def status(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="The directory of `coalition up`."),
    as_json: bool = typer.Option(False, "--json", help="JSON list on stdout."),
) -> None:
    """Each node's head block (height and hash), url and credentials."""
    from tclearn.node import coalition_status, require_coalition

    require_coalition(directory)
    rows = coalition_status(directory)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        head = (r["head"] or "-")[:16]
        state = "up" if r["running"] else "down"
        typer.echo(f"{r['member']}\t{state}\t{r['url']}\theight {r['height'] if r['height'] is not None else '-'}\t{head}")


@app.command("down")
@handle_errors
def down(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="The directory of `coalition up`."),
    grace: float = typer.Option(5.0, "--grace", min=0.0, help="Seconds between SIGTERM and SIGKILL."),
) -> None:
    """Stop every node: SIGTERM, then SIGKILL after the grace period (exit 2: no coalition in DIRECTORY)."""
    from tclearn.node import require_coalition, stop_nodes

    require_coalition(directory)
    stopped = stop_nodes(directory, grace_s=grace)
    typer.echo(f"stopped {stopped} node{'s' if stopped != 1 else ''}" if stopped else "no node was running")
