"""A partner's training step: one increment of the coalition's model.

The round (DESIGN.md §1, step 1): the partner takes the head model, draws a
batch of at least `min_batch_size` samples — fresh ones first (never
contributed; a share of them is set aside as local test data, which joins its
local test set L), then samples it contributed before, trained on again —,
trains the head model on it for `epochs` local passes, and publishes the
increment `new − head` with the candidate's hash, and the counts and Merkle
roots of the new and of the re-used ids.

What is returned and what the caller does with it:
* `candidate` = head + increment (see `serialize`: the candidate is defined by
  the increment, bit for bit) and its `model_hash`; `increment` and its hash;
* `sample_count` and `data_ids_root`: the new contributions (they count
  towards D_i); `reused_count` and `reused_ids_root`: the re-used samples;
* `local_test`: the samples to add to the partner's L (`Evaluator.add_local_test`).
The pool is not changed: call `pool.hold_out(result.local_test_ids)` when the
share joins L, and `pool.mark_contributed(result.new_ids)` when the chain
accepts the increment.

Randomness: the draw uses a numpy Generator and the mini-batch order a torch
Generator, both from `seed`; torch's global generator is not touched.
"""

from __future__ import annotations

import copy
from collections.abc import Container
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn

from tclearn.data.dataset import Dataset
from tclearn.data.ids import merkle_root
from tclearn.data.pool import DataPool
from tclearn.errors import LearningError
from tclearn.learning.evaluate import torch_threads
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.serialize import State, candidate_from, canonical_state, increment_hash, model_hash
from tclearn.learning.tasks import Task

__all__ = ["TrainResult", "train_increment", "batch_params", "fit", "make_optimizer"]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """One trained increment, ready to be proposed."""

    candidate: State
    increment: State
    model_hash: str
    increment_hash: str
    new_ids: tuple[str, ...]
    reused_ids: tuple[str, ...]
    local_test_ids: tuple[str, ...]
    local_test: Dataset
    train_loss: float

    @property
    def sample_count(self) -> int:
        """New contributions: what the increment adds to its proposer's D_i."""
        return len(self.new_ids)

    @property
    def reused_count(self) -> int:
        return len(self.reused_ids)

    @property
    def train_ids(self) -> tuple[str, ...]:
        """Ids of every sample trained on: new, then re-used."""
        return self.new_ids + self.reused_ids

    @property
    def data_ids(self) -> tuple[str, ...]:
        """Ids of the whole batch: training samples, then local-test samples."""
        return self.train_ids + self.local_test_ids

    @property
    def data_ids_root(self) -> str:
        """Merkle root of the new contributions' ids."""
        return merkle_root(self.new_ids)

    @property
    def reused_ids_root(self) -> str:
        return merkle_root(self.reused_ids)


def make_optimizer(model: nn.Module, hp: HyperParams) -> torch.optim.Optimizer:
    """The optimiser `hp` names, on `model`'s parameters."""
    if hp.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=hp.learning_rate, momentum=hp.momentum,
                               weight_decay=hp.weight_decay)
    if hp.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    raise LearningError(f"unknown optimizer {hp.optimizer!r}")


def fit(
    task: Task,
    model: nn.Module,
    data: Dataset,
    hp: HyperParams,
    generator: torch.Generator,
    *,
    epochs: int | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> float:
    """Train `model` in place for `epochs` (default `hp.epochs`) passes; return the last pass's mean loss.

    With `hp.logit_adjust` the classifier trains on logits shifted by the log
    of the batch's label frequencies (logit adjustment: Menon et al., ICLR 2021;
    for federated label skew, FedLC: Zhang et al., ICML 2022), so the increment
    learns the classes' features rather than this partner's class balance.
    With `hp.distill` > 0 a frozen copy of the starting model is the teacher
    of `task.distill_loss` (not-true distillation for classification): the
    increment learns the partner's data without unlearning what the head
    model knows of the rest, which is what keeps label-skewed (non-IID)
    increments from dragging the score on G down.
    """
    if len(data) == 0:
        raise LearningError("no sample to train on")
    task.check_data(data)
    opt = optimizer or make_optimizer(model, hp)
    shift: torch.Tensor | None = None
    if hp.logit_adjust:
        prior = task.label_prior(data)
        if prior is not None:  # log(0) would be −inf: absent classes get a floor of 1e-3
            shift = torch.log(prior.to(torch.float32) + 1e-3)
    teacher: nn.Module | None = None
    teacher_out = torch.empty(0)
    if hp.distill > 0:
        teacher = copy.deepcopy(model).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher_out = _teacher_outputs(teacher, data.x, hp.micro_batch_size)
    model.train()
    last = float("nan")
    for _ in range(hp.epochs if epochs is None else epochs):
        order = torch.randperm(len(data), generator=generator)
        total, count = 0.0, 0
        for start in range(0, len(data), hp.micro_batch_size):
            idx = order[start : start + hp.micro_batch_size]
            opt.zero_grad(set_to_none=True)
            out = model(data.x[idx])
            loss = task.loss(out if shift is None else out + shift, data.y[idx])
            if teacher is not None:
                if len(idx) == hp.micro_batch_size:
                    t_out = teacher_out[idx]
                else:  # the short last micro-batch: its own forward, at its own shape
                    with torch.no_grad():
                        t_out = teacher(data.x[idx])
                extra = task.distill_loss(out, t_out, data.y[idx])
                if extra is not None:
                    loss = loss + hp.distill * extra
            if not torch.isfinite(loss):
                raise LearningError("training diverged (non-finite loss); lower the learning rate")
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        last = total / count
    return last


def _teacher_outputs(teacher: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """The frozen teacher's outputs for every sample, each computed in a forward of `chunk` samples.

    The teacher does not change during `fit`, so one forward per sample
    replaces one per sample and pass (a digits increment trains 12 % faster).
    Every chunk has the micro-batch's shape (the last one overlaps the one
    before it), so each output is the same bits as the teacher's forward on a
    training micro-batch gives it, for a model whose rows do not depend on
    their companions (digits: `tests/learning/test_evaluation.py`): the
    increment is the same bits as when the teacher ran on every micro-batch.
    """
    n = len(x)
    if n < chunk:
        return torch.empty(0)  # no full micro-batch: `fit` computes the one short batch itself
    outs = []
    with torch.no_grad():
        for i in range(0, n - chunk + 1, chunk):
            outs.append(teacher(x[i : i + chunk]))
        rest = n % chunk
        if rest:  # the rest, as the tail of a last full-size chunk
            outs.append(teacher(x[n - chunk :])[chunk - rest :])
    return torch.cat(outs)


def batch_params(pool: DataPool, hp: HyperParams, spent: Container[str] = ()) -> HyperParams | None:
    """`hp` with a batch this pool can fill, or None when it cannot fill the coalition's minimum.

    A small hospital trains on all it has (never below `min_batch_size`);
    held-out local-test samples are never part of a batch.
    """
    trainable = len(pool.fresh(spent)) + len(pool.reusable(spent))
    if trainable < hp.min_batch_size:
        return None
    return hp.updated({"batch_size": trainable}) if trainable < hp.effective_batch_size else hp


def train_increment(
    task: Task,
    head: Mapping[str, torch.Tensor],
    pool: DataPool,
    hp: HyperParams,
    *,
    seed: int,
    threads: int | None = None,
    spent: Container[str] = (),
) -> TrainResult:
    """Train one increment of `head` on a batch of `pool` (see the module docstring).

    `spent`: ids the coalition has already counted (accepted increments'
    contributions, anyone's), which this batch may re-use but not claim as new.
    `threads`: torch intra-op threads while training (None: leave torch's setting).
    """
    n = hp.effective_batch_size
    if n < hp.min_batch_size:
        raise LearningError(f"a batch of {n} is below the minimum of {hp.min_batch_size}")
    batch = pool.draw_batch(n, np.random.default_rng([seed, 0x7EA1]), local_test_share=hp.local_test_share,
                            spent=spent)
    parent = canonical_state(head)
    model = task.model_from_state(parent)
    with torch_threads(threads):
        loss = fit(task, model, batch.train, hp, torch.Generator().manual_seed(int(seed)))
    inc, candidate = candidate_from(model.state_dict(), parent)
    return TrainResult(
        candidate=candidate,
        increment=inc,
        model_hash=model_hash(candidate),
        increment_hash=increment_hash(inc),
        new_ids=batch.new_ids,
        reused_ids=batch.reused_ids,
        local_test_ids=batch.local_test_ids,
        local_test=batch.local_test,
        train_loss=loss,
    )
