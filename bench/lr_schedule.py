"""How a coalition's learning-rate schedule moves its converged score.

Runs the demo's coalition of `--task` (adaptive learning-rate policy on;
by default 4 non-IID partners, the splits of
`bench/centralized_vs_tclearn.py`) over several seeds for each variant named
on the command line:

* `lr=X`: the starting learning rate (the task's default otherwise);
* `patience=N`: the genesis stopping rule's patience (the adaptive policy
  lowers the rate after half of it);
* both, comma-separated: `lr=0.01,patience=24`;
* `default`: the task's own settings;
* how each increment is trained, to look for what a coalition of many small
  hospitals lacks (bladder, 10 IID partners of 12 volumes: half a Dice point
  under the centralised reference over ten seeds): `epochs=N` local epochs;
  `adam=keep`, each partner keeps its Adam moments from one turn to its next
  (a fresh optimiser's first steps are about `lr` per weight, whatever the
  gradient); `warmup=K`, the rate ramps up over each increment's first K
  steps; `damp=E`, the proposed model is head + E·(trained − head) (the
  slow weights of Lookahead); `share=S`, proportional local training: each
  batch holds at least S of the partner's pool, so a hospital with more
  volumes trains more per turn (as proportional local training iterations
  do for cyclical weight transfer, Balachandar et al., JAMIA 2020), aimed at
  the quantity-skewed non-IID split; `lts=F`, the local-test share of each
  batch's fresh samples (how much of its data a partner sets aside as its L
  and never trains on; with bladder's non-IID split it also moves the
  smallest hospital's size, as the task's own default does, so compare it
  with references made at the same share); `prop=F`, batches in
  proportion to the pool: each increment trains on F · batch · pool / mean
  pool of the partner's volumes (at least 2, at most what it can train on;
  the coalition's minimum batch lowered to match), so with quantity skew
  every hospital's volumes are visited about equally often per turn, as
  pooled training visits them, where `share` only raised large hospitals'
  batches (bladder only: the mean pool is the split's volumes over the
  partners). These patch the worker process only. `turns=pool` and
  `turns=equal`: proposer turns in proportion to each hospital's pool, or
  equal turns (`tclearn demo --turns-by-pool/--equal-turns`, genesis
  `consensus.turn_weights`; `default` is the task's: bladder by pool since
  2026-12-02 11:02 UTC, equal turns before). Runs stored before
  2026-12-02 10:21 UTC made `turns=pool` a patch of
  `committee.proposer_of` (the same schedule, not written into genesis, so
  other committee draws).

Every run's final model is also scored on the held-out test set T of
`bench/centralized_vs_tclearn.py` (bladder), and with `--references` so is
the gap.

`--references FILE` (a `bench/centralized_vs_tclearn.py` result) adds each
run's gap to the converged centralised reference of the same seed and split.
With `default` among the variants, every other variant is also compared with
it seed by seed (`paired_vs_default`: the change of the final score on T, or
on G for digits, in points; paired differences cancel what a seed's split and
G do to both runs). `--first-seed N` runs seeds N … N + seeds − 1: fresh
seeds, to check on other splits a choice made on the first ones (no
references needed for the paired figures).

`late=N`: N local epochs once a `hyperparams` block has lowered the rate
(`tclearn demo --lr-epochs N`: the genesis policy's cap, carried by its
first lowering block; `late=0`: no cap). Runs stored before 2026-12-01
17:15 UTC made `late=N` a local patch of each partner (the same epochs, not
written into the block), and their `default` had no cap: since then
`default` is the task's own cap (bladder: 2 epochs,
`Task.epochs_after_lowering`; from 17:15 to 18:35 UTC only for hospitals
of under 17 volumes). `passes=X`: at most X local
passes over the mean hospital's pool per increment (`tclearn demo
--max-pool-passes X`, `Task.hyperparams_for`: fewer epochs for small
hospitals, never more).

Prints a table (mean final Dice, its 95 % t-interval, blocks, wall time) and
writes `bench/results/lr_schedule_<task>.json` (every run; rerunning skips
the runs it holds). This is the measurement behind bladder's starting rate
(`tclearn/learning/task_bladder.py`).

    python bench/lr_schedule.py lr=0.01 lr=0.03 lr=0.09 lr=0.01,patience=24 [--seeds 5] [--jobs 2]
    python bench/lr_schedule.py --task digits --partners 10 lr=0.001 lr=0.003
    python bench/lr_schedule.py --partners 10 --split iid default epochs=2 adam=keep damp=0.5 \
        --references bench/results/centralized_vs_tclearn_bladder_seeds0-9.json \
        --out bench/results/increment_variants_bladder_iid10.json
    python bench/lr_schedule.py default share=0.4 share=0.6 --references bench/results/centralized_vs_tclearn.json \
        --out bench/results/increment_variants_bladder_niid4.json
    python bench/lr_schedule.py default epochs=2 late=2 --partners 10 --split non-iid --first-seed 20 --seeds 20 \
        --out bench/results/late_epochs_bladder_niid10_seeds20-39.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from centralized_vs_tclearn import _ci, _held_out_score, machine  # a sibling bench: run as a script, bench/ is on the path

RESULTS = Path(__file__).parent / "results"


_KEYS = {"lr": float, "patience": int, "epochs": int, "adam": str, "warmup": int, "damp": float, "share": float,
         "lts": float, "passes": float, "late": int, "prop": float, "turns": str}
# the variants that set a field of the task's default hyper-parameters (and so of genesis)
_HP_FIELDS = {"lr": "learning_rate", "epochs": "epochs", "lts": "local_test_share"}


def _variant(text: str) -> dict[str, Any]:
    """`default`, or comma-separated KEY=VALUE of `_KEYS`: `lr=0.01,patience=24`, `adam=keep`, `damp=0.5`."""
    if text == "default":
        return {}
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            if name not in _KEYS or name in out or (name == "adam" and value != "keep") or (
                    name == "turns" and value not in ("pool", "equal")):
                raise ValueError
            out[name] = _KEYS[name](value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"a variant is `default` or KEY=VALUE pairs (comma) of {', '.join(_KEYS)}, got {text!r}") from None
    return out


def _patch_training(v: dict[str, Any], mean_pool: float = 0.0) -> None:
    """Change how this worker trains an increment (see the module docstring); the protocol is untouched."""
    import torch

    import tclearn.learning.partner as partner_mod
    import tclearn.learning.train as train_mod

    make, fit = train_mod.make_optimizer, train_mod.fit
    kept: dict[int, list[dict[str, Any]]] = {}  # partner -> its Adam state per parameter, after its last turn
    turn: dict[str, Any] = {"partner": None, "opt": None}

    class Warm(torch.optim.Adam):
        def __init__(self, params: Any, k: int, **kw: Any) -> None:
            super().__init__(params, **kw)
            self.k, self.t, self.base = k, 0, [g["lr"] for g in self.param_groups]

        def step(self, closure: Any = None) -> Any:  # type: ignore[override]
            self.t += 1
            for g, b in zip(self.param_groups, self.base):
                g["lr"] = b * min(1.0, self.t / self.k)
            return super().step(closure)

    def make_optimizer(model: Any, hp: Any) -> Any:
        if hp.optimizer != "adam":
            return make(model, hp)
        if "warmup" in v:
            return Warm(model.parameters(), v["warmup"], lr=hp.learning_rate, weight_decay=hp.weight_decay)
        opt = make(model, hp)
        if v.get("adam") == "keep" and turn["partner"] is not None:
            params = [p for g in opt.param_groups for p in g["params"]]
            for p, state in zip(params, kept.get(turn["partner"], [])):
                opt.state[p] = {k: x.clone() for k, x in state.items()}
            turn["opt"] = opt
        return opt

    def damped_fit(task: Any, model: Any, data: Any, hp: Any, generator: Any, **kw: Any) -> float:
        start = {k: t.detach().clone() for k, t in model.state_dict().items()}
        loss = fit(task, model, data, hp, generator, **kw)
        with torch.no_grad():
            for k, t in model.state_dict().items():
                if t.is_floating_point():
                    t.copy_(start[k] + v["damp"] * (t - start[k]))
        return loss

    if "share" in v:  # proportional local training: a batch of at least `share` of the partner's pool
        fits = partner_mod.batch_params

        def proportional(pool: Any, hp: Any, spent: Any = ()) -> Any:
            fitted = fits(pool, hp, spent)
            if fitted is None:
                return None
            trainable = len(pool.fresh(spent)) + len(pool.reusable(spent))
            want = min(trainable, max(fitted.effective_batch_size, round(v["share"] * len(pool))))
            return fitted.updated({"batch_size": want}) if want != fitted.effective_batch_size else fitted

        partner_mod.batch_params = proportional
    if "prop" in v:  # batches proportional to the pool: every hospital's volumes visited as often per turn
        fits = partner_mod.batch_params

        def pro_rata(pool: Any, hp: Any, spent: Any = ()) -> Any:
            trainable = len(pool.fresh(spent)) + len(pool.reusable(spent))
            want = min(trainable, max(2, round(v["prop"] * hp.effective_batch_size * len(pool) / mean_pool)))
            if want < 2:
                return None
            return fits(pool, hp.updated({"batch_size": want, "min_batch_size": min(want, hp.min_batch_size)}),
                        spent)

        partner_mod.batch_params = pro_rata
    train_mod.make_optimizer = make_optimizer
    if "damp" in v:
        train_mod.fit = damped_fit
    if v.get("adam") == "keep":
        increment = partner_mod.Partner.increment

        def keeping(self: Any, *a: Any, **kw: Any) -> Any:
            turn["partner"], turn["opt"] = id(self), None
            out = increment(self, *a, **kw)
            opt = turn["opt"]
            if opt is not None:
                params = [p for g in opt.param_groups for p in g["params"]]
                kept[id(self)] = [{k: (x.clone() if torch.is_tensor(x) else x) for k, x in opt.state[p].items()}
                                  for p in params]
            turn["partner"] = None
            return out

        partner_mod.Partner.increment = keeping  # type: ignore[method-assign]


def _run(job: tuple[str, str, int, int, str]) -> tuple[tuple[str, str, int, int, str], dict[str, Any]]:
    task, variant, seed, partners, split = job
    import dataclasses

    import torch

    from tclearn.demo.engine import MODEL_FILE, DemoOptions, run_coalition
    from tclearn.learning import get_task
    from tclearn.learning.serialize import state_from_bytes

    torch.set_num_threads(1)
    v = _variant(variant)
    cls = type(get_task(task))  # this process runs one task's jobs only: the class default is the genesis's
    given = {field: v[key] for key, field in _HP_FIELDS.items() if key in v}
    cls.default_hyperparams = dataclasses.replace(cls.default_hyperparams, **given)
    per_partner = max(12, 96 // partners) if task == "bladder" else None
    _patch_training(v, mean_pool=float(per_partner or 0))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run = run_coalition(DemoOptions(task=task, partners=partners, split=split, seed=seed, rounds=400,
                                        adaptive_lr=True, centralized=False, out=Path(tmp),
                                        per_partner=per_partner,
                                        stop_patience=int(v["patience"]) if "patience" in v else None,
                                        max_pool_passes=v.get("passes"), lr_epochs=v.get("late"),
                                        turns_by_pool=None if "turns" not in v else v["turns"] == "pool"))
        final = state_from_bytes((Path(tmp) / MODEL_FILE).read_bytes())
    return job, {"final": run.final_score, "final_held_out": _held_out_score(get_task(task), partners, seed, final),
                 "blocks": len(run.blocks), "wall_s": time.perf_counter() - t0,
                 "honest_rejection_rate": run.honest_rejection_rate(), "stopped_because": run.extra["stopped_because"],
                 "curve": [[b.index, round(b.elapsed_s, 3), b.head_score] for b in run.blocks],
                 "machine": machine()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+", type=str)
    ap.add_argument("--task", default="bladder", choices=("bladder", "digits"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="run seeds first-seed … first-seed + seeds − 1 (fresh seeds to check a choice made on others)")
    ap.add_argument("--partners", type=int, default=4)
    ap.add_argument("--split", default="non-iid")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="default: bench/results/lr_schedule_<task>.json")
    ap.add_argument("--references", type=Path, default=None,
                    help="a bench/centralized_vs_tclearn.py result: report each run's gap to its reference")
    args = ap.parse_args()
    args.out = args.out or RESULTS / f"lr_schedule_{args.task}.json"
    for v in args.variants:
        _variant(v)
    raw: dict[str, Any] = json.loads(args.out.read_text())["raw"] if args.out.exists() else {}
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    jobs = [(args.task, v, s, args.partners, args.split) for v in args.variants for s in seeds]
    todo = [j for j in jobs if "|".join(map(str, j)) not in raw]
    print(f"{len(jobs)} runs, {len(todo)} to do on {args.jobs} processes", flush=True)
    # a fresh process per run: a variant patches its process (a class default, the optimiser), and a worker that
    # ran `epochs=1` would otherwise hand its epochs to the next variant
    with mp.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        for job, out in pool.imap_unordered(_run, todo):
            raw["|".join(map(str, job))] = out
            print(f"{' '.join(map(str, job))}: score {out['final']:.4f} in {out['blocks']} blocks "
                  f"({out['wall_s']:.0f} s)", flush=True)
            args.out.write_text(json.dumps({"raw": raw}, indent=1) + "\n")
    refs: dict[int, float] = {}
    refs_t: dict[int, float] = {}
    if args.references is not None:
        ref_raw = json.loads(args.references.read_text())["raw"]
        ref_runs = {s: ref_raw[f"reference|{args.task}|{s}|{args.partners}|{args.split}|0"] for s in seeds}
        refs = {s: r["score"] for s, r in ref_runs.items()}
        refs_t = {s: r["held_out"] for s, r in ref_runs.items() if r.get("held_out") is not None}
    summary: dict[str, Any] = {}
    print(f"\n{args.task}, {args.partners} partners, {args.split}")
    print(f"{'variant':<22} {'seeds':>5} {'score':>17} {'gap on G':>15} {'gap on held-out T':>17} {'blocks':>7} "
          f"{'wall s':>7}")
    for v in args.variants:
        runs = [_run_of(raw, args, v, s) for s in seeds]
        finals = [r["final"] for r in runs]
        summary[v] = {**_mean_ci(finals), "finals": finals,
                      "blocks_mean": statistics.mean(r["blocks"] for r in runs),
                      "wall_s_mean": statistics.mean(r["wall_s"] for r in runs)}
        gap = "-"
        if refs:
            gaps = [100 * (refs[s] - f) for s, f in zip(seeds, finals)]
            summary[v]["gap_points"] = {**_mean_ci(gaps), "runs": gaps}
            gap = f"{summary[v]['gap_points']['mean']:+6.2f} ± {summary[v]['gap_points']['ci95']:5.2f}"
        held = "-"
        if len(refs_t) == len(runs) and all(r.get("final_held_out") is not None for r in runs):
            gaps_t = [100 * (refs_t[s] - r["final_held_out"]) for s, r in zip(seeds, runs)]
            summary[v]["gap_held_out_points"] = {**_mean_ci(gaps_t), "runs": gaps_t}
            held = f"{summary[v]['gap_held_out_points']['mean']:+6.2f} ± {summary[v]['gap_held_out_points']['ci95']:5.2f}"
        row = summary[v]
        print(f"{v:<22} {len(finals):>5} {row['mean']:.4f} ± {row['ci95']:.4f} {gap:>15} {held:>17} "
              f"{row['blocks_mean']:>7.0f} {row['wall_s_mean']:>7.0f}")
    paired = _paired(raw, args, seeds)
    out = {"task": args.task, "partners": args.partners, "split": args.split, "seeds": seeds, "summary": summary,
           "raw": raw, **({"paired_vs_default": paired} if paired else {})}
    if args.references is not None:
        out["references"] = {"file": args.references.name, "scores": refs}
    args.out.write_text(json.dumps(out, indent=1) + "\n")


def _run_of(raw: dict[str, Any], args: argparse.Namespace, variant: str, seed: int) -> dict[str, Any]:
    """The stored run of `variant` and `seed` in this invocation's task, partners and split (the job's key)."""
    return raw["|".join(map(str, (args.task, variant, seed, args.partners, args.split)))]


def _paired(raw: dict[str, Any], args: argparse.Namespace, seeds: list[int]) -> dict[str, Any]:
    """Each variant against `default`, seed by seed: the change of the final score (on T where there is one), in points.

    Paired differences cancel what a seed's split and G do to both runs, so they tell
    a tenth of a point apart where the variants' own intervals (±0.3–0.7) cannot.
    """
    if "default" not in args.variants:
        return {}
    key = "final_held_out" if all(_run_of(raw, args, "default", s).get("final_held_out") is not None
                                  for s in seeds) else "final"
    base = [_run_of(raw, args, "default", s)[key] for s in seeds]
    out: dict[str, Any] = {}
    for v in args.variants:
        if v == "default":
            continue
        mine = [_run_of(raw, args, v, s)[key] for s in seeds]
        diffs = [100 * (m - b) for m, b in zip(mine, base)]
        out[v] = {"score": key, **_mean_ci(diffs), "better": sum(d > 0 for d in diffs),
                  "worse": sum(d < 0 for d in diffs), "runs": diffs}
        print(f"{v} − default, seed by seed, on {'T' if key == 'final_held_out' else 'G'}: "
              f"{out[v]['mean']:+.2f} ± {out[v]['ci95']:.2f} points (better in {out[v]['better']} of {len(seeds)})")
    return out


def _mean_ci(xs: list[float]) -> dict[str, float]:
    mean, half = _ci(xs)  # the 95 % t-interval of bench/centralized_vs_tclearn.py
    return {"mean": mean, "ci95": half}


if __name__ == "__main__":
    main()
