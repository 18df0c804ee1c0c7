"""Has the coalition stopped learning? The stopping rule and the adaptive learning-rate policy.

Why from the chain alone: every quality vote carries the validators' scores
on the shared test set G, and a strict majority of them agree (evaluation is
deterministic), so every member reads the same G score of the head model off
every increment or rejected block. Whether the coalition has converged, and
whether the learning rate should come down, are then pure functions of the
chain: every node reaches the same answer at the same height, and a node
that catches up replays it.

* `StoppingRule(patience, min_delta)`: converged when none of the last
  `patience` accepted increments has raised the best G score by more than
  `min_delta`, counted from the later of the last such improvement and the
  last `hyperparams` block (a new learning rate gets its chance before the
  coalition gives up). Rounds are counted in accepted increments, not in
  blocks: a rejected candidate trains nothing, so a member whose candidates
  keep being refused (an attacker, say) neither stops the coalition early
  nor lowers its learning rate.
* `LearningRatePolicy(factor, patience, min_lr, min_delta)`: after `patience`
  rounds without such an improvement (counted the same way), propose a
  `hyperparams` block that multiplies the learning rate by `factor`, never
  below `min_lr` (the paper's §3.1: lower the rate as the model matures).
  With `epochs`, that block also caps the local epochs at `epochs`
  (`next_hyperparams`).

No torch, no clock: blocks in, decisions out.
"""

from __future__ import annotations

from tclearn.consensus.rules import majority_g_scores
from tclearn.ledger.block import Block
from tclearn.ledger.policies import LearningRatePolicy, StoppingRule

__all__ = ["StoppingRule", "LearningRatePolicy", "Progress"]


class Progress:
    """Folds committed blocks: the head's G score after each, and when it last really improved."""

    def __init__(self) -> None:
        self.height = 0
        self.head_score: float | None = None
        self._steps: list[tuple[int, float]] = []  # (height, G) of the starting point and each increment
        self.last_hyperparams = 0  # height of the last hyperparams block
        self.learning_rate: float | None = None
        self.epochs: int | None = None  # local epochs at the head (genesis, as changed by hyperparams blocks)

    @property
    def best(self) -> float | None:
        return max((g for _, g in self._steps), default=None)

    def observe(self, block: Block) -> None:
        self.height = block.index
        if block.kind == "genesis":
            hp = block.payload.get("config", {}).get("hyperparams", {})
            lr, epochs = hp.get("learning_rate"), hp.get("epochs")
            self.learning_rate = None if lr is None else float(lr)
            self.epochs = None if epochs is None else int(epochs)
            return
        if block.kind == "hyperparams":
            self.last_hyperparams = block.index
            hp = block.payload.get("hyperparams", {})
            if hp.get("learning_rate") is not None:
                self.learning_rate = float(hp["learning_rate"])
            if hp.get("epochs") is not None:
                self.epochs = int(hp["epochs"])
            return
        g = majority_g_scores(block.quality_votes) if block.kind in ("increment", "rejected") else None
        if g is None:
            return
        if not self._steps:
            self._steps.append((block.index - 1, g[0]))  # the model the first scored block started from
        score = g[1] if block.kind == "increment" else g[0]
        if block.kind == "increment":
            self._steps.append((block.index, score))
        self.head_score = score

    def last_improvement(self, min_delta: float) -> int:
        """Height of the last increment that raised the best G score by more than `min_delta`."""
        if not self._steps:
            return 0
        at, best = self._steps[0]
        for height, g in self._steps[1:]:
            if g > best + min_delta:  # as Keras' EarlyStopping: small gains add up until one counts
                at, best = height, g
        return at

    def stalled_for(self, min_delta: float) -> int:
        """Accepted increments since the later of the last real improvement and the last hyperparams block."""
        anchor = max(self.last_improvement(min_delta), self.last_hyperparams)
        return sum(1 for height, _ in self._steps[1:] if height > anchor)

    def converged(self, rule: StoppingRule) -> bool:
        """Whether `rule` says the coalition has stopped learning at this height."""
        return bool(self._steps) and self.stalled_for(rule.min_delta) >= rule.patience

    def next_learning_rate(self, policy: LearningRatePolicy) -> float | None:
        """The learning rate `policy` would propose now, or None (not stalled, or at its floor)."""
        if self.learning_rate is None or not self._steps:
            return None
        if self.stalled_for(policy.min_delta) < policy.patience:
            return None
        new = max(policy.min_lr, self.learning_rate * policy.factor)
        return new if new < self.learning_rate else None

    def next_hyperparams(self, policy: LearningRatePolicy) -> dict[str, float | int] | None:
        """The `hyperparams` request `policy` calls for now, or None: the lower rate, and the epochs cap if lower."""
        lr = self.next_learning_rate(policy)
        if lr is None:
            return None
        request: dict[str, float | int] = {"learning_rate": lr}
        if policy.epochs is not None and self.epochs is not None and policy.epochs < self.epochs:
            request["epochs"] = policy.epochs
        return request
