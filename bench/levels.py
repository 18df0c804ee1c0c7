"""Security levels side by side: the same demo coalition at level A, B (vault) and C (vault + watermarks).

For each seed the one-process demo (`tclearn.demo.engine.run_coalition`)
runs three times with everything else equal, to convergence (the genesis
stopping rule) or the round cap:

* A: public models in memory;
* B: every model and increment through the supervisor's encrypted vault,
  every access journaled, the journal head anchored in each proposal;
* C: B, and every partner and validator works on its own watermarked copy
  (increments merged into the clean model).

Figures per run: final score on G, blocks, accepted / rejected, honest
rejections, validators flagged for G scores that differ from the majority's
(at C each validator scores its own marked copy), wall time, journal entries
and bytes, vault bytes on disk, watermarked copies, the time of
`verify_journal_against_chain` (what `tclearn audit verify --chain` runs), and
whether B's head models are A's (the same bytes: the vault must not change
what is learnt), and for how many leading blocks (`same_models_as_A_blocks`:
a B block anchors the vault journal, so its hash and every later committee
draw differ from A's, and where two messages race in one tick, as a
lowering request and a proposal can with the adaptive policy, the chains
may part; up to there every model must be A's). The cost of the marks is C's final score minus A's. At C,
every copy handed out during the run is rebuilt from the vault (its key and
the clean version; its hash checked against the journal), leaked with 5 %
noise and 30 % magnitude pruning, and traced (`Tracer`, p_false 1e-6): how
many are traced to exactly their download, and the lowest score.

    python bench/levels.py [--task digits] [--partners 4] [--seeds 0 1 2] [--rounds 200]
                           [--out bench/results/levels_digits.json]

`--network SECONDS` instead runs node processes over mutual TLS (`coalition
up`) at level A and at level B (models only through the vault service) for
SECONDS each after every node answers, alternating A, B, A, B (`--repeat`),
and reports blocks per minute, the vault's journal and whether its anchors
verify against a node's chain (→ `levels_network_<task>.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.demo.vault_models import VAULT_DIR
from tclearn.ledger.sqlite_store import open_store
from tclearn.vault.anchors import verify_journal_against_chain
from tclearn.watermark.fingerprint import DEFAULT_ALPHA

LEVELS = ("A", "B", "C")


def one_run(task: str, partners: int, seed: int, rounds: int, level: str, work: Path,
            alpha: float = DEFAULT_ALPHA) -> dict[str, Any]:
    out = work / f"{task}-{seed}-{level}"
    run = run_coalition(DemoOptions(task=task, partners=partners, rounds=rounds, seed=seed, out=out,
                                    centralized=False, level=level, watermark_alpha=alpha))
    with open_store(out / "chain.db", read_only=True) as store:
        chain = list(store)
    row: dict[str, Any] = {
        "task": task, "partners": partners, "seed": seed, "level": level, "final_score": run.final_score,
        "blocks": len(chain) - 1, "accepted": run.accepted, "rejected": run.rejected,
        "honest_rejection_rate": run.honest_rejection_rate(), "wall_time_s": run.wall_time_s,
        "flagged_votes": sum(len(b.payload.get("flagged", [])) for b in chain),
        "model_hashes": [b.model_hash for b in chain], "stopped_because": run.extra.get("stopped_because"),
        "timings_s": run.timings_s, "watermark_alpha": alpha if level == "C" else None,
    }
    vault = run.extra.get("vault")
    if vault:
        t0 = time.perf_counter()
        checked = verify_journal_against_chain(out / VAULT_DIR / "journal.jsonl", chain)
        row["audit_verify_chain_s"] = time.perf_counter() - t0
        row["anchors_checked"] = len(checked.anchors)
        for k in ("journal_entries", "journal_bytes", "bytes_on_disk", "objects", "granted", "refused", "actions",
                  "watermarked_copies", "plaintext_in_memory"):
            if k in vault:
                row[k] = vault[k]
        if level == "C":
            row["leaks_traced"] = trace_every_copy(out, checked.entries)
    return row


def leading_alike(a: list[str], b: list[str]) -> int:
    """How many leading blocks of two chains hold the same models (the shorter chain's length if all do)."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def trace_every_copy(out: Path, entries: list[Any]) -> dict[str, Any]:
    """Rebuild each copy handed out, leak it (5 % noise, 30 % magnitude pruning), trace it."""
    import torch

    from tclearn.demo.vault_models import SECRETS_DIR
    from tclearn.learning.serialize import model_hash, state_from_bytes
    from tclearn.vault.storage import Vault
    from tclearn.watermark import WATERMARK_ACTION, Tracer, embed

    vault = Vault.open(out / VAULT_DIR, (out / SECRETS_DIR / "vault.passphrase").read_bytes().strip())
    tracer = Tracer.from_vault(vault, entries)
    marks = [e for e in entries if e.action == WATERMARK_ACTION]
    exact, scores, threshold = 0, [], 0.0
    for mark in marks:
        key = bytes.fromhex(json.loads(bytes(vault.get(mark.detail["key_id"])[0]))["key"])
        copy = embed(state_from_bytes(bytes(vault.get(str(mark.object))[0])), key, mark.detail["alpha"])
        assert model_hash(copy) == mark.detail["copy_hash"], "a copy rebuilt from the vault differs from the journal's"
        gen = torch.Generator().manual_seed(mark.seq)
        leaked = {}
        for name, t in copy.items():
            t = t + 0.05 * t.std() * torch.randn(t.shape, generator=gen) if t.numel() > 1 else t
            if t.ndim >= 2:
                cut = t.abs().flatten().kthvalue(max(1, int(0.3 * t.numel()))).values
                t = torch.where(t.abs() <= cut, torch.zeros_like(t), t)
            leaked[name] = t.contiguous()
        report = tracer.trace(leaked)
        threshold = report.threshold
        right = [s for s in report.accused if s.download_id == mark.detail["key_id"]]
        exact += len(report.accused) == 1 and bool(right)
        scores.append(right[0].score if right else 0.0)
    return {"copies": len(marks), "traced_exactly": exact, "lowest_score": min(scores, default=0.0),
            "threshold": threshold, "attack": "5 % Gaussian noise of each tensor's std, then 30 % magnitude pruning"}


def network_run(task: str, partners: int, seed: int, level: str, seconds: float, work: Path) -> dict[str, Any]:
    from tclearn.node import chains, setup_coalition, start_nodes, stop_nodes, wait_for_height
    from tclearn.node.vault_setup import supervisor_dir

    out = work / f"net-{level}-{time.monotonic_ns()}"
    setup_coalition(out, partners, task=task, seed=seed, level=level)
    try:
        start_nodes(out)
        if not wait_for_height(out, 0, 120):
            raise RuntimeError(f"level {level}: the nodes did not answer")
        start = min(len(c) for c in chains(out).values()) - 1
        t0 = time.monotonic()
        time.sleep(seconds)
        end = min(len(c) for c in chains(out).values()) - 1
        elapsed = time.monotonic() - t0
    finally:
        stop_nodes(out)
    all_chains = chains(out)
    first = next(iter(all_chains.values()))
    row: dict[str, Any] = {"level": level, "seconds": elapsed, "blocks": end - start,
                           "blocks_per_min": 60.0 * (end - start) / elapsed, "height": len(first) - 1,
                           "load": os.getloadavg()}
    if level == "B":
        t0 = time.perf_counter()
        checked = verify_journal_against_chain(supervisor_dir(out) / "vault" / "journal.jsonl", first)
        row["audit_verify_chain_s"] = time.perf_counter() - t0
        row["anchors_checked"] = len(checked.anchors)
        row["journal_entries"] = len(checked.entries)
        row["granted"] = sum(e.outcome == "granted" for e in checked.entries)
        row["refused"] = sum(e.outcome == "refused" for e in checked.entries)
        row["model_files_on_nodes"] = sum(1 for _ in out.glob("nodes/*/data/models/**/*.safetensors"))
    return row


def network_main(args: argparse.Namespace) -> None:
    out_path = args.out or Path(__file__).with_name("results") / f"levels_network_{args.task}.json"
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-levels-net-") as tmp:
        for _ in range(args.repeat):
            for level in ("A", "B"):
                row = network_run(args.task, args.partners, args.seeds[0], level, args.network, Path(tmp))
                rows.append(row)
                print(f"level {level}: {row['blocks']} blocks in {row['seconds']:.0f} s = "
                      f"{row['blocks_per_min']:.1f} blocks/min (load {row['load'][0]:.1f})", flush=True)
    summary = {lv: {"blocks_per_min_mean": float(np.mean([r["blocks_per_min"] for r in rows if r["level"] == lv])),
                    "runs": sum(r["level"] == lv for r in rows)} for lv in ("A", "B")}
    summary["B_over_A"] = summary["B"]["blocks_per_min_mean"] / max(summary["A"]["blocks_per_min_mean"], 1e-9)
    print(f"A {summary['A']['blocks_per_min_mean']:.1f} blocks/min, B {summary['B']['blocks_per_min_mean']:.1f} "
          f"blocks/min: B/A = {summary['B_over_A']:.2f}")
    doc = {"bench": "levels_network", "task": args.task, "partners": args.partners, "seconds": args.network,
           "summary": summary, "runs": rows,
           "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="digits")
    ap.add_argument("--partners", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--network", type=float, default=0.0, help="seconds per node-process run (A vs B); 0: the demo")
    ap.add_argument("--repeat", type=int, default=2, help="with --network: A, B pairs")
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
    ap.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="level C: the marks' amplitude")
    args = ap.parse_args()
    if args.network:
        network_main(args)
        return
    out_path = args.out or Path(__file__).with_name("results") / f"levels_{args.task}.json"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-levels-") as tmp:
        for seed in args.seeds:
            for level in args.levels:
                row = one_run(args.task, args.partners, seed, args.rounds, level, Path(tmp), args.alpha)
                rows.append(row)
                print(f"seed {seed} level {level}: score {row['final_score']:.4f}, {row['blocks']} blocks "
                      f"({row['accepted']} accepted, {row['rejected']} rejected), {row['wall_time_s']:.1f} s",
                      flush=True)
    by = {(r["seed"], r["level"]): r for r in rows}
    for seed in args.seeds:
        a = by.get((seed, "A"))
        for lv in ("B", "C"):
            r = by.get((seed, lv))
            if a is not None and r is not None:
                r["score_minus_A"] = r["final_score"] - a["final_score"]
                r["same_models_as_A"] = r["model_hashes"] == a["model_hashes"]
                # where the chains part (a block's anchor changes later committee draws, so a race between a
                # lowering request and a proposal can go the other way): the blocks before it hold A's models
                r["same_models_as_A_blocks"] = leading_alike(r["model_hashes"], a["model_hashes"])
    summary = {}
    for level in args.levels:
        rs = [by[(s, level)] for s in args.seeds]
        scores = np.array([r["final_score"] for r in rs])
        summary[level] = {
            "final_score_mean": float(scores.mean()), "final_score_std": float(scores.std(ddof=1)) if len(rs) > 1 else 0.0,
            "blocks_mean": float(np.mean([r["blocks"] for r in rs])),
            "rejected_total": int(sum(r["rejected"] for r in rs)),
            "flagged_votes_total": int(sum(r["flagged_votes"] for r in rs)),
            "wall_time_s_mean": float(np.mean([r["wall_time_s"] for r in rs])),
            "score_minus_A_mean": (float(np.mean([r.get("score_minus_A", 0.0) for r in rs])) if "A" in args.levels
                                   else None),
            "score_minus_A_per_seed": [r.get("score_minus_A", 0.0) for r in rs],
        }
        if level != "A":
            summary[level].update({
                "journal_entries_mean": float(np.mean([r["journal_entries"] for r in rs])),
                "journal_bytes_mean": float(np.mean([r["journal_bytes"] for r in rs])),
                "vault_bytes_mean": float(np.mean([r["bytes_on_disk"] for r in rs])),
                "audit_verify_chain_s_mean": float(np.mean([r["audit_verify_chain_s"] for r in rs])),
            })
        if level == "B" and "A" in args.levels:
            summary[level]["same_models_as_A"] = all(r["same_models_as_A"] for r in rs)
            summary[level]["same_models_as_A_blocks"] = [r["same_models_as_A_blocks"] for r in rs]
        if level == "C":
            summary[level]["watermarked_copies_mean"] = float(np.mean([sum(r["watermarked_copies"].values())
                                                                       for r in rs]))
    print()
    print(f"{'level':<6}{'score (mean ± sd)':>20}{'− A (points)':>14}{'blocks':>8}{'rejected':>10}{'flagged':>9}"
          f"{'wall s':>8}{'journal':>9}{'vault MB':>10}{'verify s':>10}")
    for level in args.levels:
        s = summary[level]
        print(f"{level:<6}{s['final_score_mean']:>12.4f} ± {s['final_score_std']:.4f}"
              f"{100 * (s['score_minus_A_mean'] or 0.0):>+14.2f}{s['blocks_mean']:>8.1f}{s['rejected_total']:>10}"
              f"{s['flagged_votes_total']:>9}{s['wall_time_s_mean']:>8.1f}"
              f"{s.get('journal_entries_mean', 0):>9.0f}{s.get('vault_bytes_mean', 0) / 1e6:>10.2f}"
              f"{s.get('audit_verify_chain_s_mean', 0):>10.3f}")
    for r in rows:
        r.pop("model_hashes")
    doc = {"bench": "levels", "task": args.task, "partners": args.partners, "seeds": args.seeds,
           "levels": args.levels, "watermark_alpha": args.alpha,
           "rounds_cap": args.rounds, "summary": summary, "runs": rows,
           "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count(),
                       "load": os.getloadavg()}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
