"""`tclearn sim consensus`: many seeded fault scenarios of the consensus protocol.

Each seed draws its byzantine members and behaviours, network faults,
partition, crashes and clock skews, runs a safety phase with faults and a
liveness phase without, and checks the invariants at every commit. The
summary is a table, or JSON on stdout with `--json`; a failing seed is
replayed with `--seed N --seeds 1`. Exit code 0 when every scenario passed,
1 when a safety violation or a liveness failure was found.
"""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from tclearn.sim.runner import run_many
from tclearn.sim.synthetic import ATTACK_EFFECTS

app = typer.Typer(help="Deterministic simulations of a coalition.", no_args_is_help=True)


@app.command("consensus")
def consensus(
    seeds: int = typer.Option(100, "--seeds", min=1, help="How many seeded scenarios to run."),
    members: int = typer.Option(7, "--members", min=2, help="Members of the coalition (M)."),
    committee: int = typer.Option(4, "--committee", min=1, help="Validators drawn per height (K ≤ M − 1)."),
    byzantine: int = typer.Option(1, "--byzantine", min=0, help="Byzantine members (F; safe and live for F < K/3)."),
    malicious: int = typer.Option(0, "--malicious", min=0,
                                  help="Malicious partners proposing --attack candidates (validators stay honest)."),
    attack: Optional[str] = typer.Option(None, "--attack", help="Their attack: " + ", ".join(ATTACK_EFFECTS) + "."),
    seed: int = typer.Option(0, "--seed", help="First seed (scenario i uses seed + i)."),
    jobs: int = typer.Option(0, "--jobs", min=0, help="Worker processes (0: one per CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Write the summary as JSON to stdout."),
) -> None:
    """Run seeded scenarios with random faults; report safety violations and liveness failures."""
    if committee > members - 1:
        raise typer.BadParameter(f"--committee must be at most members − 1 = {members - 1}")
    if byzantine > members:
        raise typer.BadParameter("--byzantine cannot exceed --members")
    if malicious and attack not in ATTACK_EFFECTS:
        raise typer.BadParameter(f"--attack must be one of {', '.join(ATTACK_EFFECTS)} when --malicious > 0")
    if malicious + byzantine >= members:
        raise typer.BadParameter("--malicious plus --byzantine must leave at least one honest member")
    summary = run_many(range(seed, seed + seeds), members=members, committee=committee, byzantine=byzantine,
                       malicious=malicious, attack=attack if malicious else None, jobs=jobs or None)
    data = summary.to_dict()
    if as_json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console = Console()
        table = Table(title=f"consensus simulation: M={members} K={committee} F={byzantine}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        keys = ["scenarios", "committed", "rounds", "safety_violations", "liveness_failures", "evidence", "seconds"]
        if malicious:
            keys[1:1] = ["malicious_increments", "malicious_rejected"]
        for key in keys:
            table.add_row(key, str(data[key]))
        console.print(table)
        if data["failing_seeds"]:
            console.print(f"[red]failing seeds (replay with --seed N --seeds 1):[/red] {data['failing_seeds']}")
            for f in data["failures"][:10]:
                console.print(f)
    raise typer.Exit(0 if not data["failing_seeds"] else 1)
