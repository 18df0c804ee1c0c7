"""Centralised training vs a TCLearn coalition on the same model and data.

For `bladder` and `digits`, over 3 seeds: the coalition (real consensus, real
training, same data split) and a centralised run on the pooled training data
with the same number of passes over the data (`coalition_passes`). Prints a
table, and writes the final scores (mean ± spread), the gap, the share of
honest increments rejected and the wall-time split of a round to
`bench/results/centralized_vs_tclearn.json`.

    python bench/centralized_vs_tclearn.py [--seeds 3] [--tasks bladder digits]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from tclearn.demo.coalition import DemoOptions, run_coalition

ROUNDS = {"bladder": 24, "digits": 12}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--tasks", nargs="+", default=["bladder", "digits"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "centralized_vs_tclearn.json")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    for task in args.tasks:
        runs = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run = run_coalition(DemoOptions(task=task, rounds=ROUNDS[task], seed=seed, out=Path(tmp)))
                wall = time.perf_counter() - t0
            rounds = max(1, len(run.blocks))
            runs.append({
                "seed": seed, "tclearn": run.final_score, "centralized": run.centralized_score,
                "gap_points": 100 * (run.centralized_score - run.final_score), "accepted": run.accepted,
                "rejected": run.rejected, "honest_rejection_rate": run.honest_rejection_rate(),
                "centralized_passes": run.extra.get("centralized_passes"),
                "round_split_s": {k: v / rounds for k, v in run.timings_s.items() if k != "final_verification"},
                "wall_s": wall,
            })
            print(f"{task} seed {seed}: TCLearn {run.final_score:.4f}  centralised {run.centralized_score:.4f}  "
                  f"({wall:.0f} s)", flush=True)
        t = [r["tclearn"] for r in runs]
        c = [r["centralized"] for r in runs]
        split_keys = runs[0]["round_split_s"].keys()
        results[task] = {
            "runs": runs,
            "tclearn_mean": statistics.mean(t), "tclearn_sd": statistics.pstdev(t),
            "centralized_mean": statistics.mean(c), "centralized_sd": statistics.pstdev(c),
            "gap_points_mean": 100 * (statistics.mean(c) - statistics.mean(t)),
            "honest_rejection_rate_mean": statistics.mean(r["honest_rejection_rate"] or 0.0 for r in runs),
            "round_split_s_mean": {k: statistics.mean(r["round_split_s"][k] for r in runs) for k in split_keys},
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(f"{'task':8} {'TCLearn':>16} {'centralised':>16} {'gap (pts)':>10} {'honest rej.':>12}")
    for task, r in results.items():
        print(f"{task:8} {r['tclearn_mean']:.4f} ± {r['tclearn_sd']:.4f} {r['centralized_mean']:.4f} ± "
              f"{r['centralized_sd']:.4f} {r['gap_points_mean']:>10.2f} {100 * r['honest_rejection_rate_mean']:>11.1f}%")
    print("\nwall time per round (s):")
    for task, r in results.items():
        print(f"  {task}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["round_split_s_mean"].items()))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
