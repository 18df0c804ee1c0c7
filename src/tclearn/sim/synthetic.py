"""Synthetic learning for protocol tests: a model is a number whose score we know.

Why: the protocol only needs models that can be named (a hash), trained (a
new hash) and evaluated (per-sample scores). Here a model *is* its quality
q ∈ [0, 1], kept in a shared `ModelRegistry` (the coalition's model store).
Sample i of a test set has a difficulty d_i ∈ [0, 1) drawn from a hash; a
model scores 1 on it iff q ≥ d_i (accuracy), so a better model is right on a
superset of samples — paired scores, exactly deterministic, the same on every
validator for G, particular to each validator for its L.

Honest training keeps or improves q a little; a degrading proposer lowers it
by `DEGRADE` (well past `quality.DEFAULT_MAX_DROP`), which every honest
validator rejects. The attacks of the learning demo have synthetic
counterparts (`ATTACK_EFFECTS`, `tclearn sim consensus --malicious M --attack
NAME`): data and model poisoning lower q by `DEGRADE` or twice that, `alie`
by a shift under the floor (by design it may pass), `lazy` proposes the head
model unchanged (refused as an empty increment), `replay` reuses the data
ids of its first accepted batch (refused as replayed data).
"""

from __future__ import annotations

import hashlib
from typing import Any

from tclearn.consensus.candidate import Candidate
from tclearn.errors import LearningError
from tclearn.quality import PairedScores, judge

__all__ = ["ModelRegistry", "SyntheticEvaluator", "SyntheticTrainer", "UnknownModelError", "DEGRADE",
           "GENESIS_QUALITY", "ATTACK_EFFECTS", "RejectedCandidateError"]

DEGRADE = 0.2
GENESIS_QUALITY = 0.5
# quality change of a malicious partner's candidate, by attack (None: special handling below)
ATTACK_EFFECTS: dict[str, float | None] = {
    "label-flip": -DEGRADE, "random-labels": -DEGRADE, "off-task": -DEGRADE, "noise": -DEGRADE,
    "sign-flip": -2 * DEGRADE, "scale": -2 * DEGRADE, "alie": -0.005, "lazy": None, "replay": None,
}


class RejectedCandidateError(LearningError):
    """The candidate is not a valid increment (empty, or trained on replayed data): vote reject."""


class UnknownModelError(LearningError):
    """Raised when a model hash is not in the registry (never published)."""


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from `parts`."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _hash(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class ModelRegistry:
    """Model hash → quality: the simulated content-addressed model store."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.quality: dict[str, float] = {}
        self.genesis_hash = _hash("genesis-model", seed)
        self.quality[self.genesis_hash] = GENESIS_QUALITY
        self.data_root: dict[str, str] = {}  # model → the data-ids root it was trained on
        self.spent_roots: dict[str, str] = {}  # root of a committed increment → its model (the vault's id list)

    def accept(self, data_ids_root: str, model_hash: str) -> None:
        """A committed increment (`model_hash`) spent these data ids."""
        self.spent_roots.setdefault(data_ids_root, model_hash)

    def replays(self, model_hash: str) -> bool:
        """Was `model_hash` trained on data ids that another, committed increment spent?"""
        spent_by = self.spent_roots.get(self.data_root.get(model_hash, ""))
        return spent_by is not None and spent_by != model_hash

    def publish(self, quality: float, *name: object) -> str:
        model_hash = _hash("model", self.seed, *name)
        self.quality[model_hash] = min(0.99, max(0.0, quality))
        return model_hash

    def of(self, model_hash: str) -> float:
        try:
            return self.quality[model_hash]
        except KeyError:
            raise UnknownModelError(f"model {model_hash[:12]}… was never published") from None


class SyntheticEvaluator:
    """A validator's evaluation: G shared by all, L its own."""

    def __init__(self, registry: ModelRegistry, member_id: str, n_global: int = 40, n_local: int = 20) -> None:
        self.registry = registry
        self.g = tuple(_unit("G", registry.seed, i) for i in range(n_global))
        self.l = tuple(_unit("L", registry.seed, member_id, i) for i in range(n_local))
        self.evaluations = 0

    def _scores(self, quality: float, difficulties: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(1.0 if quality >= d else 0.0 for d in difficulties)

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores:
        self.evaluations += 1
        if candidate_model_hash == parent_model_hash:
            raise RejectedCandidateError("the candidate is the head model unchanged (an empty increment)")
        if self.registry.replays(candidate_model_hash):
            raise RejectedCandidateError("the candidate's data ids were already spent by an accepted increment")
        old, new = self.registry.of(parent_model_hash), self.registry.of(candidate_model_hash)
        return PairedScores(self._scores(old, self.g), self._scores(new, self.g),
                            self._scores(old, self.l), self._scores(new, self.l))

    def would_accept(self, parent_model_hash: str, candidate_model_hash: str, lam: float) -> bool:
        """What an honest validator with this evaluator votes (the simulator's oracle)."""
        try:
            return judge(self.evaluate(parent_model_hash, candidate_model_hash), lam).accept
        except RejectedCandidateError:
            return False


class SyntheticTrainer:
    """A partner's training: honest (keeps or improves quality), degrading, or one of `ATTACK_EFFECTS`."""

    def __init__(self, registry: ModelRegistry, member_id: str, degrading: bool = False,
                 attack: str | None = None) -> None:
        if attack is not None and attack not in ATTACK_EFFECTS:
            raise ValueError(f"unknown attack {attack!r}")
        self.registry = registry
        self.member_id = member_id
        self.degrading = degrading
        self.attack = attack
        self.trained = 0
        self.first_root: str | None = None

    def train(self, parent_model_hash: str, height: int,
              hyperparams: dict[str, Any] | None = None) -> Candidate | None:
        """A candidate of a quality drawn from the seed (a synthetic model ignores hyper-parameters)."""
        self.trained += 1
        quality = self.registry.of(parent_model_hash)
        root = _hash("data-ids", self.member_id, height, self.trained)
        effect = ATTACK_EFFECTS.get(self.attack) if self.attack else None
        if self.degrading:
            new_quality = quality - DEGRADE
        elif effect is not None:
            new_quality = quality + effect
        else:
            new_quality = quality + 0.03 * _unit("gain", self.member_id, height, parent_model_hash)
        if self.attack == "replay" and self.first_root is not None:
            root = self.first_root  # the samples it already contributed
        if self.attack == "lazy":
            model = parent_model_hash
        else:
            model = self.registry.publish(new_quality, self.member_id, height, parent_model_hash, self.trained)
        self.registry.data_root.setdefault(model, root)
        if self.first_root is None:
            self.first_root = root
        return Candidate(
            model_hash=model,
            increment_hash=_hash("increment", model, self.trained),
            sample_count=32 + int(64 * _unit("count", self.member_id, height)),
            data_ids_root=root,
        )
