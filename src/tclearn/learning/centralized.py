"""The centralised baseline: one model trained on everybody's data pooled.

Why: the question a coalition must answer is "how much do we lose by not
pooling the data?". The baseline trains the same architecture, from the same
initial weights, with the same optimiser and learning rate, on the union of
the partners' training data, for as many passes over the data as the
coalition made, and reports the score on the same global test set G.
Unlike a partner, it keeps its optimiser state across passes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from tclearn.data.dataset import Dataset
from tclearn.errors import LearningError
from tclearn.learning.evaluate import evaluate_model, mean_score, torch_threads
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.serialize import State, canonical_state
from tclearn.learning.train import fit, make_optimizer
from tclearn.learning.tasks import Task

__all__ = ["CentralizedResult", "train_centralized", "coalition_passes"]


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
