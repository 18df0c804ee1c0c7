"""Robust aggregation rules of the usual federated defences, on flat update vectors.

These are the baselines TCLearn's quality consensus is compared with. Each
takes the partners' updates as rows of a 2-D float array (one flattened model
increment per partner) and returns one aggregated update. They are written
from the papers, in NumPy, because the libraries that ship them do not fit
beside our pinned CPU torch (ByzFL requires torchvision; Flower's
`strategy.aggregate` comes with a gRPC/FastAPI server stack):

* FedAvg — McMahan et al., "Communication-Efficient Learning of Deep Networks
  from Decentralized Data", AISTATS 2017: the sample-weighted mean.
* Krum / Multi-Krum — Blanchard et al., "Machine Learning with Adversaries:
  Byzantine Tolerant Gradient Descent", NeurIPS 2017: score each update by the
  sum of squared distances to its n − f − 2 nearest neighbours; Krum keeps the
  best one, Multi-Krum averages the m best.
* Coordinate-wise median and trimmed mean — Yin et al., "Byzantine-Robust
  Distributed Learning: Towards Optimal Statistical Rates", ICML 2018.
* FLTrust — Cao et al., "FLTrust: Byzantine-robust Federated Learning via
  Trust Bootstrapping", NDSS 2021: the server trains on a small trusted root
  set; each client update gets trust ReLU(cos(g_i, g_0)), is rescaled to the
  root update's norm, and the trust-weighted mean is the aggregate.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fedavg", "krum", "multi_krum", "coordinate_median", "trimmed_mean", "fltrust", "AGGREGATORS"]


def _as_matrix(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    m = np.asarray(updates, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError("updates must be a non-empty 2-D array (one row per partner)")
    return m


def fedavg(updates: np.ndarray | list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    m = _as_matrix(updates)
    w = np.ones(m.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m.shape[0],) or w.sum() <= 0:
        raise ValueError("one positive weight per update")
    return (w[:, None] * m).sum(axis=0) / w.sum()


def _krum_scores(m: np.ndarray, f: int) -> np.ndarray:
    n = m.shape[0]
    sq = (m * m).sum(axis=1)
    d = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (m @ m.T), 0.0)
    closest = max(1, n - f - 2)
    scores = np.empty(n)
    for i in range(n):
        others = np.delete(d[i], i)
        scores[i] = np.sort(others)[:closest].sum()
    return scores


def krum(updates: np.ndarray | list[np.ndarray], f: int) -> np.ndarray:
    """The single update closest to its n − f − 2 neighbours."""
    m = _as_matrix(updates)
    if m.shape[0] == 1:
        return m[0].copy()
    return m[int(np.argmin(_krum_scores(m, f)))].copy()


def multi_krum(updates: np.ndarray | list[np.ndarray], f: int, keep: int | None = None) -> np.ndarray:
    """Mean of the `keep` best-scored updates (default n − f)."""
    m = _as_matrix(updates)
    n = m.shape[0]
    keep = max(1, n - f) if keep is None else keep
    if n == 1:
        return m[0].copy()
    best = np.argsort(_krum_scores(m, f), kind="stable")[:keep]
    return m[best].mean(axis=0)


def coordinate_median(updates: np.ndarray | list[np.ndarray]) -> np.ndarray:
    return np.median(_as_matrix(updates), axis=0)


def trimmed_mean(updates: np.ndarray | list[np.ndarray], beta: float = 0.2) -> np.ndarray:
    """Per coordinate, drop the ⌊βn⌋ largest and smallest values and average the rest."""
    m = _as_matrix(updates)
    n = m.shape[0]
    k = int(np.floor(beta * n))
    if 2 * k >= n:
        k = (n - 1) // 2
    s = np.sort(m, axis=0)
    return s[k : n - k].mean(axis=0)


def fltrust(updates: np.ndarray | list[np.ndarray], root_update: np.ndarray) -> np.ndarray:
    m = _as_matrix(updates)
    g0 = np.asarray(root_update, dtype=np.float64)
    n0 = np.linalg.norm(g0)
    if n0 == 0:
        return np.zeros_like(g0)
    norms = np.linalg.norm(m, axis=1)
    safe = np.where(norms == 0, 1.0, norms)
    cos = (m @ g0) / (safe * n0)
    trust = np.maximum(cos, 0.0) * (norms > 0)
    if trust.sum() == 0:
        return np.zeros_like(g0)
    rescaled = m * (n0 / safe)[:, None]
    return (trust[:, None] * rescaled).sum(axis=0) / trust.sum()


AGGREGATORS = ("fedavg", "krum", "multi-krum", "median", "trimmed-mean", "fltrust")
