"""Attacks that act on the increment a malicious partner publishes.

An increment is handled as one flat float vector (the concatenation of its
tensors in canonical name order); the caller flattens and unflattens. Every
attack takes a seeded `numpy.random.Generator`, never the global one.

* `noise` — an increment of Gaussian noise with the honest increment's scale
  times `boost` (a partner sending garbage).
* `sign-flip` — the honest increment negated and boosted: gradient ascent.
* `scale` — the honest increment boosted by a large factor (model replacement,
  Bagdasaryan et al. 2020).
* `alie` — "A Little Is Enough" (Baruch et al., NeurIPS 2019): the attacker
  estimates the coordinate-wise mean μ and standard deviation σ of honest
  increments (here: from several increments it trains itself on its own data)
  and sends μ − z·σ, with z = Φ⁻¹((n − s)/n), s = ⌊n/2 + 1⌋ − m, chosen so the
  shift hides inside the spread of honest updates.
* `lazy` — the model unchanged (a zero increment): a free rider.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = ["noise", "sign_flip", "scale", "alie", "lazy", "alie_z"]


def noise(honest: np.ndarray, rng: np.random.Generator, boost: float = 5.0) -> np.ndarray:
    std = float(np.std(honest)) or 1e-3
    return rng.normal(0.0, boost * std, size=honest.shape).astype(honest.dtype)


def sign_flip(honest: np.ndarray, boost: float = 3.0) -> np.ndarray:
    return (-boost * honest).astype(honest.dtype)


def scale(honest: np.ndarray, factor: float = 20.0) -> np.ndarray:
    return (factor * honest).astype(honest.dtype)


def lazy(honest: np.ndarray) -> np.ndarray:
    return np.zeros_like(honest)


def alie_z(n: int, m: int) -> float:
    """Baruch et al.'s z_max for n workers of which m are malicious."""
    s = math.floor(n / 2 + 1) - m
    p = (n - s) / n
    p = min(max(p, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(p)


def alie(honest_samples: np.ndarray, n: int, m: int, z: float | None = None) -> np.ndarray:
    """μ − z·σ over the attacker's estimate of honest increments (rows of `honest_samples`)."""
    h = np.asarray(honest_samples, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError("ALIE needs at least two honest increments to estimate their spread")
    mu, sigma = h.mean(axis=0), h.std(axis=0)
    zz = alie_z(n, m) if z is None else z
    return (mu - zz * sigma).astype(np.float32)
