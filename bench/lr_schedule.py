"""How a coalition's learning-rate schedule moves its converged score.

Runs the demo's coalition of `--task` (adaptive learning-rate policy on;
by default 4 non-IID partners, the splits of
`bench/centralized_vs_tclearn.py`) over several seeds for each variant named
on the command line:

* `lr=X`: the starting learning rate (the task's default otherwise);
* `patience=N`: the genesis stopping rule's patience (the adaptive policy
  lowers the rate after half of it);
* both, comma-separated: `lr=0.01,patience=24`.

Prints a table (mean final Dice, its 95 % t-interval, blocks, wall time) and
writes `bench/results/lr_schedule_<task>.json` (every run; rerunning skips
the runs it holds). This is the measurement behind bladder's starting rate
(`tclearn/learning/task_bladder.py`).

    python bench/lr_schedule.py lr=0.01 lr=0.03 lr=0.09 lr=0.01,patience=24 [--seeds 5] [--jobs 2]
    python bench/lr_schedule.py --task digits --partners 10 lr=0.001 lr=0.003
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _variant(text: str) -> dict[str, float]:
    """`lr=0.03`, `patience=24` or both, comma-separated: `lr=0.01,patience=24`."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            if name not in ("lr", "patience") or name in out:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a variant is lr=X, patience=N or both (comma), got {text!r}") from None
    return out


def _run(job: tuple[str, str, int, int, str]) -> tuple[tuple[str, str, int, int, str], dict[str, Any]]:
    task, variant, seed, partners, split = job
    import dataclasses

    import torch

    from tclearn.demo.engine import DemoOptions, run_coalition
    from tclearn.learning import get_task

    torch.set_num_threads(1)
    v = _variant(variant)
    if "lr" in v:  # this process runs one task's jobs only: the class default is the coalition's genesis rate
        cls = type(get_task(task))
        cls.default_hyperparams = dataclasses.replace(cls.default_hyperparams, learning_rate=v["lr"])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_coalition(DemoOptions(task=task, partners=partners, split=split, seed=seed, rounds=400,
                                        adaptive_lr=True, centralized=False, out=Path(tmp),
                                        per_partner=max(12, 96 // partners) if task == "bladder" else None,
                                        stop_patience=int(v["patience"]) if "patience" in v else None))
    return job, {"final": run.final_score, "blocks": len(run.blocks), "wall_s": time.perf_counter() - t0,
                 "honest_rejection_rate": run.honest_rejection_rate(), "stopped_because": run.extra["stopped_because"],
                 "curve": [[b.index, round(b.elapsed_s, 3), b.head_score] for b in run.blocks]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+", type=str)
    ap.add_argument("--task", default="bladder", choices=("bladder", "digits"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--partners", type=int, default=4)
    ap.add_argument("--split", default="non-iid")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="default: bench/results/lr_schedule_<task>.json")
    args = ap.parse_args()
    args.out = args.out or RESULTS / f"lr_schedule_{args.task}.json"
    for v in args.variants:
        _variant(v)
    raw: dict[str, Any] = json.loads(args.out.read_text())["raw"] if args.out.exists() else {}
    jobs = [(args.task, v, s, args.partners, args.split) for v in args.variants for s in range(args.seeds)]
    todo = [j for j in jobs if "|".join(map(str, j)) not in raw]
    print(f"{len(jobs)} runs, {len(todo)} to do on {args.jobs} processes", flush=True)
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for job, out in pool.imap_unordered(_run, todo):
            raw["|".join(map(str, job))] = out
            print(f"{' '.join(map(str, job))}: score {out['final']:.4f} in {out['blocks']} blocks "
                  f"({out['wall_s']:.0f} s)", flush=True)
            args.out.write_text(json.dumps({"raw": raw}, indent=1) + "\n")
    summary: dict[str, Any] = {}
    print(f"\n{args.task}, {args.partners} partners, {args.split}")
    print(f"{'variant':<22} {'seeds':>5} {'score':>17} {'blocks':>7} {'wall s':>7}")
    for v in args.variants:
        runs = [raw["|".join(map(str, (args.task, v, s, args.partners, args.split)))] for s in range(args.seeds)]
        finals = [r["final"] for r in runs]
        half = T975.get(len(finals) - 1, 1.96) * statistics.stdev(finals) / math.sqrt(len(finals)) \
            if len(finals) > 1 else float("nan")
        summary[v] = {"mean": statistics.mean(finals), "ci95": half, "finals": finals,
                      "blocks_mean": statistics.mean(r["blocks"] for r in runs),
                      "wall_s_mean": statistics.mean(r["wall_s"] for r in runs)}
        row = summary[v]
        print(f"{v:<22} {len(finals):>5} {row['mean']:.4f} ± {half:.4f} {row['blocks_mean']:>7.0f} "
              f"{row['wall_s_mean']:>7.0f}")
    args.out.write_text(json.dumps({"task": args.task, "partners": args.partners, "split": args.split, "summary": summary, "raw": raw},
                                   indent=1) + "\n")


if __name__ == "__main__":
    main()
