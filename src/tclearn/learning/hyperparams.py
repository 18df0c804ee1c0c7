"""Hyper-parameters of a partner's local training, and their genesis form.

Why a separate record: genesis (and later `hyperparams` blocks) fixes four of
them for the whole coalition: learning rate, optimiser, epochs, minimum batch
size. The others (how many samples a partner draws, the mini-batch size, the
share set aside as local test data, momentum) have per-task defaults and may be
overridden locally without changing what the ledger records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from tclearn.errors import LearningError
from tclearn.ledger.hyperparams import GENESIS_KEYS, OPTIMIZERS  # the coalition's rules, in one place

__all__ = ["HyperParams", "OPTIMIZERS", "GENESIS_KEYS"]


@dataclass(frozen=True)
class HyperParams:
    """How one increment is trained.

    `epochs` local passes over the training part of a batch of `batch_size`
    samples (0: `min_batch_size`), in mini-batches of `micro_batch_size`;
    `local_test_share` of the batch is set aside as local test data.
    """

    learning_rate: float
    optimizer: str = "sgd"
    epochs: int = 1
    min_batch_size: int = 32
    batch_size: int = 0
    micro_batch_size: int = 16
    local_test_share: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 0.0
    # weight of the distillation term that keeps an increment from forgetting
    # what the head model knows (`Task.distill_loss`; 0: off). Local: an honest
    # partner's choice of method, not something the ledger has to agree on.
    distill: float = 0.0
    # train on logits shifted by the log of the batch's label frequencies (logit adjustment,
    # `Task.label_prior`): the increment learns p(x | y) rather than this partner's label skew
    logit_adjust: bool = False

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise LearningError("learning_rate must be > 0")
        if self.optimizer not in OPTIMIZERS:
            raise LearningError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.epochs < 1 or self.min_batch_size < 1 or self.micro_batch_size < 1:
            raise LearningError("epochs, min_batch_size and micro_batch_size must be ≥ 1")
        if self.batch_size and self.batch_size < self.min_batch_size:
            raise LearningError(f"batch_size {self.batch_size} is below min_batch_size {self.min_batch_size}")
        if not 0.0 <= self.local_test_share < 1.0:
            raise LearningError("local_test_share must lie in [0, 1)")
        if not 0.0 <= self.momentum < 1.0 or self.weight_decay < 0:
            raise LearningError("momentum must lie in [0, 1) and weight_decay be ≥ 0")
        if not 0.0 <= self.distill <= 100.0:
            raise LearningError("distill must lie in [0, 100]")

    @property
    def effective_batch_size(self) -> int:
        """Samples drawn per increment (training part plus local test part)."""
        return self.batch_size or self.min_batch_size

    def genesis_dict(self) -> dict[str, Any]:
        """The four values genesis records (`tclearn.ledger.genesis` keys)."""
        return {
            "learning_rate": float(self.learning_rate),
            "optimizer": self.optimizer,
            "epochs": int(self.epochs),
            "min_batch_size": int(self.min_batch_size),
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, values: Mapping[str, Any]) -> "HyperParams":
        """A copy with `values` (e.g. a genesis or `hyperparams` block payload) applied."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise LearningError(f"unknown hyper-parameter(s): {', '.join(unknown)}")
        new = dict(values)
        min_batch = new.get("min_batch_size", self.min_batch_size)
        if "batch_size" not in new and self.batch_size and self.batch_size < min_batch:
            new["batch_size"] = 0  # a raised minimum wins over a local default
        return replace(self, **new)
