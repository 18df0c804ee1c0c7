"""TCLearn under attack vs robust-aggregation baselines, on `digits`.

TCLearn: real coalition (`run_coalition`), 5 partners, committee 3, λ 0.97,
quality floor max_drop 0.01 (genesis consensus.max_drop: the issue's "1 point"),
honest partners train with logit adjustment and not-true distillation (the digits
defaults; attackers train plainly) and check their candidate on G before proposing
(`tclearn.learning.backtrack_to_floor`: an increment the floor would refuse is
shortened to 1/2 or 1/4 of its length; the demo's default), 14 rounds, malicious 0 %, 20 % (1/5), 40 % (2/5) and 30 % as 3 of 10 partners,
every attack of `tclearn.demo.engine.ATTACKS`, splits iid and non-iid.
Per run: final score, share of degrading candidates (score_new < score_old −
0.01, or invalid) that ended rejected, share of honest increments rejected,
rounds to reach 95 % of the clean run's final score, within 2 points of clean.
Also: within 2 points of the *honest-only* reference, the `lazy` run of the
same fraction (lazy candidates are refused, so only the honest partners' data
trains the model): on label-skewed splits the attacker's classes are lost to
the coalition whatever the defence, and this is the score a perfect defence
reaches. Colluding validators (`--collude`): label-flip, sign-flip and scale
at every fraction, both splits.

Baselines: a synchronous loop on the same data split (same malicious partners):
every round each partner trains from the global model on a fresh batch of its
own pool (the same 96-sample batches and hyper-parameters as TCLearn), malicious
partners poison their data or transform their increment with the same attack
functions, the server aggregates and applies. Rounds: until the partners' pools
run out (5 partners ≈ 3 rounds = 15 increments ≈ TCLearn's 14). `none` is cyclic
weight transfer (partners in turn, every increment applied, 14 increments).
FLTrust's root set: 50 samples drawn from the pooled training data (seeded),
trained by the server each round (40 train, 10 unused).

    python bench/attacks.py [--quick] [--seeds 1] [--workers 2] [--out bench/results/attacks.json]

`--first-seed N` runs seeds N … N + seeds − 1 (fresh seeds, to test a choice
made on the first ones); `--adaptive-lr/--no-adaptive-lr` founds every TCLearn
coalition with or without the genesis adaptive learning-rate policy (default:
the task's, on for digits since 2026-12-01). The test that made it digits'
default: `--converge --ten --no-baselines --no-collude --splits non-iid
--fractions 0%/10 30%/10 --attacks lazy --seeds 20 --first-seed 10`, with and
without the policy (README, results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tclearn.attacks.partner import MODEL_ATTACKS, AttackedPartner
from tclearn.attacks.partner import flatten as _flat
from tclearn.attacks.partner import unflatten as _unflat
from tclearn.baselines import aggregators as agg
from tclearn.data import DataPool
from tclearn.demo.engine import ATTACKS, DemoOptions, run_coalition
from tclearn.learning import get_task, train_increment
from tclearn.learning.partner import Partner
from tclearn.learning.evaluate import evaluate_state
from tclearn.quality import g_floor_broken

TASK = "digits"
ROUNDS = 14
ADAPTIVE_LR: bool | None = None  # --adaptive-lr/--no-adaptive-lr: the genesis policy (None: the task's default)
CONVERGE_CAP = 300  # --converge: a cap; the demo's stopping rule (no gain on G for max(12, 3 x partners) rounds) ends runs
COMMITTEE = 3
LAM = 0.97
MAX_DROP = 0.01
COLLUDE_ATTACKS = ("label-flip", "sign-flip", "scale")
# (label, partners, malicious)
FRACTIONS = [("0%", 5, 0), ("20%", 5, 1), ("40%", 5, 2), ("0%/10", 10, 0), ("30%/10", 10, 3)]
# colluding validators beyond the committee's bound: with k = 3, two colluders on a committee are its
# majority (k = 3 tolerates no faulty validator); these fractions rerun the 10-partner collusion case
# with k = 7 (safe while fewer than 7/3 of the committee collude in a round). Only clean and collusion jobs.
WIDE_COMMITTEE = 7
WIDE_FRACTIONS = [("0%/10 k7", 10, 0), ("30%/10 k7", 10, 3)]


def committee_of(label: str) -> int:
    return WIDE_COMMITTEE if label.endswith(" k7") else COMMITTEE
SPLITS = ("iid", "non-iid")
BASELINES = ("none", "fedavg", "krum", "multi-krum", "median", "trimmed-mean", "fltrust")
KEY = b"bench-attacks-key"[:16]


# ---------------------------------------------------------------- TCLearn

def tclearn_job(args: tuple[str, int, int, str | None, str, int, bool]) -> dict[str, Any]:
    label, n, m, attack, split, seed, collude = args
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run = run_coalition(DemoOptions(task=TASK, partners=n, rounds=ROUNDS, committee=committee_of(label), lam=LAM,
                                        seed=seed,
                                        out=Path(tmp), malicious=m, attack=attack, centralized=False, split=split,
                                        collude=collude, max_drop=MAX_DROP, adaptive_lr=ADAPTIVE_LR))
    props = run.proposals
    degrading = [b for b in props if b.score_new is None
                 or (b.score_old is not None and g_floor_broken(b.score_old, b.score_new, 0.01))]
    honest = [b for b in props if not b.malicious]
    return {
        "system": "tclearn", "fraction": label, "partners": n, "malicious_count": m, "attack": attack, "split": split,
        "seed": seed, "collude": collude, "committee": committee_of(label), "final_score": run.final_score, "initial_score": run.initial_score,
        "head_scores": [b.head_score for b in run.blocks],
        "kinds": [b.kind for b in run.blocks],
        "proposals": len(props), "accepted": run.accepted, "rejected": run.rejected,
        "malicious_proposals": sum(1 for b in props if b.malicious),
        "malicious_rejected": sum(1 for b in props if b.malicious and b.kind == "rejected"),
        "degrading": len(degrading), "degrading_rejected": sum(1 for b in degrading if b.kind == "rejected"),
        "degrading_rejected_share": (sum(1 for b in degrading if b.kind == "rejected") / len(degrading)) if degrading else None,
        "honest_proposals": len(honest), "honest_rejected": sum(1 for b in honest if b.kind == "rejected"),
        # honest increments rejected although they did not lower G by more than 1 point
        "honest_rejected_not_degrading": sum(1 for b in honest if b.kind == "rejected" and b not in degrading),
        "false_rejection_share": run.honest_rejection_rate(),
        "stopped_because": run.extra.get("stopped_because"), "blocks": len(run.blocks), "wall_s": run.wall_time_s,
        "adaptive_lr": run.extra.get("adaptive_lr") is not None,
    }


# ---------------------------------------------------------------- baselines

def _score(task: Any, state: dict[str, torch.Tensor], test: Any) -> float:
    s = evaluate_state(task, state, test)
    return float(sum(s) / len(s))


def _malicious_indices(n: int, m: int, seed: int) -> list[int]:
    # the same partners as run_coalition picks (names[1:] sampled with random.Random(seed))
    if not m:
        return []
    return sorted(random.Random(seed).sample(range(1, n), m))


class _Partner:
    """A baseline's partner: the node's and the demo's `Partner` (with its attack as a wrapper), minus the chain."""

    def __init__(self, i: int, task: Any, data: Any, attack: str | None, seed: int, n: int, m: int,
                 hp: Any) -> None:
        self.i, self.attack = i, attack
        self.partner = Partner(task, DataPool(data, KEY), None, hp, seed=seed * 1000 + i)
        self.attacker = None if attack is None else AttackedPartner(
            self.partner, attack, rng=np.random.default_rng([seed * 1000 + i, 0xA77AC]), key=KEY, n_partners=n,
            n_malicious=m)
        if self.attacker is not None:
            self.attacker.poison()  # a data attack's poisoned copy replaces the partner's data for good
        self.first: tuple[str, ...] | None = None

    @property
    def pool(self) -> DataPool:
        return self.partner.pool

    def can_train(self, hp: Any) -> bool:
        if self.attack == "replay" and self.first is not None:
            return True
        return len(self.pool.fresh()) >= hp.effective_batch_size  # the baselines train one pass (fresh batches)

    def update(self, head: dict[str, torch.Tensor], hp: Any, rnd: int) -> np.ndarray:
        self.partner.hp = hp
        pool, spent = self.pool, ()
        if self.attacker is not None:
            hp = self.attacker.hyperparams()  # as in the coalition: its data must bite
            pool, spent = self.attacker.batch_pool((), contributed=self.pool.contributed, started=self.first is not None)
        turn = self.partner.increment(head, (rnd,), hp, pool=pool, spent=spent)
        if turn is None:
            return np.zeros_like(_flat(head)[0])  # too few samples for a batch: nothing to add
        res = turn.result
        if pool is self.pool:
            self.partner.keep_local_test(res, into_l=False)
            self.pool.mark_contributed(res.new_ids)
        if self.first is None:
            self.first = res.data_ids
        vec = _flat(res.increment)[0]
        if self.attacker is not None and self.attack in MODEL_ATTACKS:
            return self.attacker.forge(vec, head, turn.hp)
        return vec


def baseline_job(args: tuple[str, str, int, int, str | None, str, int]) -> dict[str, Any]:
    method, label, n, m, attack, split, seed = args
    torch.set_num_threads(1)
    task = get_task(TASK)
    hp = task.default_hyperparams.updated({"batch_size": 96})  # the batches the baselines were measured with
    data = task.coalition_data(n, seed=seed, mode="iid" if split == "iid" else "label_skew")
    bad = set(_malicious_indices(n, m, seed))
    partners = [_Partner(i, task, data.partners[i], attack if i in bad else None, seed, n, m, hp) for i in range(n)]
    state = {k: v.clone() for k, v in task.initial_state(seed).items()}
    vec, layout = _flat(state)
    vec = vec.astype(np.float64)
    scores = [_score(task, state, data.test)]
    increments = 0
    samples = 0
    t0 = time.perf_counter()
    if method == "none":
        k = 0
        while increments < ROUNDS:
            ready = [p for p in partners if p.can_train(hp)]
            if not ready:
                break
            p = partners[k % n]
            k += 1
            if not p.can_train(hp):
                continue
            u = p.update(_unflat(vec.astype(np.float32), layout), hp, increments)
            vec = vec + u
            increments += 1
            samples += hp.effective_batch_size
            scores.append(_score(task, _unflat(vec.astype(np.float32), layout), data.test))
    else:
        f = max(m, 1)
        root_hp = hp.updated({"batch_size": 50, "min_batch_size": 40})
        rs = np.random.default_rng([seed, 0x5007])
        pooled = data.pooled
        root = pooled.subset(rs.choice(len(pooled), size=50, replace=False)) if method == "fltrust" else None
        rnd = 0
        while increments < ROUNDS:
            ready = [p for p in partners if p.can_train(hp)]
            if len(ready) < 2:
                break
            head = _unflat(vec.astype(np.float32), layout)
            ups = np.stack([p.update(head, hp, rnd) for p in ready]).astype(np.float64)
            ups = np.nan_to_num(ups, nan=0.0, posinf=1e6, neginf=-1e6)
            if method == "fedavg":
                g = agg.fedavg(ups)
            elif method == "krum":
                g = agg.krum(ups, f)
            elif method == "multi-krum":
                g = agg.multi_krum(ups, f)
            elif method == "median":
                g = agg.coordinate_median(ups)
            elif method == "trimmed-mean":
                g = agg.trimmed_mean(ups, beta=0.2 if m <= 1 else 0.4)
            elif method == "fltrust":
                r = train_increment(task, head, DataPool(root, KEY), root_hp, seed=seed * 7919 + rnd, threads=1)
                g = agg.fltrust(ups, _flat(r.increment)[0])
            else:
                raise ValueError(method)
            vec = vec + g
            rnd += 1
            increments += len(ready)
            samples += len(ready) * hp.effective_batch_size
            scores.append(_score(task, _unflat(vec.astype(np.float32), layout), data.test))
    return {"system": method, "fraction": label, "partners": n, "malicious_count": m, "attack": attack, "split": split,
            "seed": seed, "final_score": scores[-1], "scores": scores, "increments": increments,
            "samples_drawn": samples, "wall_s": time.perf_counter() - t0}


# ---------------------------------------------------------------- driver

def _run(job: tuple[str, tuple]) -> dict[str, Any]:
    kind, args = job
    try:
        return tclearn_job(args) if kind == "tclearn" else baseline_job(args)
    except Exception as e:  # keep the benchmark going; the failure is recorded
        return {"system": kind if kind == "tclearn" else args[0], "job": list(map(str, args)), "error": repr(e)}


def main() -> None:
    global ROUNDS, ADAPTIVE_LR
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="iid only; attacks label-flip, sign-flip, scale, alie")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0, help="run seeds N … N + seeds − 1 (fresh seeds)")
    ap.add_argument("--adaptive-lr", action=argparse.BooleanOptionalAction, default=None,
                    help="found every TCLearn coalition with (or without) the genesis adaptive learning-rate "
                         "policy (default: the task's, on for digits since 2026-12-01)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-fractions", nargs="+", default=["0%", "20%", "40%"],
                    help="fractions for the baselines (add 0%%/10 30%%/10 for 10 partners)")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--no-collude", action="store_true", help="skip the colluding-validator runs")
    ap.add_argument("--attacks", nargs="+", default=None, help="subset of attacks (default: all)")
    ap.add_argument("--splits", nargs="+", default=None)
    ap.add_argument("--baseline-splits", nargs="+", default=None)
    ap.add_argument("--ten", action="store_true", help="also run 30%% as 3 of 10 partners (and its clean reference)")
    ap.add_argument("--wide-committee", action="store_true",
                    help=f"with --ten: also run the 10-partner collusion jobs with committee {WIDE_COMMITTEE}")
    ap.add_argument("--resume", type=Path, default=None, help="results JSON list of finished jobs to keep and skip")
    ap.add_argument("--from-partial", action="store_true", help="only summarise <out>.partial.json (an interrupted run)")
    ap.add_argument("--fractions", nargs="+", default=None,
                    help="subset of TCLearn fractions (labels of FRACTIONS, e.g. 0%% 20%% 0%%/10 30%%/10)")
    ap.add_argument("--converge", action="store_true",
                    help="run every coalition until the genesis stopping rule says it converged (at most "
                         f"{CONVERGE_CAP} rounds) instead of {ROUNDS} rounds; adds within_1_point (vs the clean run)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default bench/results/attacks.json, attacks_converged.json with --converge)")
    a = ap.parse_args()
    if a.converge:
        ROUNDS = CONVERGE_CAP  # the pool's workers are forked after this: they see it
    ADAPTIVE_LR = a.adaptive_lr  # likewise
    if a.out is None:
        a.out = Path("bench/results/attacks_converged.json" if a.converge else "bench/results/attacks.json")
    attacks = ["label-flip", "sign-flip", "scale", "alie"] if a.quick else (a.attacks or list(ATTACKS))
    splits = ["iid"] if a.quick else (a.splits or list(SPLITS))
    fractions = [f for f in FRACTIONS if (f[1] == 5 or a.ten) and not (a.quick and f[1] == 10)
                 and (a.fractions is None or f[0] in a.fractions)]

    jobs: list[tuple[str, tuple]] = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        for split in splits:
            for label, n, m in fractions:
                for attack in ([None] if m == 0 else attacks):
                    jobs.append(("tclearn", (label, n, m, attack, split, seed, False)))
                    if m and attack in COLLUDE_ATTACKS and not a.no_collude:
                        jobs.append(("tclearn", (label, n, m, attack, split, seed, True)))
                    if not a.no_baselines and label in a.baseline_fractions:
                        if split not in (a.baseline_splits or splits):
                            continue
                        for method in BASELINES:
                            jobs.append(("baseline", (method, label, n, m, attack, split, seed)))
            if a.ten and a.wide_committee and not a.no_collude:
                for label, n, m in WIDE_FRACTIONS:
                    for attack in ([None] if m == 0 else [x for x in attacks if x in COLLUDE_ATTACKS]):
                        jobs.append(("tclearn", (label, n, m, attack, split, seed, m > 0)))
    # TCLearn first (slowest), then baselines
    jobs.sort(key=lambda j: (j[0] != "tclearn", j[1][-2] if j[0] == "baseline" else ""))
    if a.from_partial:
        results = json.loads(a.out.with_suffix(".partial.json").read_text())
        jobs = []
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = [] if not a.from_partial else results
    if a.resume is not None:
        done = [r for r in json.loads(a.resume.read_text()) if "error" not in r]
        keys = {(r["system"], r["fraction"], r["partners"], r["malicious_count"], r["attack"], r["split"], r["seed"])
                + ((bool(r.get("collude")),) if r["system"] == "tclearn" else ()) for r in done}
        def _key(j):
            kind, args = j
            return ("tclearn",) + tuple(args) if kind == "tclearn" else tuple(args)
        jobs = [j for j in jobs if _key(j) not in keys]
        results = done
    with Pool(a.workers) as pool:
        for k, r in enumerate(pool.imap_unordered(_run, jobs), 1):
            results.append(r)
            if k % 10 == 0 or k == len(jobs):
                a.out.parent.mkdir(parents=True, exist_ok=True)
                a.out.with_suffix(".partial.json").write_text(json.dumps(results, default=str))
                print(f"[{k}/{len(jobs)}] {time.perf_counter() - t0:.0f}s", flush=True)

    # derived metrics vs the clean run of the same split / partner count / seed
    tc = [r for r in results if r.get("system") == "tclearn" and "error" not in r]
    clean = {(r["split"], r["partners"], r.get("committee", COMMITTEE), r["seed"]): r
             for r in tc if r["malicious_count"] == 0}
    for r in tc:
        c = clean.get((r["split"], r["partners"], r.get("committee", COMMITTEE), r["seed"]))
        if c is None:
            continue
        r["clean_final_score"] = c["final_score"]
        r["delta_vs_clean"] = r["final_score"] - c["final_score"]
        r["within_2_points"] = r["final_score"] >= c["final_score"] - 0.02
        r["within_1_point"] = r["final_score"] >= c["final_score"] - 0.01
        target = 0.95 * c["final_score"]
        r["rounds_to_95pct_clean"] = next((i for i, s in enumerate(r["head_scores"]) if s >= target), None)
    honest_only = {(r["split"], r["fraction"], r["seed"]): r for r in tc if r["attack"] == "lazy" and not r.get("collude")}
    for r in tc:
        h = honest_only.get((r["split"], r["fraction"], r["seed"]))
        if h is not None and r["malicious_count"]:
            r["honest_only_final_score"] = h["final_score"]
            r["within_2_points_of_honest_only"] = r["final_score"] >= h["final_score"] - 0.02
    bclean = {(r["system"], r["split"], r["partners"], r["seed"]): r["final_score"]
              for r in results if r.get("system") != "tclearn" and "error" not in r and r["malicious_count"] == 0}
    for r in results:
        if r.get("system") != "tclearn" and "error" not in r:
            c = bclean.get((r["system"], r["split"], r["partners"], r["seed"]))
            if c is not None:
                r["delta_vs_clean"] = r["final_score"] - c

    # summary: targets, for ≤30 % malicious
    def _agg(rows: list[dict[str, Any]], num: str, den: str) -> float | None:
        d = sum(r[den] for r in rows)
        return sum(r[num] for r in rows) / d if d else None

    summary: dict[str, Any] = {}
    for split in splits:
        wide = [r for r in tc if r["split"] == split and r.get("committee", COMMITTEE) != COMMITTEE]
        narrow = [r for r in tc if r["split"] == split and r.get("committee", COMMITTEE) == COMMITTEE]
        rows = [r for r in narrow if not r.get("collude")]
        le30 = [r for r in rows if r["malicious_count"] > 0 and r["fraction"] in ("20%", "30%/10")]
        coll = [r for r in narrow if r.get("collude")]
        coll30 = [r for r in coll if r["fraction"] in ("20%", "30%/10")]
        wide_coll = [r for r in wide if r.get("collude")]
        summary[split] = {
            f"collude_committee_{WIDE_COMMITTEE}_within_2_points":
                f"{sum(bool(r.get('within_2_points')) for r in wide_coll)}/{len(wide_coll)}",
            f"collude_committee_{WIDE_COMMITTEE}_degrading_rejected_share":
                _agg(wide_coll, "degrading_rejected", "degrading"),
            f"collude_committee_{WIDE_COMMITTEE}_false_rejection_share":
                _agg(wide_coll, "honest_rejected", "honest_proposals"),
            "within_2_points_le30": f"{sum(bool(r.get('within_2_points')) for r in le30)}/{len(le30)}",
            "within_1_point_le30": f"{sum(bool(r.get('within_1_point')) for r in le30)}/{len(le30)}",
            "within_2_points_of_honest_only_le30":
                f"{sum(bool(r.get('within_2_points_of_honest_only')) for r in le30)}/"
                f"{sum('within_2_points_of_honest_only' in r for r in le30)}",
            "collude_within_2_points_le30": f"{sum(bool(r.get('within_2_points')) for r in coll30)}/{len(coll30)}",
            "collude_degrading_rejected_share": _agg(coll, "degrading_rejected", "degrading"),
            "collude_false_rejection_share": _agg(coll, "honest_rejected", "honest_proposals"),
            "degrading_rejected_share_le30": _agg(le30, "degrading_rejected", "degrading"),
            "degrading_rejected_share_all": _agg(rows, "degrading_rejected", "degrading"),
            "false_rejection_share_all": _agg(rows, "honest_rejected", "honest_proposals"),
            "false_rejection_not_degrading_share_all": _agg(rows, "honest_rejected_not_degrading", "honest_proposals"),
            "false_rejection_share_clean": _agg([r for r in rows if r["malicious_count"] == 0], "honest_rejected", "honest_proposals"),
        }
    out = {
        "task": TASK, "rounds": ROUNDS, "committee": COMMITTEE, "wide_committee": WIDE_COMMITTEE, "lam": LAM, "seeds": a.seeds, "quick": a.quick,
        "first_seed": a.first_seed, "adaptive_lr": a.adaptive_lr, "max_drop": MAX_DROP,
        "converge": bool(a.converge),
        "notes": [f"30% is 3 of 10 partners ('30%/10', clean reference '0%/10'), rounds "
                  f"{'until converged (cap ' + str(ROUNDS) + ')' if a.converge else ROUNDS}",
                  "degrading: candidate score on G more than 0.01 below the head's (or invalid candidate)",
                  "honest-only reference: the 'lazy' run of the same fraction (lazy candidates are refused)",
                  "collude: malicious partners drawn as validators forge votes (tclearn.demo.partners.CollusiveEvaluator)",
                  f"fractions ending ' k{WIDE_COMMITTEE}': committee {WIDE_COMMITTEE} instead of {COMMITTEE} "
                  "(clean and collusion runs only)",
                  "baselines: all partners train every round from the global model on fresh 96-sample batches until "
                  "a pool runs out (5 partners: 3 rounds = 15 increments); 'none' = cyclic weight transfer, 14 increments",
                  "fltrust root set: 50 samples drawn from the pooled training data (seeded)",
                  "trimmed-mean beta 0.2 for <=1 malicious, 0.4 otherwise; krum/multi-krum f = malicious count (min 1)"],
        "summary": summary, "runs": results, "wall_s": time.perf_counter() - t0,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1, default=str))
    print_table(out)
    try:
        plot(out, a.out.with_suffix(".png"))
    except Exception as e:
        print("plot failed:", e)
    print(f"wrote {a.out} ({time.perf_counter() - t0:.0f}s)")


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "  -  "
    return f"{100 * x:5.1f}" if pct else f"{x:.3f}"


def print_table(out: dict[str, Any]) -> None:
    runs = [r for r in out["runs"] if "error" not in r]
    errs = [r for r in out["runs"] if "error" in r]
    for split in ("iid", "non-iid"):
        tc = [r for r in runs if r["system"] == "tclearn" and r["split"] == split]
        if not tc:
            continue
        print(f"\n== TCLearn, {split} (final score / Δ vs clean / degrading rejected % / false rejections % / rounds→95%) ==")
        for r in sorted(tc, key=lambda r: (r["partners"], r["malicious_count"], str(r["attack"]))):
            print(f"{r['fraction']:7s} {str(r['attack']) + ('+coll' if r.get('collude') else ''):18s} "
                  f"{_fmt(r['final_score'])} "
                  f"Δ{r.get('delta_vs_clean', 0):+.3f} deg_rej {r['degrading_rejected']}/{r['degrading']} "
                  f"false {r['honest_rejected']}/{r['honest_proposals']} r95 {r.get('rounds_to_95pct_clean')} "
                  f"{'OK' if r.get('within_2_points') else 'LOSS'}")
        bl = [r for r in runs if r["system"] != "tclearn" and r["split"] == split]
        if bl:
            print(f"-- final scores, {split}: TCLearn vs baselines --")
            systems = ["tclearn"] + list(BASELINES)
            print(f"{'fraction':7s} {'attack':13s} " + " ".join(f"{s[:8]:>8s}" for s in systems))
            keys = sorted({(r["fraction"], r["partners"], r["malicious_count"], str(r["attack"])) for r in bl},
                          key=lambda k: (k[1], k[2], k[3]))
            for fr, n, m, at in keys:
                cells = []
                for s in systems:
                    v = [r["final_score"] for r in runs if r["system"] == s and r["split"] == split and not r.get("collude")
                         and r["fraction"] == fr and str(r["attack"]) == at]
                    cells.append(f"{np.mean(v):8.3f}" if v else f"{'-':>8s}")
                print(f"{fr:7s} {at:13s} " + " ".join(cells))
    print("\nsummary:", json.dumps(out["summary"], indent=1))
    if errs:
        print(f"{len(errs)} job(s) failed:", [e["error"][:120] for e in errs[:5]])


def plot(out: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [r for r in out["runs"] if "error" not in r]
    if all(r["system"] == "tclearn" for r in runs):  # no baseline to set beside it: each attack's difference
        from attacks_report import plot_deltas

        plot_deltas(out, path)
        return
    systems = ["tclearn"] + list(BASELINES)
    panels = [(fr, sp) for fr in ("20%", "40%") for sp in ("iid", "non-iid")
              if any(r["fraction"] == fr and r["split"] == sp for r in runs)]
    if not panels:
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 3.3 * len(panels)), squeeze=False)
    for ax, (fr, sp) in zip(axes[:, 0], panels):
        attacks = sorted({str(r["attack"]) for r in runs if r["fraction"] == fr and r["split"] == sp})
        w = 0.8 / len(systems)
        for j, s in enumerate(systems):
            ys = []
            for at in attacks:
                v = [r["final_score"] for r in runs if r["system"] == s and not r.get("collude") and r["fraction"] == fr and r["split"] == sp
                     and str(r["attack"]) == at]
                ys.append(np.mean(v) if v else np.nan)
            ax.bar(np.arange(len(attacks)) + j * w - 0.4 + w / 2, ys, w, label=s,
                   color="black" if s == "tclearn" else None)
        c = [r["final_score"] for r in runs if r["system"] == "tclearn" and r["fraction"] == "0%" and r["split"] == sp]
        if c:
            ax.axhline(np.mean(c), color="k", ls="--", lw=0.8)
        ax.set_xticks(range(len(attacks)))
        ax.set_xticklabels(attacks)
        ax.set_ylim(0, 1)
        ax.set_ylabel("final accuracy on G")
        ax.set_title(f"digits, {fr} malicious (of 5), {sp}  (dashed: TCLearn clean)")
    axes[0, 0].legend(ncol=8, fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
