"""A partner's private pool of samples, with ids and a record of what is used.

Why a pool object: a partner draws each training batch from the samples it
has not used yet (the ledger refuses a batch that repeats a sample), and it
names the drawn samples by their anonymised ids. Computing the ids once and
keeping the "used" set next to the data keeps that bookkeeping in one place.
The pool never marks samples by itself: the caller marks a batch used when
the protocol says so (see `tclearn.learning.train`).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from tclearn.data.dataset import Dataset
from tclearn.data.ids import dataset_ids
from tclearn.errors import DataError

__all__ = ["DataPool"]


class DataPool:
    """A data set, the id of each sample, and the set of ids already used."""

    def __init__(self, data: Dataset, key: bytes) -> None:
        self.data = data
        self.ids: tuple[str, ...] = dataset_ids(key, data)
        self._index = {i: n for n, i in enumerate(self.ids)}
        self._used: set[str] = set()

    def __len__(self) -> int:
        return len(self.data)

    @property
    def used(self) -> frozenset[str]:
        return frozenset(self._used)

    def available(self) -> list[int]:
        """Indices of the samples not used yet, in data-set order."""
        return [n for n, i in enumerate(self.ids) if i not in self._used]

    def mark_used(self, ids: Iterable[str]) -> None:
        """Record `ids` (of this pool) as used: later draws skip them."""
        ids = list(ids)
        unknown = [i for i in ids if i not in self._index]
        if unknown:
            raise DataError(f"{len(unknown)} id(s) are not samples of this pool")
        self._used.update(ids)

    def draw(self, n: int, rng: np.random.Generator) -> tuple[Dataset, tuple[str, ...]]:
        """`n` distinct unused samples drawn at random, and their ids (same order)."""
        free = self.available()
        if n < 1:
            raise DataError("a batch needs at least one sample")
        if len(free) < n:
            raise DataError(f"only {len(free)} unused samples left, a batch needs {n}")
        picked = rng.choice(np.asarray(free, dtype=np.int64), size=n, replace=False)
        return self.data.subset(picked), tuple(self.ids[int(k)] for k in picked)
