"""Would releasing the best head, not the last, close bladder's gap? The final head against the best on G, on T.

The coalition releases its last head when the stopping rule fires; the
centralised reference keeps its best checkpoint on a validation split. On G
the last head of a bladder coalition sits 0.5-1 point under the best head it
ever had (`centralized_vs_tclearn_bladder_niid10_seeds0-19.json`), but G is
also what picked that best, so only a held-out set can say whether the best
head is a better model or a lucky draw on G's 32 volumes. This runs the
bench's coalitions (the demo's defaults, the same chains as
`bench/centralized_vs_tclearn.py`'s on this kind of machine), keeps every
model the coalition made, and scores on the held-out T (128 volumes neither
side sees):

* the final head (what the coalition releases);
* the best head on G (the first accepted head with the highest majority G
  score: what a "revert to the best" rule would release);
* the mean of the heads accepted since the last `hyperparams` block (the
  last learning-rate phase; stochastic weight averaging of the plateau).

Prints a table and writes `bench/results/best_head_bladder.json` (each run,
and per configuration the mean change on T against the final head with its
95 % t-interval). Not timed: run it on any machine state.

    python bench/best_head.py [--seeds 10] [--partners 4 10] [--splits non-iid] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from centralized_vs_tclearn import HELD_OUT, _ci, _per_partner, machine  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _run(job: tuple[int, int, str]) -> dict[str, Any]:
    import torch

    import tclearn.demo.engine as engine
    from tclearn.data import phantom_test_set
    from tclearn.data.phantoms import HELD_OUT_STREAM
    from tclearn.learning import evaluate_state, get_task, mean_score
    from tclearn.learning.model_store import MemoryModelStore
    from tclearn.learning.serialize import state_from_bytes

    seed, partners, split = job
    stores: list[MemoryModelStore] = []

    class KeptStore(MemoryModelStore):
        def __init__(self) -> None:
            super().__init__()
            stores.append(self)

    engine.MemoryModelStore = KeptStore  # type: ignore[misc]  # to read the coalition's models after its run
    task = get_task("bladder")
    with tempfile.TemporaryDirectory() as tmp:
        run = engine.run_coalition(engine.DemoOptions(
            task="bladder", partners=partners, split=split, seed=seed, rounds=400, adaptive_lr=True,
            centralized=False, out=Path(tmp), per_partner=_per_partner("bladder", partners)))
        from tclearn.ledger.sqlite_store import SQLiteChainStore

        chain = list(SQLiteChainStore(Path(tmp) / "chain.db", create=False, read_only=True))
    store = stores[0]
    held_out = phantom_test_set(HELD_OUT, seed=seed, n_partners=partners, shape=task.shape, stream=HELD_OUT_STREAM)

    def on_t(model_hash: str) -> float:
        return mean_score(evaluate_state(task, state_from_bytes(store.get(model_hash)), held_out))

    records = {b.index: b for b in run.blocks}
    accepted = [b for b in chain[1:] if b.kind == "increment"]
    best = max(accepted, key=lambda b: (records[b.index].head_score, -b.index))
    last_hp = max((b.index for b in chain if b.kind == "hyperparams"), default=0)
    phase = [b for b in accepted if b.index > last_hp]
    states = [state_from_bytes(store.get(b.model_hash)) for b in phase]
    mean_state = {k: torch.stack([s[k].to(torch.float64) for s in states]).mean(0).to(states[0][k].dtype)
                  if states[0][k].is_floating_point() else states[0][k] for k in states[0]}
    return {"seed": seed, "partners": partners, "split": split, "blocks": len(chain) - 1,
            "final_g": run.final_score, "best_g": records[best.index].head_score, "best_index": best.index,
            "final_t": on_t(chain[-1].model_hash), "best_t": on_t(best.model_hash),
            "phase_heads": len(phase), "phase_mean_t": mean_score(evaluate_state(task, mean_state, held_out)),
            "machine": machine()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--partners", nargs="+", type=int, default=[4, 10])
    ap.add_argument("--splits", nargs="+", default=["non-iid"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "best_head_bladder.json")
    args = ap.parse_args()
    jobs = [(s, p, sp) for s in range(args.seeds) for p in args.partners for sp in args.splits]
    runs: list[dict[str, Any]] = []
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_run, jobs):
            runs.append(r)
            print(f"seed {r['seed']} {r['partners']} {r['split']}: T final {r['final_t']:.4f}, best on G "
                  f"{r['best_t']:.4f} (block {r['best_index']} of {r['blocks']}), last phase's mean "
                  f"{r['phase_mean_t']:.4f} ({r['phase_heads']} heads)", flush=True)
    summary: dict[str, Any] = {}
    print(f"\n{'bladder':<22} {'runs':>4} {'best on G − final, on T':>24} {'phase mean − final, on T':>25}")
    for p in args.partners:
        for sp in args.splits:
            rs = sorted((r for r in runs if r["partners"] == p and r["split"] == sp), key=lambda r: r["seed"])
            if not rs:
                continue
            best = _ci([100 * (r["best_t"] - r["final_t"]) for r in rs])
            mean = _ci([100 * (r["phase_mean_t"] - r["final_t"]) for r in rs])
            summary[f"{sp} {p} partners"] = {
                "runs": len(rs), "best_minus_final_t_points": {"mean": best[0], "ci95": best[1]},
                "phase_mean_minus_final_t_points": {"mean": mean[0], "ci95": mean[1]},
                "best_better_on_t": sum(r["best_t"] > r["final_t"] for r in rs),
                "final_t_mean": statistics.mean(r["final_t"] for r in rs)}
            print(f"{sp + ' ' + str(p) + ' partners':<22} {len(rs):>4} {best[0]:+10.2f} ± {best[1]:.2f} points "
                  f"{mean[0]:+11.2f} ± {mean[1]:.2f} points")
    args.out.write_text(json.dumps({"summary": summary, "runs": sorted(runs, key=lambda r: (r["partners"], r["seed"]))},
                                   indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
