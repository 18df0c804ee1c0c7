"""`tclearn demo`: a whole level-A coalition in one process, with real models.

With no argument it trains the paper's showcase (bladder segmentation, a
MONAI U-Net on CT-like phantoms) with 4 partners, shows a progress bar per
round, prints a summary table and writes `chain.db`, `report.json`, PNG
figures and, at level A, the final model (`model.safetensors`) into `--out`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tclearn.cli.errors import handle_errors
from tclearn.errors import ConfigError

# caps: a run stops earlier once the genesis stopping rule says the coalition has converged
DEFAULT_ROUNDS = 200  # every task
NETWORK_ROUNDS = {"bladder": 24, "digits": 12, "nifti": 12}  # --network: blocks to commit over real nodes


@handle_errors
def demo_command(
    task: str = typer.Option("bladder", "--task", help="bladder (default), digits, or nifti (with --data DIR)"),
    partners: int = typer.Option(4, "--partners", help="number of partners (members)"),
    rounds: Optional[int] = typer.Option(None, "--rounds",
                                         help="at most this many blocks; the run stops earlier once converged "
                                              "(default cap: 200)"),
    committee: Optional[int] = typer.Option(None, "--committee",
                                            help="validators drawn per round (k; default 3, or partners − 1 if fewer)"),
    stop_patience: Optional[int] = typer.Option(None, "--stop-patience",
                                                help="converged after this many accepted increments none of which "
                                                     "raised G by more than --stop-min-delta (default max(12, 3 × "
                                                     "partners); 0: no stopping rule)"),
    stop_min_delta: float = typer.Option(0.0, "--stop-min-delta", help="gain on G that counts as improvement"),
    adaptive_lr: Optional[bool] = typer.Option(None, "--adaptive-lr/--no-adaptive-lr",
                                               help="genesis adaptive learning-rate policy: certified hyperparams "
                                                    "blocks lower the learning rate when G stalls (default: on; "
                                                    "--no-adaptive-lr: a constant rate)"),
    lr_factor: float = typer.Option(0.5, "--lr-factor", help="with --adaptive-lr: factor applied at each stall"),
    lr_patience: Optional[int] = typer.Option(None, "--lr-patience",
                                              help="with --adaptive-lr: accepted increments without a gain before "
                                                   "lowering "
                                                   "(default: half the stopping patience)"),
    lr_epochs: Optional[int] = typer.Option(
        None, "--lr-epochs",
        help="with --adaptive-lr: local epochs from the first lowering on, in the same certified block (default: "
             "bladder and nifti 2, digits unchanged; 0: unchanged)"),
    per_partner: Optional[int] = typer.Option(None, "--per-partner", help="bladder: volumes per partner (default 24)"),
    max_pool_passes: Optional[float] = typer.Option(
        None, "--max-pool-passes",
        help="at most this many local passes over the mean hospital's pool per increment: fewer epochs for small "
             "hospitals, written into genesis (default: the task's epochs)"),
    turns_by_pool: Optional[bool] = typer.Option(
        None, "--turns-by-pool/--equal-turns",
        help="proposer turns in proportion to each hospital's pool, written into genesis (consensus.turn_weights; "
             "nothing changes where the pools are equal; default: bladder and nifti by pool, digits equal)"),
    lam: float = typer.Option(0.97, "--lambda", help="acceptance threshold λ in [0, 1]"),
    seed: int = typer.Option(0, "--seed", help="seed of everything: data, keys, training, network"),
    out: Path = typer.Option(Path("tclearn-demo"), "--out", help="output folder"),
    malicious: int = typer.Option(0, "--malicious", help="number of malicious partners"),
    attack: Optional[str] = typer.Option(None, "--attack", help="attack of the malicious partners"),
    collude: bool = typer.Option(False, "--collude",
                                 help="malicious partners drawn as validators vote for each other, against honest ones"),
    max_drop: Optional[float] = typer.Option(None, "--max-drop",
                                             help="quality rule's hard floor on G and merged scores (default 0.02)"),
    no_self_check: bool = typer.Option(False, "--no-self-check",
                                       help="honest partners propose without first checking their candidate on G"),
    split: str = typer.Option("iid", "--split", help="iid or non-iid partner data"),
    data: Optional[Path] = typer.Option(None, "--data", help="for --task nifti: a folder with imagesTr/ and labelsTr/"),
    no_centralized: bool = typer.Option(False, "--no-centralized", help="skip the centralised baseline"),
    equal_budget: bool = typer.Option(False, "--equal-budget",
                                      help="also train the centralised model for as many passes over the pooled "
                                           "data as the coalition made (report: centralized_equal_budget_score)"),
    network: bool = typer.Option(False, "--network", help="run through real nodes over mutual TLS (separate processes)"),
    json_out: bool = typer.Option(False, "--json", help="print report.json to stdout instead of the table"),
    watermark_alpha: float = typer.Option(0.03, "--watermark-alpha",
                                          help="level C: amplitude of each copy's mark, in units of each layer's "
                                               "standard deviation (stronger: easier to trace, costs more score)"),
    level: str = typer.Option("A", "--level",
                              help="security level: A (public models), B (models only through the supervisor's "
                                   "encrypted vault, every access journaled and anchored in the chain), C (B with a "
                                   "watermarked copy for every partner and validator); --network runs A only"),
    serve: bool = typer.Option(False, "--serve", help="serve the live dashboard on 127.0.0.1 while the demo runs, "
                                                      "and after it until Ctrl-C"),
    serve_port: int = typer.Option(8050, "--serve-port", help="with --serve: the loopback port (0: any free port)"),
) -> None:
    """Run a TCLearn coalition on embedded data and report the chain, scores and figures."""
    from tclearn.levels import DEMO_LEVELS, require_runnable_level

    level = level.upper()
    if network:
        require_runnable_level(level, "tclearn demo --network")
    require_runnable_level(level, "tclearn demo", DEMO_LEVELS)
    from tclearn.demo.engine import MODEL_FILE, DemoOptions, run_coalition
    from tclearn.demo.report import print_summary, report_dict, write_figures, write_report

    if split not in ("iid", "non-iid"):
        raise ConfigError("--split must be iid or non-iid")
    options: dict[str, object] = {}
    if task == "nifti":
        if data is None:
            raise ConfigError("--task nifti needs --data DIR (imagesTr/ and labelsTr/)")
        options["root"] = str(data)
    n_rounds = rounds if rounds is not None else DEFAULT_ROUNDS
    if serve and network:
        raise ConfigError("--serve is for the one-process demo; with --network every node serves its own dashboard")
    if network:
        n_rounds = rounds if rounds is not None else NETWORK_ROUNDS.get(task, 12)
        try:
            from tclearn.node import run_network_coalition
        except ImportError:
            raise ConfigError("--network is not available in this build") from None
        import json
        import shutil

        from tclearn.consensus import check_certificate
        from tclearn.ledger.verify import verify_chain
        from tclearn.demo.engine import export_chain

        net_dir = out / "network"
        if net_dir.exists():
            shutil.rmtree(net_dir)  # a previous network demo's coalition (its nodes are stopped at the end)
        console = Console()
        console.print(f"[bold]TCLearn demo over mutual TLS[/]: {partners} node processes on 127.0.0.1, task {task}, "
                      f"{n_rounds} blocks → {net_dir}/")
        res = run_network_coalition(net_dir, partners=partners, rounds=n_rounds, task=task, seed=seed)
        first = next(iter(res["chains"].values()))
        verify_chain(first, certificate_check=check_certificate)
        export_chain(first, out / "chain.db")
        summary = {k: v for k, v in res.items() if k != "chains"}
        summary["heights"] = {m: len(c) - 1 for m, c in res["chains"].items()}
        (out / "network_report.json").write_text(json.dumps(summary, indent=2) + "\n")
        console.print(f"reached {n_rounds} blocks: {res['reached']} in {res['seconds']} s; chains agree up to height "
                      f"{res['common_height']}: {res['agree']}; kinds {res['kinds']}")
        console.print(f"wrote {out / 'chain.db'} and {out / 'network_report.json'}")
        if not (res["reached"] and res["agree"]):
            raise typer.Exit(1)
        return
    opts = DemoOptions(task=task, partners=partners, rounds=n_rounds, committee=committee, lam=lam, seed=seed,
                       out=out, malicious=malicious, attack=attack, centralized=not no_centralized, split=split,
                       collude=collude, max_drop=max_drop, self_check=not no_self_check,
                       stop_patience=stop_patience, stop_min_delta=stop_min_delta, adaptive_lr=adaptive_lr,
                       lr_factor=lr_factor, lr_patience=lr_patience, per_partner=per_partner, equal_budget=equal_budget,
                       max_pool_passes=max_pool_passes, lr_epochs=lr_epochs, turns_by_pool=turns_by_pool,
                       task_options=options, level=level, watermark_alpha=watermark_alpha)
    opts.check()  # a bad option is refused before the banner and the progress bar, not under them
    console = Console(stderr=json_out)
    console.print(f"[bold]TCLearn demo[/]: task {task}, {partners} partners, until converged (at most {n_rounds} "
                  f"rounds), committee {opts.committee_size}, λ={lam}, seed {seed} → {out}/")
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        job = bar.add_task("rounds", total=n_rounds)

        def progress(index: int, block: object, score: float) -> None:
            kind = getattr(block, "kind", "")
            bar.update(job, completed=min(index, n_rounds),
                       description=f"block {index} {kind:<9} score {score:.3f}")

        def note(line: str) -> None:
            bar.console.print(line)

        dashboard, watch = _dashboard(serve, serve_port, opts, bar.console)
        run = run_coalition(opts, progress, note, watch)
    if dashboard is not None:
        dashboard.set_reference(run.centralized_score)
    write_report(run, out)
    figures = write_figures(run, out)
    if json_out:
        import json

        typer.echo(json.dumps(report_dict(run), indent=2))
        _serve_until_interrupted(dashboard, console)
        return
    print_summary(run, console)
    console.print(f"stopped: {run.extra.get('stopped_because', '')}")
    if run.extra.get("vault"):
        from tclearn.demo.report import vault_lines

        for line in vault_lines(run):
            console.print(line)
    model = out / MODEL_FILE
    console.print(f"wrote {out / 'chain.db'}, {out / 'report.json'}, " + ", ".join(str(p) for p in figures)
                  + (f", {model} (the final model)" if model.exists() else ""))
    _serve_until_interrupted(dashboard, console)


def _dashboard(serve: bool, port: int, opts: Any, console: Console) -> tuple[Any, Any]:
    """With --serve: the demo's dashboard and the `watch` hook that starts it once the chains exist."""
    if not serve:
        return None, None
    from tclearn.dashboard.for_demo import DemoDashboard

    dashboard = DemoDashboard(f"demo-{opts.task}-{opts.seed}", port=port)

    def watch(observer: str, stores: Any, journal: Any) -> Any:
        exported = dashboard.watch(observer, stores, journal)
        console.print(f"dashboard: {dashboard.url} (live; loopback only)")
        return exported

    return dashboard, watch


def _serve_until_interrupted(dashboard: Any, console: Console) -> None:
    """Keep the dashboard up after the run until Ctrl-C (or SIGTERM)."""
    if dashboard is None or dashboard.url is None:
        return
    import signal
    import threading

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    console.print(f"dashboard: still serving {dashboard.url} — Ctrl-C to stop")
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        dashboard.stop()
