"""A validator's evaluator: parent vs candidate on G and on its own L.

Why a class with a cache: the consensus core asks, round after round, "how
do the head model and this candidate score?". The head is the parent of every
candidate until one is accepted, so its scores are computed once and reused.
Scores are per sample and a sample's score does not depend on the others
(see `evaluate`), so when the validator's local test set L grows (it only
grows, by appending the local-test share of its own batches) only the new
samples are evaluated.

Errors the caller must tell apart (`tclearn.learning.errors`):
`ModelNotFoundError` (fetch the model, then ask again) and
`InvalidModelError` (the bytes do not decode or do not fit the architecture:
for a candidate, the proposer's fault; vote reject).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from tclearn.data.dataset import Dataset, concat_datasets
from tclearn.errors import LearningError
from tclearn.learning.errors import InvalidModelError
from tclearn.learning.evaluate import evaluate_model, mean_score
from tclearn.learning.model_store import ModelStore, check_model_hash
from tclearn.learning.serialize import State
from tclearn.learning.tasks import Task
from tclearn.quality import PairedScores

__all__ = ["Evaluator"]


@dataclass
class _Scores:
    g: tuple[float, ...]
    l: list[float] = field(default_factory=list)  # noqa: E741 (L, the local test set, as in the paper)


class Evaluator:
    """Scores models of `store` on the global test set G and this validator's L."""

    def __init__(
        self,
        task: Task,
        store: ModelStore,
        global_test: Dataset,
        local_test: Dataset | None = None,
        *,
        cache_size: int = 16,
        shared_g: "OrderedDict[str, tuple[float, ...]] | None" = None,
        share_candidates: bool = False,
    ) -> None:
        if len(global_test) == 0:
            raise LearningError("the global test set G is empty")
        task.check_data(global_test)
        self.task = task
        self.store = store
        self.global_test = global_test
        self._local: Dataset = global_test.empty()
        self._cache: OrderedDict[str, _Scores] = OrderedDict()
        self._cache_size = max(2, cache_size)
        self.evaluations = 0  # models actually run (cache misses), for tests and benchmarks
        # one model, each state loaded into it in turn (`Task.load_state`), instead of one built per state
        self._model: nn.Module | None = None
        self._model_lock = threading.Lock()
        # G scores shared by the simulated members of one process (the one-process demo and benches):
        # evaluation is deterministic, so every validator would compute the same G scores; in a real
        # coalition they compute them in parallel, each on its own machine
        self._shared_g = shared_g
        # and a proposer's self-check scores (`candidate_g_scores`) join them: the validators of its candidate
        # would compute those very bits again (not at level C, where validators share the clean models' scores)
        self._share_candidates = share_candidates and shared_g is not None
        if local_test is not None:
            self.add_local_test(local_test)

    @property
    def local_test(self) -> Dataset:
        """This validator's L so far."""
        return self._local

    def add_local_test(self, data: Dataset) -> None:
        """Append samples (the local-test share of a batch) to L."""
        if len(data) == 0:
            return
        self.task.check_data(data)
        self._local = concat_datasets([self._local, data])

    def scores(self, model_hash: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(scores on G, scores on L) of the model stored under `model_hash`."""
        check_model_hash(model_hash)
        entry = self._cache.get(model_hash)
        if entry is not None and len(entry.l) == len(self._local):
            self._cache.move_to_end(model_hash)
            return entry.g, tuple(entry.l)
        missing = self._local.subset(range(len(entry.l) if entry is not None else 0, len(self._local)))
        shared = self._shared_g.get(model_hash) if self._shared_g is not None and entry is None else None
        if entry is None and shared is not None and not len(missing):
            entry = _Scores(g=shared)  # nothing of ours to score: no model to load
        else:
            sets = ([] if entry is not None or shared is not None else [self.global_test]) + [missing]
            scored = self._evaluate(self.store.get_state(model_hash), sets)
            self.evaluations += 1
            if entry is None:
                entry = _Scores(g=shared if shared is not None else scored[0])
            entry.l.extend(scored[-1])
        self._share(model_hash, entry.g)
        self._cache[model_hash] = entry
        self._cache.move_to_end(model_hash)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry.g, tuple(entry.l)

    def _evaluate(self, state: Mapping[str, torch.Tensor], sets: Sequence[Dataset]) -> list[tuple[float, ...]]:
        """Per-sample scores of the model holding `state` on each of `sets` (an empty set scores nothing)."""
        with self._model_lock:
            if self._model is None:
                self._model = self.task.model_from_state(state)
            else:
                self.task.load_state(self._model, state)
            return [evaluate_model(self.task, self._model, d) if len(d) else () for d in sets]

    def _share(self, model_hash: str, g: tuple[float, ...]) -> None:
        if self._shared_g is not None:
            self._shared_g[model_hash] = g
            self._shared_g.move_to_end(model_hash)
            while len(self._shared_g) > 4 * self._cache_size:
                self._shared_g.popitem(last=False)

    def candidate_g_scores(self, state: State, model_hash: str) -> tuple[float, ...]:
        """Scores on G of a model not (yet) in the store: a candidate its proposer self-checks.

        `model_hash` must be `state`'s. Scored here, or taken from (and added
        to) the G scores the process's simulated members share when this
        evaluator was made with `share_candidates`.
        """
        if self._share_candidates:
            assert self._shared_g is not None
            hit = self._shared_g.get(model_hash)
            if hit is not None:
                return hit
        g = self._evaluate(state, [self.global_test])[0]
        if self._share_candidates:
            self._share(model_hash, g)
        return g

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores:
        """Per-sample scores of the parent (old) and candidate (new) on G and L, paired.

        A candidate equal to its parent is refused: an empty increment trains
        nothing and would only claim samples (strength) for its proposer.
        """
        if candidate_model_hash == parent_model_hash:
            raise InvalidModelError("the candidate is the head model unchanged (an empty increment)")
        g_old, l_old = self.scores(parent_model_hash)
        g_new, l_new = self.scores(candidate_model_hash)
        return PairedScores(g_old=g_old, g_new=g_new, l_old=l_old, l_new=l_new)

    def global_score(self, model_hash: str) -> float:
        """Mean score on G (accuracy or Dice) of a stored model."""
        return mean_score(self.scores(model_hash)[0])
