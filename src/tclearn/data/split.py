"""Split one data set across the partners of a coalition, plus a global test set G.

Why non-IID splits: hospitals do not see the same patients. Besides an IID
split, two skews are offered, both seeded:

* `label_skew` (classification): each partner's share of every class is drawn
  from a Dirichlet(alpha) distribution, the usual federated-learning benchmark
  skew; small alpha, strong skew.
* `size_skew` (segmentation): samples are ranked by foreground size (e.g. a
  bladder's volume, with a little noise in the rank) and dealt out in
  contiguous blocks, so one hospital sees small bladders and another large ones.

G is drawn first, uniformly at random, so it follows the pooled distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tclearn.data.dataset import Dataset, concat_datasets
from tclearn.errors import DataError

__all__ = ["CoalitionData", "split_dataset", "SPLIT_MODES"]

SPLIT_MODES = ("iid", "label_skew", "size_skew")


@dataclass(frozen=True)
class CoalitionData:
    """Each partner's private training pool, and the global test set G."""

    partners: tuple[Dataset, ...]
    test: Dataset

    @property
    def pooled(self) -> Dataset:
        """All partners' training data in one set (for the centralised baseline)."""
        return concat_datasets(self.partners)


def _resolve_size(test_size: int | float, n: int) -> int:
    if isinstance(test_size, float):
        if not 0.0 < test_size < 1.0:
            raise DataError("a fractional test_size must lie in (0, 1)")
        return max(1, int(round(test_size * n)))
    return int(test_size)


def _label_skew(labels: np.ndarray, n_partners: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    parts: list[list[int]] = [[] for _ in range(n_partners)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(n_partners, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for k, chunk in enumerate(np.split(members, cuts)):
            parts[k].extend(int(i) for i in chunk)
    return [np.asarray(sorted(p), dtype=np.int64) for p in parts]


def _size_skew(sizes: np.ndarray, n_partners: int, rng: np.random.Generator) -> list[np.ndarray]:
    jitter = rng.normal(0.0, 0.1 * (float(sizes.std()) or 1.0), size=sizes.shape)
    order = np.argsort(sizes + jitter, kind="stable")
    return [np.sort(chunk) for chunk in np.array_split(order, n_partners)]


def split_dataset(
    data: Dataset,
    n_partners: int,
    *,
    seed: int,
    test_size: int | float = 0.2,
    mode: str = "iid",
    alpha: float = 0.5,
) -> CoalitionData:
    """Split `data` into G (`test_size` samples or share) and `n_partners` training pools."""
    if mode not in SPLIT_MODES:
        raise DataError(f"split mode must be one of {', '.join(SPLIT_MODES)}, got {mode!r}")
    if n_partners < 1:
        raise DataError("a coalition needs at least one partner")
    rng = np.random.default_rng([seed, 0x5B117])
    n = len(data)
    n_test = _resolve_size(test_size, n)
    if not 1 <= n_test <= n - n_partners:
        raise DataError(f"cannot take {n_test} test samples and leave one per partner out of {n}")
    perm = rng.permutation(n)
    test_idx, rest = np.sort(perm[:n_test]), perm[n_test:]
    if mode == "iid":
        chunks = [np.sort(c) for c in np.array_split(rng.permutation(rest), n_partners)]
    elif mode == "label_skew":
        if data.y.ndim != 1:
            raise DataError("label_skew needs class labels; use size_skew for segmentation")
        labels = data.y.numpy()[rest]
        chunks = [rest[c] for c in _label_skew(labels, n_partners, alpha, rng)]
        chunks = [np.sort(c) for c in chunks]
    else:
        sizes = data.y.reshape(n, -1).sum(dim=1).numpy().astype(np.float64)[rest]
        chunks = [np.sort(rest[c]) for c in _size_skew(sizes, n_partners, rng)]
    if any(len(c) == 0 for c in chunks):
        raise DataError("a partner received no sample; use more data, fewer partners or a larger alpha")
    return CoalitionData(partners=tuple(data.subset(c) for c in chunks), test=data.subset(test_idx))
