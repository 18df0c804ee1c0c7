"""Splits across partners (IID, label skew, size skew) and the digits data set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tclearn.data import Dataset, load_digits_dataset, split_dataset
from tclearn.errors import DataError

KEY = b"coalition-key-0123456789abcdef!!"


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits_dataset()


def _numbered(n: int) -> Dataset:
    """Samples whose pixels hold their own index, so every sample is unique."""
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return Dataset(x, torch.arange(n, dtype=torch.int64) % 10)


def _members(ds: Dataset) -> set[int]:
    return {int(v) for v in ds.x[:, 0, 0, 0]}


def test_digits_dataset(digits: Dataset) -> None:
    assert digits.x.shape == (1797, 1, 8, 8) and digits.y.shape == (1797,)
    assert float(digits.x.min()) == 0.0 and float(digits.x.max()) == 1.0
    assert set(digits.y.tolist()) == set(range(10))


def test_iid_split_partitions_the_data() -> None:
    sub = _numbered(200)
    split = split_dataset(sub, 4, seed=1, test_size=40)
    sizes = [len(p) for p in split.partners]
    assert sum(sizes) + len(split.test) == 200 and max(sizes) - min(sizes) <= 1 and len(split.test) == 40
    parts = [_members(p) for p in (*split.partners, split.test)]
    assert set().union(*parts) == set(range(200)) and sum(len(p) for p in parts) == 200  # a partition
    again = split_dataset(sub, 4, seed=1, test_size=40)
    assert again.test.digest() == split.test.digest()
    assert split_dataset(sub, 4, seed=2, test_size=40).test.digest() != split.test.digest()
    assert len(split_dataset(sub, 4, seed=1, test_size=0.25).test) == 50


def test_label_skew(digits: Dataset) -> None:
    split = split_dataset(digits, 5, seed=0, test_size=300, mode="label_skew", alpha=0.3)
    hist = np.array([np.bincount(p.y.numpy(), minlength=10) / len(p) for p in split.partners])
    iid = split_dataset(digits, 5, seed=0, test_size=300)
    hist_iid = np.array([np.bincount(p.y.numpy(), minlength=10) / len(p) for p in iid.partners])
    assert hist.std(axis=0).mean() > 3 * hist_iid.std(axis=0).mean()
    assert sum(len(p) for p in split.partners) == 1797 - 300


def test_size_skew_on_masks() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 60, size=40)
    y = torch.zeros(40, 1, 4, 4, 4, dtype=torch.uint8)
    for i, s in enumerate(sizes):
        y[i].view(-1)[: int(s)] = 1
    ds = Dataset(torch.zeros(40, 2, 4, 4, 4), y)
    split = split_dataset(ds, 4, seed=0, test_size=8, mode="size_skew")
    means = [float(p.y.float().sum(dim=(1, 2, 3, 4)).mean()) for p in split.partners]
    assert means == sorted(means) and means[-1] > 2 * means[0]


def test_split_errors(digits: Dataset) -> None:
    with pytest.raises(DataError):
        split_dataset(digits, 3, seed=0, mode="nope")
    with pytest.raises(DataError):
        split_dataset(digits.subset(range(5)), 5, seed=0, test_size=2)
    with pytest.raises(DataError):
        split_dataset(Dataset(torch.zeros(10, 2, 4, 4, 4), torch.zeros(10, 1, 4, 4, 4, dtype=torch.uint8)),
                      2, seed=0, test_size=2, mode="label_skew")
