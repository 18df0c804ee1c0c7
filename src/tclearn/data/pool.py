"""A partner's private pool of samples: ids, its local-test share, and what it has contributed.

Why a pool object: data ids account for *contribution*, they do not ration
training (DESIGN.md §3). A sample counts towards its owner's D_i the first
time an accepted increment trains on it; after that the partner trains on it
again as often as learning needs, declaring it as re-used. Samples set aside
as local test data join the partner's L and are never trained on. The pool
keeps these three sets next to the data so the bookkeeping lives in one
place; it never marks samples by itself: the caller says when a batch's new
samples became contributions (when the chain accepts them).
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from tclearn.data.dataset import Dataset
from tclearn.data.ids import dataset_ids
from tclearn.errors import DataError

__all__ = ["DataPool", "Batch"]


@dataclass(frozen=True, eq=False)
class Batch:
    """One drawn batch: samples to train on (new ones first, then re-used ones) and a local-test share."""

    train: Dataset
    new_ids: tuple[str, ...]
    reused_ids: tuple[str, ...]
    local_test: Dataset
    local_test_ids: tuple[str, ...]

    @property
    def train_ids(self) -> tuple[str, ...]:
        return self.new_ids + self.reused_ids


class DataPool:
    """A data set, the id of each sample, its held-out local-test ids and its contributed ids."""

    def __init__(self, data: Dataset, key: bytes) -> None:
        self.data = data
        self.ids: tuple[str, ...] = dataset_ids(key, data)
        self._index = {i: n for n, i in enumerate(self.ids)}
        self._contributed: set[str] = set()
        self._held_out: set[str] = set()

    def __len__(self) -> int:
        return len(self.data)

    # --- bookkeeping -------------------------------------------------------
    @property
    def contributed(self) -> frozenset[str]:
        """Ids of this pool that an accepted increment has trained on (they count towards D_i once)."""
        return frozenset(self._contributed)

    @property
    def held_out(self) -> frozenset[str]:
        """Ids set aside as local test data: never trained on."""
        return frozenset(self._held_out)

    def _known(self, ids: Iterable[str]) -> list[str]:
        ids = list(ids)
        unknown = [i for i in ids if i not in self._index]
        if unknown:
            raise DataError(f"{len(unknown)} id(s) are not samples of this pool (first: {unknown[0]})")
        return ids

    def mark_contributed(self, ids: Iterable[str]) -> None:
        """Record `ids` (of this pool) as contributed: later batches re-use them, never claim them as new."""
        self._contributed.update(self._known(ids))

    def hold_out(self, ids: Iterable[str]) -> None:
        """Record `ids` (of this pool) as local test data: no later batch trains on them."""
        self._held_out.update(self._known(ids))

    def fresh(self, spent: Container[str] = ()) -> list[int]:
        """Indices of samples never contributed (by this partner, or in `spent`) and not held out."""
        return [n for n, i in enumerate(self.ids)
                if i not in self._contributed and i not in self._held_out and i not in spent]

    def reusable(self, spent: Container[str] = ()) -> list[int]:
        """Indices of contributed samples (this partner's, or in `spent`) that are not held out."""
        return [n for n, i in enumerate(self.ids)
                if i not in self._held_out and (i in self._contributed or i in spent)]

    # --- drawing -------------------------------------------------------------
    def draw_batch(self, n: int, rng: np.random.Generator, *, local_test_share: float = 0.0,
                   spent: Container[str] = ()) -> Batch:
        """`n` distinct samples: fresh ones first (a share of them set aside as local test), re-used ones after.

        Fresh samples are claimed as new contributions; when fewer than `n`
        are left, the batch is filled with samples contributed before (in
        `spent`, the coalition's spent ids, or marked contributed here).
        Raises DataError when the pool cannot fill a batch of `n`.
        """
        if n < 1:
            raise DataError("a batch needs at least one sample")
        fresh = self.fresh(spent)
        reusable = self.reusable(spent)
        if len(fresh) + len(reusable) < n:
            raise DataError(f"only {len(fresh) + len(reusable)} trainable samples left, a batch needs {n}")
        take_fresh = min(n, len(fresh))
        picked_fresh = (rng.choice(np.asarray(fresh, dtype=np.int64), size=take_fresh, replace=False)
                        if take_fresh else np.zeros(0, dtype=np.int64))
        n_test = int(round(local_test_share * take_fresh)) if take_fresh > 1 else 0
        n_test = min(n_test, take_fresh - 1) if take_fresh else 0
        n_reused = n - take_fresh
        picked_reused = (rng.choice(np.asarray(reusable, dtype=np.int64), size=n_reused, replace=False)
                         if n_reused else np.zeros(0, dtype=np.int64))
        test_idx = picked_fresh[:n_test]
        train_idx = np.concatenate([picked_fresh[n_test:], picked_reused])
        return Batch(
            train=self.data.subset(train_idx),
            new_ids=tuple(self.ids[int(k)] for k in picked_fresh[n_test:]),
            reused_ids=tuple(self.ids[int(k)] for k in picked_reused),
            local_test=self.data.subset(test_idx),
            local_test_ids=tuple(self.ids[int(k)] for k in test_idx),
        )
