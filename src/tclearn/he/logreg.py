"""Logistic regression on scikit-learn's breast-cancer data, plaintext and encrypted.

Why: real medical data (569 tumours, 30 features) and a model small enough
to be *trained* under CKKS. The weights are one vector of 32 slots: 30
standardised features, the bias (the constant feature 1 at index 30) and a
zero pad (index 31), so a block of 32 slots is one sample or one weight
vector.

The sigmoid is the degree-3 polynomial 0.5 + 0.197 z − 0.004 z³ (the
least-squares fit on [−5, 5] that TenSEAL's encrypted-training tutorial uses,
after Chen et al. 2018), in the plaintext reference too, so plaintext and
encrypted training run the same arithmetic. Training is full-batch gradient
descent, one step per epoch: w ← w − lr/N · Xᵀ(σ(Xw) − y).
"""

from __future__ import annotations

import numpy as np
import torch

from tclearn.data.dataset import Dataset
from tclearn.data.split import CoalitionData, split_dataset

__all__ = ["SIGMOID3", "FEATURES", "WIDTH", "load_breast_cancer_coalition", "augment", "poly_sigmoid",
           "plain_logits", "plain_epoch", "plain_train", "accuracy", "sample_scores"]

SIGMOID3 = (0.5, 0.15012, 0.0, -0.001593)
FEATURES = 30
WIDTH = 32  # slots per sample / weight vector: 30 features, bias, pad


def load_breast_cancer_coalition(n_partners: int, *, seed: int, test_size: int = 169) -> CoalitionData:
    """Standardised features (mean/std of the partners' pooled data), split like every task's data."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x = torch.from_numpy(np.asarray(bunch.data, dtype=np.float32))
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    raw = split_dataset(Dataset(x, y), n_partners, seed=seed, test_size=test_size)
    pooled = raw.pooled.x.double()
    mean, std = pooled.mean(0), pooled.std(0).clamp_min(1e-9)

    def scale(d: Dataset) -> Dataset:
        return Dataset(((d.x.double() - mean) / std).float(), d.y)

    return CoalitionData(tuple(scale(p) for p in raw.partners), scale(raw.test))


def augment(x: np.ndarray) -> np.ndarray:
    """[n, 30] → [n, 32]: features, 1 (bias), 0 (pad)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, FEATURES)
    return np.concatenate([x, np.ones((len(x), 1)), np.zeros((len(x), 1))], axis=1)


def poly_sigmoid(z: np.ndarray) -> np.ndarray:
    c0, c1, _, c3 = SIGMOID3
    out: np.ndarray = c0 + c1 * z + c3 * z ** 3
    return out


def plain_logits(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    out: np.ndarray = augment(x) @ w
    return out


def plain_epoch(w: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float, n_total: int | None = None) -> np.ndarray:
    xa = augment(x)
    grad = xa.T @ (poly_sigmoid(xa @ w) - np.asarray(y, dtype=np.float64))
    out: np.ndarray = w - lr / (n_total or len(xa)) * grad
    return out


def plain_train(w: np.ndarray, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float) -> np.ndarray:
    for _ in range(epochs):
        w = plain_epoch(w, x, y, lr)
    return w


def sample_scores(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample correctness (1.0 or 0.0): the quality rule's scores."""
    out: np.ndarray = ((np.asarray(logits) > 0).astype(np.int64) == np.asarray(y)).astype(np.float64)
    return out


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(sample_scores(logits, y).mean())
