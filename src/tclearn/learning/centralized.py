"""The centralised baseline: one model trained on everybody's data pooled.

Why: the question a coalition must answer is "how much do we lose by not
pooling the data?". The honest answer compares with what a competent
practitioner holding all the data would get (`train_centralized_converged`):
the same architecture from the same initial weights, trained on the union of
the partners' training data until it stops improving — early stopping on a
validation split of that *training* data (never on G), the learning rate
chosen on the same validation split from a small grid and halved when the
validation score plateaus, the best validation checkpoint kept — and scored
on the same global test set G.

`train_centralized` is the equal-budget figure: as many passes over the
pooled data as the coalition made, the coalition's own learning rate. It
answers a narrower question (what did the coalition's budget buy?) and is
kept under another key in reports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

import torch

from tclearn.data.dataset import Dataset
from tclearn.errors import LearningError
from tclearn.learning.evaluate import evaluate_model, mean_score, torch_threads
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.serialize import State, canonical_state
from tclearn.learning.train import fit, make_optimizer
from tclearn.learning.tasks import Task

__all__ = ["CentralizedResult", "ConvergedResult", "train_centralized", "train_centralized_converged",
           "coalition_passes"]


@dataclass(frozen=True, eq=False)
class CentralizedResult:
    state: State
    score: float
    history: tuple[float, ...]
    """Mean score on G after each pass (the last one is `score`)."""


def coalition_passes(samples_trained: int, local_epochs: int, pooled_size: int) -> int:
    """Passes over the pooled data equivalent to a coalition's work, at least 1.

    `samples_trained`: the sum of the accepted increments' sample counts;
    each was seen `local_epochs` times.
    """
    if pooled_size < 1:
        raise LearningError("no pooled data")
    return max(1, round(samples_trained * local_epochs / pooled_size))


def train_centralized(
    task: Task,
    train: Dataset,
    test: Dataset,
    hp: HyperParams,
    *,
    passes: int,
    seed: int,
    model_seed: int = 0,
    threads: int | None = None,
) -> CentralizedResult:
    """Train `task`'s model (initial weights from `model_seed`) on `train` for `passes` passes; score on `test`."""
    if passes < 1:
        raise LearningError("the centralised baseline needs at least one pass")
    # nothing to preserve and no skew to undo: the centralised model sees every class at once
    hp = replace(hp, distill=0.0, logit_adjust=False)
    model = task.build_model(model_seed)
    opt = make_optimizer(model, hp)
    gen = torch.Generator().manual_seed(int(seed))
    history = []
    for _ in range(passes):
        with torch_threads(threads):
            fit(task, model, train, hp, gen, epochs=1, optimizer=opt)
        history.append(mean_score(evaluate_model(task, model, test)))
    return CentralizedResult(state=canonical_state(model.state_dict()), score=history[-1], history=tuple(history))


@dataclass(frozen=True, eq=False)
class ConvergedResult:
    """The converged centralised reference: its G score and how it was reached."""

    state: State
    score: float  # on G, of the checkpoint with the best validation score
    val_score: float
    learning_rate: float  # chosen on the validation split
    epochs: int  # epochs trained by the chosen run (the best checkpoint is at `best_epoch`)
    best_epoch: int
    seconds: float  # wall time of the chosen run alone
    total_seconds: float  # wall time of the whole search (every learning rate tried)
    history: tuple[tuple[float, float, float], ...] = ()  # chosen run: (s spent, G left out; validation; G)
    tried: dict[str, float] = field(default_factory=dict)  # learning rate -> best validation score
    val_loss: float = float("nan")  # the chosen checkpoint's loss on the validation split (breaks a tie on val_score)


def _validation_split(train: Dataset, share: float, seed: int) -> tuple[Dataset, Dataset]:
    n = len(train)
    n_val = max(1, int(round(share * n)))
    if n_val >= n:
        raise LearningError("the validation share leaves no pooled sample to train on")
    perm = np.random.default_rng([seed, 0xCE47]).permutation(n)
    return train.subset(np.sort(perm[n_val:])), train.subset(np.sort(perm[:n_val]))


def _loss(task: Task, model: torch.nn.Module, data: Dataset, chunk: int = 16) -> float:
    """Mean training loss of `model` on `data` (no gradient), in chunks."""
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(data), chunk):
            idx = torch.arange(start, min(start + chunk, len(data)))
            total += float(task.loss(model(data.x[idx]), data.y[idx])) * len(idx)
    model.train(was_training)
    return total / max(1, len(data))


def _run_to_convergence(task: Task, fit_part: Dataset, val: Dataset, test: Dataset, hp: HyperParams, lr: float, *,
                        seed: int, model_seed: int, patience: int, max_epochs: int,
                        threads: int | None
                        ) -> tuple[State, tuple[float, float], int, int, float, list[tuple[float, float, float]]]:
    hp = replace(hp, learning_rate=lr, distill=0.0, logit_adjust=False)
    model = task.build_model(model_seed)
    opt = make_optimizer(model, hp)
    gen = torch.Generator().manual_seed(int(seed))
    best_key: tuple[float, float] = (float("-inf"), float("-inf"))
    best_state, best_epoch = canonical_state(model.state_dict()), 0
    since_best, since_cut = 0, 0
    history: list[tuple[float, float, float]] = []
    t0 = time.perf_counter()
    g_seconds = 0.0  # scoring G, for the record only: a practitioner would not pay it, so the curve's clock omits it
    epoch = 0
    for epoch in range(1, max_epochs + 1):
        with torch_threads(threads):
            fit(task, model, fit_part, hp, gen, epochs=1, optimizer=opt)
            val_score = mean_score(evaluate_model(task, model, val))
            key = (val_score, -_loss(task, model, val))  # a tie on a saturated score goes to the lower loss
            t_g = time.perf_counter()
            g_score = mean_score(evaluate_model(task, model, test))
            g_seconds += time.perf_counter() - t_g
        history.append((time.perf_counter() - t0 - g_seconds, val_score, g_score))
        if key > best_key:
            best_key, best_state, best_epoch = key, canonical_state(model.state_dict()), epoch
            since_best = since_cut = 0
        else:
            since_best += 1
            since_cut += 1
        if since_best >= patience:
            break
        if since_cut >= max(1, patience // 2):  # plateau: halve the learning rate (ReduceLROnPlateau)
            for group in opt.param_groups:
                group["lr"] = group["lr"] * 0.5
            since_cut = 0
    return best_state, best_key, epoch, best_epoch, time.perf_counter() - t0, history


def train_centralized_converged(
    task: Task,
    train: Dataset,
    test: Dataset,
    hp: HyperParams,
    *,
    seed: int,
    model_seed: int = 0,
    learning_rates: Sequence[float] | None = None,
    val_share: float = 0.15,
    patience: int = 10,
    max_epochs: int = 200,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> ConvergedResult:
    """Train on the pooled `train` data to convergence (see the module docstring); score on `test` (G).

    `learning_rates`: the grid searched on the validation split (default: the
    task's own rate, 3× above and 3× below). G is scored after every epoch
    for the record (`history`) but never decides anything, and its time is
    left out of the history's clock (what a practitioner would spend is
    training and validating), so time-to-score comparisons are not flattered.
    """
    if patience < 1 or max_epochs < 1:
        raise LearningError("patience and max_epochs must be ≥ 1")
    fit_part, val = _validation_split(train, val_share, seed)
    grid = list(learning_rates) if learning_rates else [hp.learning_rate * 3, hp.learning_rate, hp.learning_rate / 3]
    t_all = time.perf_counter()
    best: tuple[tuple[float, float], float, Any] | None = None
    tried: dict[str, float] = {}
    for lr in grid:
        run = _run_to_convergence(task, fit_part, val, test, hp, float(lr), seed=seed, model_seed=model_seed,
                                  patience=patience, max_epochs=max_epochs, threads=threads)
        tried[repr(float(lr))] = run[1][0]
        if progress is not None:
            progress(f"centralised lr {lr:g}: best validation {run[1][0]:.4f} at epoch {run[3]} of {run[2]}")
        if best is None or run[1] > best[0]:
            best = (run[1], float(lr), run)
    assert best is not None
    (val_score, neg_loss), lr, (state, _, epochs, best_epoch, seconds, history) = best
    model = task.model_from_state(state)
    with torch_threads(threads):
        score = mean_score(evaluate_model(task, model, test))
    return ConvergedResult(state=state, score=score, val_score=val_score, learning_rate=lr, epochs=epochs,
                           best_epoch=best_epoch, seconds=seconds, total_seconds=time.perf_counter() - t_all,
                           history=tuple(history), tried=tried, val_loss=-neg_loss)
