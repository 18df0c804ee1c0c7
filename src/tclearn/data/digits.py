"""Handwritten digits (scikit-learn's `load_digits`) as a classification data set.

Why: 1 797 real 8×8 images that ship with scikit-learn, so a quick task with
real data runs anywhere, offline, in milliseconds per step. Pixels (0..16)
are scaled to [0, 1]; labels are int64 0..9.
"""

from __future__ import annotations

import numpy as np
import torch

from tclearn.data.dataset import Dataset

__all__ = ["load_digits_dataset", "DIGITS_CLASSES"]

DIGITS_CLASSES = 10


def load_digits_dataset() -> Dataset:
    """All 1 797 digits: x [N, 1, 8, 8] float32 in [0, 1], y [N] int64."""
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / 16.0
    labels = np.asarray(bunch.target, dtype=np.int64)
    return Dataset(torch.from_numpy(images[:, None].copy()), torch.from_numpy(labels.copy()))
