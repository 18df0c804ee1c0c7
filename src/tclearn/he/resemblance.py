"""Does a decrypted "result" look like the model's weights or an increment? (pure numpy)

Theory of operation. A member holds encrypted weights and may send any
ciphertext it can compute as a "prediction": the model itself, a weight
vector rescaled or shifted, a rotated copy. Two tests on the decrypted values
v, against every protected vector s (each weight tensor flattened row- and
column-major, each bias, each increment):

* **Affine match** (catches a weight vector, scaled or shifted or not): the
  largest |Pearson r| between a run of ≥ `MIN_RUN` consecutive values of v
  and any window of s of the same length. A weight vector passed off as a
  result gives |r| = 1 up to CKKS noise (1 − 1e-6); the threshold is
  `CORRELATION_LIMIT` = 0.999, which also catches a copy blurred by noise
  of up to ~4 % of the weights' spread. Honest logits are not an affine image of one
  weight run: on the whole of G the largest |r| measured by `bench/he.py`
  (digits logits against every window of every weight tensor) is reported
  next to this limit.
* **Value match** (catches single weights, which a correlation cannot): the
  number of values within `MATCH_TOL` (relative) of some protected value,
  against a null count: the same values shifted by ±k·10·tol match by
  chance as often as honest values do, but not exactly. Refused when the
  count reaches `MIN_MATCHES` and chance (Poisson with the null's mean) gives
  that many with probability under `MATCH_P` = 1e-3. Where weights are
  dense (digits: 6 500 values mostly in ±0.5), a request can still carry a
  few weights among honest values below that bar: the budget bounds those.

What this cannot stop: a member whose *own* plain input is crafted (a
one-hot sample gives w_f + b as an honest logit). That is model extraction
by queries, bounded by the decryption budget, not by this check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Verdict", "check_resemblance", "protected_vectors", "max_correlation", "CORRELATION_LIMIT",
           "MIN_RUN", "MATCH_TOL", "MIN_MATCHES"]

CORRELATION_LIMIT = 0.999
MIN_RUN = 8
MAX_RUN = 64
MATCH_TOL = 1e-4
MIN_MATCHES = 3
MATCH_P = 1e-3
_SHIFTS = (-4, -3, -2, -1, 1, 2, 3, 4)


@dataclass(frozen=True)
class Verdict:
    resembles: bool
    reason: str
    max_correlation: float
    matches: int
    null_matches: float


def protected_vectors(tensors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Each tensor flattened row-major and column-major (rows and columns both become runs)."""
    out = []
    for t in tensors.values():
        a = np.asarray(t, dtype=np.float64)
        out.append(a.reshape(-1))
        if a.ndim > 1:
            out.append(a.reshape(-1, order="F"))
    return out


def _standardise(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centred = rows - rows.mean(axis=-1, keepdims=True)
    norm = np.sqrt((centred ** 2).sum(axis=-1))
    return centred, norm


def max_correlation(values: np.ndarray, protected: list[np.ndarray]) -> float:
    """Largest |r| between a run of `values` (aligned chunks of ≤ MAX_RUN) and a window of a protected vector."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    best = 0.0
    for s in protected:
        run = min(len(v), len(s), MAX_RUN)
        if run < MIN_RUN:
            continue
        chunks = v[: len(v) // run * run].reshape(-1, run)
        if len(v) % run:
            chunks = np.vstack([chunks, v[-run:]])
        vc, vn = _standardise(chunks)
        wc, wn = _standardise(sliding_window_view(s, run))
        ok_v, ok_w = vn > 1e-12, wn > 1e-12
        if not ok_v.any() or not ok_w.any():
            continue
        r = (vc[ok_v] @ wc[ok_w].T) / np.outer(vn[ok_v], wn[ok_w])
        best = max(best, float(np.abs(r).max()))
    return best


def _count_matches(values: np.ndarray, table: np.ndarray) -> int:
    tol = MATCH_TOL * np.maximum(1.0, np.abs(values))
    idx = np.clip(np.searchsorted(table, values), 1, len(table) - 1)
    nearest = np.minimum(np.abs(table[idx] - values), np.abs(table[idx - 1] - values))
    return int((nearest <= tol).sum())


def _poisson_tail(mean: float, k: int) -> float:
    """P(X ≥ k) for X ~ Poisson(mean)."""
    mean = max(mean, 1e-9)
    below = sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(k))
    return max(0.0, 1.0 - below)


def check_resemblance(values: np.ndarray, protected: list[np.ndarray]) -> Verdict:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        return Verdict(True, "non-finite values", math.inf, 0, 0.0)
    corr = max_correlation(v, protected)
    if corr >= CORRELATION_LIMIT:
        return Verdict(True, f"a run of the result is an affine copy of model weights (|r| = {corr:.6f})",
                       corr, 0, 0.0)
    table = np.sort(np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in protected]))
    if len(table) < 2 or len(v) == 0:
        return Verdict(False, "", corr, 0, 0.0)
    matches = _count_matches(v, table)
    step = 10 * MATCH_TOL * np.maximum(1.0, np.abs(v))
    null = float(np.mean([_count_matches(v + k * step, table) for k in _SHIFTS]))
    if matches >= MIN_MATCHES and _poisson_tail(null, matches) < MATCH_P:
        return Verdict(True, f"{matches} values equal model weights (chance: {null:.1f})", corr, matches, null)
    return Verdict(False, "", corr, matches, null)
