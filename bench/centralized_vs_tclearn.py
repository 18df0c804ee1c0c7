"""TCLearn trained to convergence vs a centralised model trained to convergence.

For each task (`digits`, `bladder`), split (IID; non-IID: label skew with
Dirichlet 0.5 for digits, Dirichlet 0.5 quantity skew on top of per-hospital
scanners for bladder) and partner count (4, 10), over several seeds:

* the coalition runs until the genesis stopping rule says it has converged
  (`tclearn demo`'s defaults: no gain on G for max(12, 3 × partners) accepted
  increments);
* the centralised reference is what a practitioner holding all the data
  would train: the same model from the same initial weights on the pooled
  training data, early stopping on a validation split of that training data
  (never G; 15 %, `--val-share`: records name theirs, and a record made
  with another share is run again), the learning rate chosen on it from a
  grid of four, 3× apart
  (`GRIDS`; a fifth, 3× lower, was never chosen in the first seed's runs and
  was dropped), halved on plateaus
  (`tclearn.learning.train_centralized_converged`). Records made with the
  earlier three-rate grid are extended in place: only the missing rate runs,
  and the better validation score (ties: the lower validation loss, rerunning
  the earlier choice to learn it) wins, exactly as a search over the whole
  grid would choose.

Scored where: both sides on the coalition's G, and for bladder also on a
held-out test set T (`HELD_OUT` = 128 phantoms drawn as G is, covering every
hospital's scanner, on a stream that no partner, G or validation split ever
draws from: `tclearn.data.phantom_test_set`). The coalition accepts its
increments on G, so its G score has been selected on, and G's 32 volumes make
a noisy judge (a seed's gap on G and on T can differ by more than a point); T
is the unbiased comparison. Digits has no sample to spare for a T: its 1,797
images are all pools or G.

Bladder hospitals hold 24 volumes each with 4 partners and 12 with 10 (96
and 120 in all), so more partners share about the same data, as with digits.

Each coalition runs with its task's demo default for the adaptive
learning-rate policy (certified `hyperparams` blocks; on for both tasks, for
digits since 2026-12-01), and with the other choice on the 4-partner IID configuration
(`--adaptive-all`: everywhere). It times how long each side
takes to reach the centralised score minus 1 point, both clocks starting
with the task and its data in hand: the coalition from then on with
everything included (all members in one process: founding it, keys,
genesis, chain files, every member's training, evaluation, signatures and
writes; `time_ratio`; with the loading of its data too: `time_ratio_with_data`),
the centralised model from the start of its chosen run (the grid search
excluded; the search's total is reported too), training and validating:
the G score it also computes every epoch, for the curve only, is left out
of its clock (records made before 2026-11-30 17:00 UTC include it;
`--redo reference` runs them again). The workers import what both sides
need before any timed job (`_warm`). With `--time-repeats K` each timed run
(the coalition; the reference's chosen rate, after its search) is made K
times and each point of its curve is timed by the least of its K clocks, as
`timeit` does: the runs are the same deterministic work (a rerun whose
curve differs is an error), so what differs between them is the machine's
noise, which decides a ratio when the reference reaches its target in a
fraction of a second (digits). Records timed fewer times than asked are
topped up with the missing runs only (not the reference's search; a record
another kind of machine made, whose rerun is not the same curve, is made
again whole); records name their `time_repeats` and each run's `run_times_s`.

Prints a table; writes `bench/results/centralized_vs_tclearn.json` (means,
95 % t-intervals, every run) and `centralized_vs_tclearn.png`. Jobs run on
`--jobs` processes, seed by seed, and the file is rewritten after every job,
so an interrupted run keeps its complete seeds.

    python bench/centralized_vs_tclearn.py [--seeds 5] [--tasks digits bladder] [--jobs 2] [--redo reference]
    python bench/centralized_vs_tclearn.py --tasks digits --adaptive-all --jobs 1 --time-repeats 3
    python bench/centralized_vs_tclearn.py --seeds 20 --tasks bladder --partners 4 --splits non-iid \
        --val-share 0.08333 --out bench/results/reference_val_share_bladder_niid4_seeds0-19.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Collection

RESULTS = Path(__file__).parent / "results"
GRIDS = {"digits": (0.027, 0.009, 0.003, 0.001), "bladder": (0.27, 0.09, 0.03, 0.01)}
# the grids of records that do not name theirs (the first runs): the top rate was chosen in 12 of 20 digits and
# 6 of 20 bladder splits, so a rate 3× higher was added
OLD_GRIDS = {"digits": (0.009, 0.003, 0.001), "bladder": (0.09, 0.03, 0.01)}
# bladder: the same ~100 volumes in all, shared by 4 or by 10 hospitals (digits splits its fixed 1,497 too)
BLADDER_TOTAL = 96


def machine() -> dict[str, Any]:
    """What a run's bits depend on besides the code: the CPU and the numeric libraries.

    Why per record: a coalition's chain is the same bits on every rerun on
    one kind of machine, but the libraries under torch (oneDNN for training's
    convolutions, MKL for its matrix products) pick their kernels by
    processor and round differently, and library versions move bits too,
    so the same seed on another machine may give another chain
    (bladder non-IID 4, seed 3: 0.8685 in 94 blocks on the machine of
    2026-11-30, 0.8655 in 90 on the AVX-512 EPYC of 2026-12-01; which of the
    two moved it went unrecorded). A file that merges runs from several
    machines says which is which.
    """
    import platform

    import numpy
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
               platform.processor() or platform.machine())
    out = {"cpu": cpu, "torch": torch.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "numpy": numpy.__version__}
    try:
        import monai

        out["monai"] = monai.__version__
    except ImportError:
        pass
    return out


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _per_partner(task: str, partners: int) -> int | None:
    return max(12, BLADDER_TOTAL // partners) if task == "bladder" else None


# bladder: volumes of the held-out test set T (`tclearn.data.phantom_test_set`): neither side ever sees them
HELD_OUT = 128


def _held_out_score(task: Any, partners: int, seed: int, state: Any) -> float | None:
    """`state`'s mean score on the held-out test set T (bladder; digits has no sample to spare: None)."""
    if task.name != "bladder":
        return None
    from tclearn.data import phantom_test_set
    from tclearn.data.phantoms import HELD_OUT_STREAM
    from tclearn.learning import evaluate_state, mean_score

    held_out = phantom_test_set(HELD_OUT, seed=seed, n_partners=partners, shape=task.shape, stream=HELD_OUT_STREAM)
    return mean_score(evaluate_state(task, state, held_out))


# the reference's validation split of the pooled training data (`--val-share`; records without `val_share` used
# this); a worker's own share is set by `_init`
VAL_SHARE = 0.15
_val_share = VAL_SHARE



def _reference(task_name: str, seed: int, partners: int, split: str,
               grid: tuple[float, ...] | None = None, held_out: bool = True,
               leave_out: Collection[int] = ()) -> dict[str, Any]:
    """The converged centralised reference on the pooled pools of the demo's split (`leave_out`: partners whose
    pools it does not get, `bench/honest_data_ceiling.py`)."""
    import torch

    from tclearn.data.dataset import concat_datasets
    from tclearn.founding import coalition_data
    from tclearn.learning import get_task, train_centralized_converged

    torch.set_num_threads(1)
    task = get_task(task_name)
    # the demo's split (tclearn.founding): the same pools the coalition run below trains on
    data = coalition_data(task, partners, seed, split=split, per_partner=_per_partner(task_name, partners))
    pooled = concat_datasets([p for k, p in enumerate(data.partners) if k not in leave_out])
    res = train_centralized_converged(task, pooled, data.test, task.default_hyperparams, seed=seed,
                                      model_seed=seed, learning_rates=grid or GRIDS[task_name], threads=1,
                                      val_share=_val_share)
    return {"score": res.score, "held_out": _held_out_score(task, partners, seed, res.state) if held_out else None,
            "validation": res.val_score, "val_loss": res.val_loss,
            "learning_rate": res.learning_rate, "grid": list(grid or GRIDS[task_name]), "tried": res.tried,
            "epochs": res.epochs, "best_epoch": res.best_epoch, "time_s": res.seconds,
            "search_time_s": res.total_seconds, "curve": [list(p) for p in res.history], "val_share": _val_share,
            "samples": len(pooled)}


def _grid_of(task: str, record: dict[str, Any]) -> tuple[float, ...]:
    return tuple(record.get("grid") or OLD_GRIDS[task])


def _extend(task: str, seed: int, partners: int, split: str, old: dict[str, Any]) -> dict[str, Any]:
    """Search the rates of `GRIDS` that `old` did not try; keep whichever a search over the union would choose."""
    have = _grid_of(task, old)
    new = _reference(task, seed, partners, split, tuple(lr for lr in GRIDS[task] if lr not in have))
    if new["validation"] == old["validation"] and "val_loss" not in old:  # a tie: the loss decides, so learn it
        old = {**_reference(task, seed, partners, split, (old["learning_rate"],)),
               "search_time_s": old["search_time_s"]}
    tie_old_wins = new["validation"] == old["validation"] and old["val_loss"] <= new["val_loss"]
    winner = old if old["validation"] > new["validation"] or tie_old_wins else new
    return {**winner, "grid": sorted({*have, *new["grid"]}, reverse=True),
            "tried": {**old.get("tried", {repr(float(old["learning_rate"])): old["validation"]}), **new["tried"]},
            "search_time_s": old["search_time_s"] + new["search_time_s"]}


def _coalition(task: str, seed: int, partners: int, split: str, adaptive: bool,
               held_out: bool = True) -> dict[str, Any]:
    from tclearn.demo.engine import MODEL_FILE, DemoOptions, run_coalition
    from tclearn.learning import get_task
    from tclearn.learning.serialize import state_from_bytes

    with tempfile.TemporaryDirectory() as tmp:
        run = run_coalition(DemoOptions(task=task, partners=partners, split=split, seed=seed, rounds=400,
                                        adaptive_lr=adaptive, centralized=False, out=Path(tmp),
                                        per_partner=_per_partner(task, partners)))
        final = state_from_bytes((Path(tmp) / MODEL_FILE).read_bytes())
    return {"final": run.final_score,
            "final_held_out": _held_out_score(get_task(task), partners, seed, final) if held_out else None,
            "blocks": len(run.blocks), "accepted": run.accepted, "rejected": run.rejected,
            "honest_rejection_rate": run.honest_rejection_rate(), "stopped_because": run.extra["stopped_because"],
            "hyperparams_blocks": run.extra["hyperparams_blocks"], "wall_s": run.wall_time_s,
            "data_ready_s": run.extra["data_ready_s"],
            "curve": [[b.index, round(b.elapsed_s, 3), b.head_score] for b in run.blocks],
            "data_ids": {k: v for k, v in run.extra["data_ids"].items() if k != "refusals"}}


def _warm() -> None:
    """Pool initialiser: pay the lazy imports before any timed run.

    The first optimiser a process builds imports torch._dynamo (about 2 s
    here). The centralised run's clock starts after its optimiser exists, a
    coalition's before its first partner builds one; without this the first
    job of each worker would carry the import in its time. The same for the
    tasks' own imports (MONAI for bladder, 1.9 s; scikit-learn's data sets
    for digits, 1.3 s), which a coalition's run used to pay only when its
    worker had not run a centralised job before it.
    """
    import sklearn.datasets  # noqa: F401  (digits' loader)
    import torch

    from tclearn.learning import get_task

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    for name in GRIDS:
        get_task(name)


def _init(val_share: float, repeats: int = 1) -> None:
    global _val_share, _repeats
    _val_share = val_share
    _repeats = repeats
    _warm()


# `--time-repeats`: how many times each timed run is made; a worker's own count is set by `_init`
_repeats = 1


def least_times(curves: list[list[list[float]]], t_col: int, same: tuple[int, ...],
                offsets: list[float] | None = None) -> list[list[float]]:
    """One deterministic job's curve, each point's clock the least over its runs (`timeit`'s rule).

    Every run of the job must give the same curve but for its clock (the
    columns `same`, e.g. block index and score, equal to the bit): else the
    job is not deterministic and its runs are not the same work, and it
    raises `RuntimeError`. `offsets`: each run's clock at which its own timing starts
    (a coalition's data loaded): the least is taken over the clocks from that
    point, then the least offset is added back, so a time to target counted
    from the offset is the least over the runs too.
    """
    first = curves[0]
    for other in curves[1:]:
        if len(other) != len(first) or any(p[i] != q[i] for p, q in zip(first, other) for i in same):
            raise RuntimeError("a rerun gave another curve: the job is not deterministic, its clocks cannot be pooled")
    offs = offsets or [0.0] * len(curves)
    base = min(offs)
    out = []
    for j, point in enumerate(first):
        t = min(c[j][t_col] - o for c, o in zip(curves, offs)) + base
        out.append([t if i == t_col else v for i, v in enumerate(point)])
    return out


def _more_clocks(side: str, task: str, seed: int, partners: int, split: str, adaptive: bool,
                 out: dict[str, Any], n: int) -> dict[str, Any]:
    """`out` with `n` more runs of its timed part: the same work, each point timed by the least clock so far.

    The reference's search is not made again: its chosen rate's run is. A
    rerun whose curve is not `out`'s raises `RuntimeError` (`least_times`).
    """
    if n <= 0:
        return out
    have = out.get("time_repeats", 1)
    if side == "reference":
        again = [_reference(task, seed, partners, split, (out["learning_rate"],), held_out=False) for _ in range(n)]
        return {**out, "curve": least_times([out["curve"], *(a["curve"] for a in again)], 0, (1, 2)),
                "time_repeats": have + n, "run_times_s": [*out.get("run_times_s", [out["time_s"]]),
                                                          *(a["time_s"] for a in again)]}
    runs = [_coalition(task, seed, partners, split, adaptive, held_out=False) for _ in range(n)]
    ready = [out["data_ready_s"], *(r["data_ready_s"] for r in runs)]
    return {**out, "curve": least_times([out["curve"], *(r["curve"] for r in runs)], 1, (0, 2), ready),
            "data_ready_s": min(ready), "time_repeats": have + n,
            "run_times_s": [*out.get("run_times_s", [out["wall_s"]]), *(r["wall_s"] for r in runs)]}


def _job(job: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, Any]]:
    kind, task, seed_s, partners_s, split, adaptive_s = job[:6]
    seed, partners, adaptive = int(seed_s), int(partners_s), adaptive_s == "1"
    t0 = time.perf_counter()
    if kind == "extend":
        out = _extend(task, seed, partners, split, json.loads(job[6]))
    elif kind.startswith("retime-"):  # a record timed fewer times than asked: the missing runs only
        side, old = kind.removeprefix("retime-"), json.loads(job[6])
        try:
            out = _more_clocks(side, task, seed, partners, split, adaptive, old,
                               _repeats - old.get("time_repeats", 1))
        except RuntimeError:  # not the same work here (another kind of machine made it): all of it again
            job = (side, *job[1:6])
            return _job(job)
    elif kind == "reference":
        out = _more_clocks(kind, task, seed, partners, split, adaptive, _reference(task, seed, partners, split),
                           _repeats - 1)
    else:
        out = _more_clocks(kind, task, seed, partners, split, adaptive,
                           _coalition(task, seed, partners, split, adaptive), _repeats - 1)
    out["job_s"] = time.perf_counter() - t0
    out["machine"] = machine()
    return job, out


def _time_to(curve: list[list[float]], target: float, t_col: int, s_col: int) -> float | None:
    return next((p[t_col] for p in curve if p[s_col] >= target), None)


def t975(df: int) -> float:
    """The two-sided 95 % Student t quantile for `df` degrees of freedom.

    scipy's, exact for any df: a table that stopped at 9 (ten seeds) used to
    fall back to the normal 1.96 beyond it, which made twenty-seed
    intervals 7 % too narrow (t = 2.093 for df = 19).
    """
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def _ci(xs: list[float]) -> tuple[float, float]:
    """The mean of `xs` and the half-width of its 95 % t-interval (nan for a single value)."""
    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def summarise(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, run in raw.items():
        kind, task, seed, partners, split, adaptive = key.split("|")
        if kind != "coalition":
            continue
        ref = raw.get("|".join(("reference", task, seed, partners, split, "0")))
        if ref is None:
            continue
        cfg = f"{task} {split} {partners} partners" + (" adaptive-lr" if adaptive == "1" else "")
        target = ref["score"] - 0.01
        t_coal_all = _time_to(run["curve"], target, 1, 2)
        # both clocks from the task and its data in hand (records made before 2026-12-01 have no data_ready_s:
        # their coalition clock includes loading the data, which the centralised clock never did)
        t_coal = None if t_coal_all is None else t_coal_all - run.get("data_ready_s", 0.0)
        t_cent = _time_to(ref["curve"], target, 0, 2)
        row = table.setdefault(cfg, {"runs": []})
        held_out = {}
        if run.get("final_held_out") is not None and ref.get("held_out") is not None:
            held_out = {"tclearn_held_out": run["final_held_out"], "centralized_held_out": ref["held_out"],
                        "gap_held_out_points": 100 * (ref["held_out"] - run["final_held_out"])}
        row["runs"].append({"seed": int(seed), "tclearn": run["final"], "centralized": ref["score"],
                            "gap_points": 100 * (ref["score"] - run["final"]), **held_out, "blocks": run["blocks"],
                            "honest_rejection_rate": run["honest_rejection_rate"],
                            "tclearn_time_to_target_s": t_coal, "centralized_time_to_target_s": t_cent,
                            "time_ratio": (t_coal / t_cent) if t_coal and t_cent else None,
                            "tclearn_time_to_target_with_data_s": t_coal_all,
                            "time_ratio_with_data": (t_coal_all / t_cent) if t_coal_all and t_cent else None,
                            "centralized_search_time_s": ref["search_time_s"],
                            "centralized_learning_rate": ref["learning_rate"]})
    for cfg, row in table.items():
        runs = sorted(row["runs"], key=lambda r: r["seed"])
        row["runs"] = runs
        for name in ("tclearn", "centralized", "gap_points", "tclearn_held_out", "centralized_held_out",
                     "gap_held_out_points"):
            if all(name in r for r in runs):
                m, h = _ci([r[name] for r in runs])
                row[name] = {"mean": m, "ci95": h}
        ratios = [r["time_ratio"] for r in runs if r["time_ratio"] is not None]
        row["time_ratio_median"] = statistics.median(ratios) if ratios else None
        with_data = [r["time_ratio_with_data"] for r in runs if r["time_ratio_with_data"] is not None]
        row["time_ratio_with_data_median"] = statistics.median(with_data) if with_data else None
        row["reached_target"] = f"{len(ratios)}/{len(runs)}"
        row["seeds"] = len(runs)
        row["honest_rejection_rate_mean"] = statistics.mean(r["honest_rejection_rate"] or 0.0 for r in runs)
        row["blocks_mean"] = statistics.mean(r["blocks"] for r in runs)
    return table


def plot(raw: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({k.split("|")[1] for k in raw})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        # seed 0 of 4 IID partners where the file has it, else of the first configuration it holds
        held = sorted({(int(k.split("|")[3]), k.split("|")[4]) for k in raw if k.split("|")[1] == task})
        partners, split = (4, "iid") if (4, "iid") in held else held[0]
        ref = raw.get(f"reference|{task}|0|{partners}|{split}|0")
        for adaptive, style in (("0", "-"), ("1", "--")):
            run = raw.get(f"coalition|{task}|0|{partners}|{split}|{adaptive}")
            if run:
                ax.plot([p[0] for p in run["curve"]], [p[2] for p in run["curve"]], style,
                        label="TCLearn" + (" + adaptive LR" if adaptive == "1" else ""))
                for hb in run["hyperparams_blocks"]:
                    ax.axvline(hb["index"], color="grey", lw=0.5, ls=":")
        if ref:
            ax.axhline(ref["score"], color="k", lw=1, label=f"centralised, converged ({ref['score']:.3f})")
        ax.set_title(f"{task}: {partners} partners, {'IID' if split == 'iid' else split}, seed 0")
        ax.set_xlabel("block")
        ax.set_ylabel("score on G")
        ax.set_ylim(bottom=0.5)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tasks", nargs="+", default=["digits", "bladder"])
    ap.add_argument("--partners", nargs="+", type=int, default=[4, 10])
    ap.add_argument("--splits", nargs="+", default=["iid", "non-iid"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--task-seeds", nargs="+", default=[], metavar="TASK=N",
                    help="fewer seeds for a task (e.g. bladder=3: its runs are the slow ones)")
    ap.add_argument("--adaptive-all", action="store_true",
                    help="also run the other learning-rate policy (adaptive or not: the one the task's demo does not "
                         "use by default) in every configuration (default: 4 partners IID only)")
    ap.add_argument("--out", type=Path, default=RESULTS / "centralized_vs_tclearn.json")
    ap.add_argument("--redo", choices=("reference", "coalition"), action="append", default=[],
                    help="run this side's jobs again even where --out holds them (the selected tasks, seeds, "
                         "partners and splits only), e.g. after a change to how it is timed")
    ap.add_argument("--val-share", type=float, default=VAL_SHARE,
                    help="the reference's validation split of the pooled training data (default 0.15); the coalition "
                         "sets aside its own share as the partners' local test sets (the task's local_test_share)")
    ap.add_argument("--time-repeats", type=int, default=1,
                    help="make each timed run this many times (the reference's chosen rate, the coalition) and time "
                         "each point of its curve by the least of its clocks, as timeit does: the same deterministic "
                         "work, so the spread is the machine's noise (a rerun that gives another curve is an error)")
    args = ap.parse_args()
    if args.time_repeats < 1:
        ap.error("--time-repeats must be ≥ 1")
    if not 0.0 < args.val_share < 0.5:
        ap.error("--val-share must lie in (0, 0.5)")
    from tclearn.learning import get_task

    task_seeds = {k: int(v) for k, v in (x.split("=", 1) for x in args.task_seeds)}
    jobs: list[tuple[str, ...]] = []
    for seed in range(args.seeds):  # seed-major: an interrupted run keeps whole seeds
        for task in args.tasks:
            if seed >= task_seeds.get(task, args.seeds):
                continue
            # the task's own adaptive-rate policy everywhere (the demo's default), the other one where asked
            default = "1" if get_task(task).adaptive_lr_by_default else "0"
            for partners in args.partners:
                for split in args.splits:
                    jobs.append(("reference", task, str(seed), str(partners), split, "0"))
                    jobs.append(("coalition", task, str(seed), str(partners), split, default))
                    if args.adaptive_all or (partners == 4 and split == "iid"):
                        jobs.append(("coalition", task, str(seed), str(partners), split, "0" if default == "1" else "1"))
    raw: dict[str, dict[str, Any]] = {}
    if args.out.exists():  # resume: keep finished jobs
        old = json.loads(args.out.read_text())
        raw = old.get("raw", {})
    todo: list[tuple[str, ...]] = []
    for j in jobs:
        key = "|".join(j)
        if j[0] in args.redo:
            raw.pop(key, None)
        if j[0] == "reference" and key in raw and raw[key].get("val_share", VAL_SHARE) != args.val_share:
            raw.pop(key)  # another validation split: not this reference
        if key not in raw:
            todo.append(j)
        elif j[0] == "reference" and set(GRIDS[j[1]]) - set(_grid_of(j[1], raw[key])):
            todo.append(("extend", *j[1:], json.dumps(raw[key])))
        elif raw[key].get("time_repeats", 1) < args.time_repeats:  # timed fewer times than asked: top it up
            todo.append((f"retime-{j[0]}", *j[1:], json.dumps(raw[key])))
    print(f"{len(jobs)} jobs, {len(todo)} to run on {args.jobs} processes", flush=True)
    t0 = time.perf_counter()
    init = (args.val_share, args.time_repeats)
    with mp.get_context("spawn").Pool(args.jobs, initializer=_init, initargs=init) as pool:
        for job, out in pool.imap(_job, todo):
            side = "reference" if job[0] == "extend" else job[0].removeprefix("retime-")
            job = (side, *job[1:6])
            raw["|".join(job)] = out
            what = (f"score {out['score']:.4f} (lr {out['learning_rate']:g})" if job[0] == "reference"
                    else f"final {out['final']:.4f} in {out['blocks']} blocks")
            print(f"[{time.perf_counter() - t0:6.0f} s] {' '.join(job)}: {what} ({out['job_s']:.0f} s)", flush=True)
            args.out.write_text(json.dumps({"summary": summarise(raw), "raw": raw}, indent=1) + "\n")
    summary = summarise(raw)
    args.out.write_text(json.dumps({"summary": summary, "raw": raw}, indent=1) + "\n")
    plot(raw, args.out.with_suffix(".png"))
    print(f"\n{'configuration':<40} {'seeds':>5} {'TCLearn on G':>17} {'centralised on G':>17} {'gap on G':>15} "
          f"{'gap on held-out T':>17} {'time ratio':>10} {'with data':>9} {'rej.':>6}")
    for cfg, row in sorted(summary.items()):
        t, c, g = row["tclearn"], row["centralized"], row["gap_points"]
        ratio = "-" if row["time_ratio_median"] is None else f"{row['time_ratio_median']:.2f}"
        with_data = row.get("time_ratio_with_data_median")
        with_data_s = "-" if with_data is None else f"{with_data:.2f}"
        h = row.get("gap_held_out_points")
        held = "-" if h is None else f"{h['mean']:+6.2f} ± {h['ci95']:5.2f}"
        print(f"{cfg:<40} {row['seeds']:>5} {t['mean']:.4f} ± {t['ci95']:.4f} {c['mean']:.4f} ± {c['ci95']:.4f} "
              f"{g['mean']:+6.2f} ± {g['ci95']:5.2f} {held:>17} {ratio:>10} {with_data_s:>9} "
              f"{100 * row['honest_rejection_rate_mean']:5.1f}%")
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
