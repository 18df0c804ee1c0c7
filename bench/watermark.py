"""Per-download watermarks (level C): what they cost, what they survive, and whom they accuse wrongly.

One clean model per task is trained on partner 0's data; `--downloads`
members each download the same version through the vault
(`tclearn.watermark.download_watermarked`: a fresh key per download, stored
encrypted in the vault, journaled). Figures:

* cost: the task's score on G (accuracy, Dice) of the clean model minus that
  of each marked copy (mean and worst, in points);
* traced: for each leaked copy and each attack, whether `Tracer.trace`
  accuses its holder and nobody else (p_false = 1e-6 over all keys): no
  change; fine-tuning on fresh data (partner 1's, never seen by the model) for
  1, 5 and 20 epochs (Adam, the task's rate, no distillation: a plain
  attacker); magnitude pruning of every marked tensor (30, 50, 65 %);
  Gaussian noise (10 % and 30 % of each tensor's std); int8 quantisation
  (symmetric, per tensor); two members averaging their copies (at least one
  colluder named, both named, innocents named); the attacked models' score too;
* false accusations: models that were never ours — independently trained
  ones, and the *clean* model fine-tuned, pruned or noised by someone who got
  it another way (the hardest innocents: same reference, small residual).

    python bench/watermark.py --task digits [--downloads 50] [--null 1000] [--out bench/results/watermark_digits.json]
    python bench/watermark.py --task bladder --downloads 50 --null 1000 --finetune-leaks 10 --shape 32 32 32
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tclearn.data.dataset import Dataset  # noqa: E402
from tclearn.identity import Identity  # noqa: E402
from tclearn.learning.serialize import State, canonical_state, state_from_bytes, state_to_bytes  # noqa: E402
from tclearn.learning.tasks import Task, get_task  # noqa: E402
from tclearn.learning.train import fit  # noqa: E402
from tclearn.vault.policy import default_policy  # noqa: E402
from tclearn.vault.supervisor import Supervisor  # noqa: E402
from tclearn.watermark import DEFAULT_ALPHA, Tracer, download_watermarked  # noqa: E402
from tclearn.watermark.fingerprint import marked_names  # noqa: E402

FINETUNE_EPOCHS = (1, 5, 20)
PRUNE_SHARES = (0.30, 0.50, 0.65)
NOISE_SHARES = (0.10, 0.30)


def score(task: Task, state: State, data: Dataset, batch: int = 64) -> float:
    """Mean per-sample score on `data` (batched forward passes, eval mode)."""
    model = task.model_from_state(state).eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(data), batch):
            out.append(task.sample_scores(model(data.x[i:i + batch]), data.y[i:i + batch]))
    return float(torch.cat(out).mean())


def train(task: Task, state: State, data: Dataset, epochs: int, seed: int) -> State:
    hp = replace(task.default_hyperparams, distill=0.0)
    model = task.model_from_state(state)
    fit(task, model, data, hp, torch.Generator().manual_seed(seed), epochs=epochs)
    return canonical_state(model.state_dict())


def prune(state: State, share: float) -> State:
    out = dict(state)
    for n in marked_names(state):
        t = state[n]
        k = int(share * t.numel())
        if k:
            cut = t.abs().reshape(-1).kthvalue(k).values
            out[n] = torch.where(t.abs() <= cut, torch.zeros_like(t), t)
    return out


def noise(state: State, share: float, rng: torch.Generator) -> State:
    out = dict(state)
    for n in marked_names(state):
        t = state[n]
        out[n] = t + share * float(t.std()) * torch.randn(t.shape, generator=rng)
    return out


def int8(state: State) -> State:
    out = {}
    for n, t in state.items():
        scale = float(t.abs().max()) / 127.0
        out[n] = t if scale == 0 else (torch.clamp(torch.round(t / scale), -127, 127) * scale).to(torch.float32)
    return out


def seeded_keys(seed: int) -> Callable[[int], bytes]:
    counter = iter(range(10**9))
    return lambda n: hashlib.sha256(f"bench-key/{seed}/{next(counter)}".encode()).digest()[:n]


def export_policy(members: list[str]) -> dict[str, Any]:
    doc = default_policy(members)
    doc["members"] = {m: {"roles": ["exporter"]} for m in members}
    doc["quotas"] = {}
    return doc


def make_vault(root: Path, clean: State, members: list[str], seed: int, alpha: float
               ) -> tuple[Supervisor, list[tuple[str, State]]]:
    sup = Supervisor.create(root, b"bench passphrase", Identity.from_seed("supervisor", b"bench-wm"), members,
                            scrypt_n=2**12, policy=export_policy(members))
    version = sup.put_local(state_to_bytes(clean), "model").object_id
    keys = seeded_keys(seed)
    copies = []
    for m in members:
        data, _ = download_watermarked(sup, m, version, alpha=alpha, new_key=keys)
        copies.append((m, state_from_bytes(data)))
    return sup, copies


def traced(tracer: Tracer, state: State, holders: set[str]) -> dict[str, Any]:
    rep = tracer.trace(state)
    named = {s.member for s in rep.accused}
    return {"right": bool(named & holders), "all": holders <= named, "wrong": len(named - holders),
            "score": rep.best.score if rep.best else 0.0}


def attack_row(task: Task, tracer: Tracer, leaks: list[tuple[str, State]], test: Dataset,
               attack: Callable[[int, State], State], score_leaks: int) -> dict[str, Any]:
    rows, scores = [], []
    for i, (m, s) in enumerate(leaks):
        attacked = attack(i, s)
        rows.append(traced(tracer, attacked, {m}))
        if not score_leaks or i < score_leaks:
            scores.append(score(task, attacked, test))
    n = len(rows)
    return {"leaks": n, "traced": sum(r["right"] and not r["wrong"] for r in rows) / n,
            "named_holder": sum(r["right"] for r in rows) / n, "wrong_accusations": sum(r["wrong"] for r in rows),
            "score_min": min(r["score"] for r in rows), "score_median": float(np.median([r["score"] for r in rows])),
            "task_score_mean": float(np.mean(scores)), "task_scored_leaks": len(scores)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="digits")
    ap.add_argument("--downloads", type=int, default=50)
    ap.add_argument("--null", type=int, default=1000)
    ap.add_argument("--finetune-leaks", type=int, default=0, help="leaks fine-tuned per epoch count (0: all)")
    ap.add_argument("--score-leaks", type=int, default=0, help="attacked leaks whose task score is measured (0: all)")
    ap.add_argument("--null-trained", type=int, default=-1,
                    help="never-ours models that need training (the rest: other seeds' initial models, the clean "
                         "model noised or pruned; -1: no cap)")
    ap.add_argument("--train-epochs", type=int, default=0, help="clean model's epochs (0: task default)")
    ap.add_argument("--shape", type=int, nargs=3, default=None, help="bladder volume shape")
    ap.add_argument("--per-partner", type=int, default=24, help="bladder volumes per partner")
    ap.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.time()
    opts: dict[str, Any] = {"shape": args.shape} if args.task == "bladder" and args.shape else {}
    task = get_task(args.task, **opts)
    data_opts: dict[str, Any] = {"per_partner": args.per_partner, "test_size": 16} if args.task == "bladder" else {}
    data = task.coalition_data(2, seed=args.seed, **data_opts)
    own, fresh, test = data.partners[0], data.partners[1], data.test
    epochs = args.train_epochs or (30 if args.task == "digits" else 30)
    clean = train(task, task.initial_state(args.seed), own, epochs, args.seed)
    clean_score = score(task, clean, test)
    print(f"{args.task}: clean model {task.metric_name} {clean_score:.4f} ({time.time() - t_start:.0f} s)", flush=True)

    members = [f"m{i:02d}" for i in range(args.downloads)]
    with tempfile.TemporaryDirectory() as tmp:
        sup, leaks = make_vault(Path(tmp) / "vault", clean, members, args.seed, args.alpha)
        tracer = Tracer.from_vault(sup.vault, sup.journal.entries)
        n_entries = len(sup.journal.entries)
        sup.close()
    copy_scores = [score(task, s, test) for _, s in leaks]
    cost = [100.0 * (clean_score - c) for c in copy_scores]
    result: dict[str, Any] = {
        "task": args.task, "task_config": task.config, "metric": task.metric_name, "downloads": args.downloads,
        "alpha": args.alpha, "seed": args.seed, "test_samples": len(test), "fresh_samples": len(fresh),
        "clean_score": clean_score, "cost_points_mean": float(np.mean(cost)), "cost_points_max": float(max(cost)),
        "cost_points_min": float(min(cost)), "threshold": tracer.trace(clean).threshold, "journal_entries": n_entries,
        "attacks": {}}
    print(f"cost of the mark: mean {np.mean(cost):+.3f} points, worst {max(cost):+.3f} (alpha {args.alpha})",
          flush=True)

    def run(name: str, attack: Callable[[int, State], State], subset: int = 0) -> None:
        t = time.time()
        row = attack_row(task, tracer, leaks[:subset] if subset else leaks, test, attack, args.score_leaks)
        result["attacks"][name] = row
        print(f"{name:<22} traced {row['traced']:6.1%}  wrong {row['wrong_accusations']}  "
              f"median z {row['score_median']:6.1f}  {task.metric_name} {row['task_score_mean']:.4f}  "
              f"({time.time() - t:.0f} s)", flush=True)

    run("none", lambda i, s: s)
    for e in FINETUNE_EPOCHS:
        run(f"finetune_{e}_epochs", lambda i, s, e=e: train(task, s, fresh, e, 1000 + i), args.finetune_leaks)
    for p in PRUNE_SHARES:
        run(f"prune_{int(p * 100)}", lambda i, s, p=p: prune(s, p))
    for q in NOISE_SHARES:
        run(f"noise_{int(q * 100)}", lambda i, s, q=q: noise(s, q, torch.Generator().manual_seed(2000 + i)))
    run("int8", lambda i, s: int8(s))

    t = time.time()
    pairs = [traced(tracer, {k: (leaks[i][1][k] + leaks[(i + 1) % len(leaks)][1][k]) / 2 for k in clean},
                    {leaks[i][0], leaks[(i + 1) % len(leaks)][0]}) for i in range(len(leaks))]
    result["attacks"]["average_two"] = {
        "pairs": len(pairs), "one_colluder_named": sum(r["right"] for r in pairs) / len(pairs),
        "both_named": sum(r["all"] for r in pairs) / len(pairs), "wrong_accusations": sum(r["wrong"] for r in pairs),
        "score_median": float(np.median([r["score"] for r in pairs]))}
    print(f"{'average_two':<22} one named {result['attacks']['average_two']['one_colluder_named']:6.1%}  both "
          f"{result['attacks']['average_two']['both_named']:6.1%}  wrong {result['attacks']['average_two']['wrong_accusations']}"
          f"  ({time.time() - t:.0f} s)", flush=True)

    t = time.time()
    null_scores: dict[str, list[float]] = {"independent": [], "clean_finetuned": [], "clean_noised": [],
                                           "clean_pruned": [], "independent_untrained": []}
    accused, trained = 0, 0
    for j in range(args.null):
        kind = list(null_scores)[j % 4]
        if kind in ("independent", "clean_finetuned"):
            if 0 <= args.null_trained <= trained:
                kind = "independent_untrained"
            trained += 1
        if kind == "independent_untrained":
            s = task.initial_state(30_000 + j)
        elif kind == "independent":  # a model trained from another seed on partner 1's data
            s = train(task, task.initial_state(10_000 + j), fresh, 1 if args.task == "bladder" else 3, j)
        elif kind == "clean_finetuned":
            s = train(task, clean, fresh, 1, 20_000 + j)
        elif kind == "clean_noised":
            s = noise(clean, float(np.exp(np.random.default_rng(j).uniform(np.log(0.01), np.log(0.5)))),
                      torch.Generator().manual_seed(j))
        else:
            s = prune(int8(clean), float(np.random.default_rng(j).uniform(0.1, 0.7)))
        rep = tracer.trace(s)
        accused += bool(rep.accused)
        null_scores[kind].append(rep.best.score if rep.best else 0.0)
    result["null"] = {"models": args.null, "accused": accused,
                      "max_score": {k: max(v) for k, v in null_scores.items() if v},
                      "seconds": time.time() - t}
    print(f"never ours: {args.null} models, {accused} accused; highest score "
          f"{max(max(v) for v in null_scores.values() if v):.2f} vs threshold {result['threshold']:.2f} "
          f"({time.time() - t:.0f} s)", flush=True)
    result["seconds"] = time.time() - t_start
    result["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()[0],
                         "torch": torch.__version__, "threads": args.threads}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
