"""The quality rule: does a candidate model degrade the current one?

Theory of operation. The paper's rule, perf(new) ≥ λ · perf(old), is noisy on
small test sets: an honest increment that changes a few predictions can fall
below it by chance. So the validator compares the two models on the *same*
samples (a paired comparison) and rejects only when the candidate is worse in
a way the samples can tell:

* `delta_i = new_i − old_i` for every sample of G ∪ L (per-sample scores,
  higher is better: 1/0 correctness for accuracy, per-volume Dice);
* the mean of new must reach λ · mean of old (the paper's rule, on the merged
  score), **or** the shortfall must not be significant: a one-sided paired
  test of H0 "new is at least λ·old" at level `alpha` — we reject only when
  the upper confidence bound of mean(new − λ·old) is below zero;
* and, independently, a hard floor: a candidate whose score on G, or whose
  merged score, drops by more than `max_drop` (absolute) is rejected whatever
  the test says, so a large G/L cannot hide a real loss behind a wide
  interval, a tiny one cannot pass a collapse, and a validator's private L
  cannot outvote a loss on the shared G. The G part of that floor depends on
  G alone, so every node can check it from the votes (`g_floor_broken`): an
  accepting vote that contradicts it is evidence against its validator.

This module is pure Python (math only): the consensus core calls it and the
simulator feeds it synthetic scores; the learning side produces the scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["PairedScores", "Judgement", "judge", "g_floor_broken", "DEFAULT_ALPHA", "DEFAULT_MAX_DROP"]

DEFAULT_ALPHA = 0.05
DEFAULT_MAX_DROP = 0.02


@dataclass(frozen=True)
class PairedScores:
    """Per-sample scores of the current (old) and candidate (new) models.

    G scores are the same on every honest validator (deterministic evaluation
    of the same models on the same G); L scores are the validator's own.
    """

    g_old: tuple[float, ...]
    g_new: tuple[float, ...]
    l_old: tuple[float, ...] = ()
    l_new: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if len(self.g_old) != len(self.g_new) or len(self.l_old) != len(self.l_new):
            raise ValueError("old and new scores must be paired (same samples, same order)")
        if not self.g_old and not self.l_old:
            raise ValueError("no samples to judge on")


@dataclass(frozen=True)
class Judgement:
    accept: bool
    scores: dict[str, float]


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs) if xs else 0.0


def _t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t (Cornish-Fisher expansion of the normal one).

    Exact enough (< 1 % error for dof ≥ 3) for a decision threshold, and pure
    math so every node computes the same number.
    """
    z = _normal_quantile(p)
    if dof <= 0:
        return z
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3


def _normal_quantile(p: float) -> float:
    """Acklam's rational approximation of the standard normal quantile."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628274631000e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    if p < 0.02425:
        q = math.sqrt(-2 * math.log(p))
        return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    if p > 1 - 0.02425:
        return -_normal_quantile(1 - p)
    q = p - 0.5
    r = q * q
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (
        ((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1
    )


def g_floor_broken(g_old: float, g_new: float, max_drop: float = DEFAULT_MAX_DROP) -> bool:
    """True when the candidate's G score is more than `max_drop` below the head's.

    A tolerance of 1e-9 keeps a drop of exactly `max_drop` (3 samples of 300
    for 0.01) from tipping over on float rounding.
    """
    return (g_old - g_new) > max_drop + 1e-9


def judge(
    scores: PairedScores,
    lam: float,
    *,
    alpha: float = DEFAULT_ALPHA,
    max_drop: float = DEFAULT_MAX_DROP,
) -> Judgement:
    """Accept unless the candidate is significantly below λ · old, or drops by more than max_drop."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError("λ must lie in [0, 1]")
    if not 0.0 <= max_drop <= 1.0:
        raise ValueError("max_drop must lie in [0, 1]")
    old = tuple(scores.g_old) + tuple(scores.l_old)
    new = tuple(scores.g_new) + tuple(scores.l_new)
    if not all(math.isfinite(x) for x in old + new):
        # NaN compares false with everything: without this a NaN candidate would pass.
        return Judgement(accept=False, scores={"n_g": float(len(scores.g_old)), "n_l": float(len(scores.l_old)),
                                               "non_finite": 1.0})
    n = len(old)
    m_old, m_new = _mean(old), _mean(new)
    diffs = [b - lam * a for a, b in zip(old, new)]
    m_diff = _mean(diffs)
    var = math.fsum((d - m_diff) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    se = math.sqrt(var / n) if n > 0 else 0.0
    upper = m_diff + _t_quantile(1 - alpha, n - 1) * se
    meets_rule = m_new >= lam * m_old
    significantly_worse = upper < 0.0
    g_old, g_new = _mean(scores.g_old), _mean(scores.g_new)
    collapse = (m_old - m_new) > max_drop + 1e-9 or (bool(scores.g_old) and g_floor_broken(g_old, g_new, max_drop))
    accept = (meets_rule or not significantly_worse) and not collapse
    out = {
        "g_old": g_old,
        "g_new": g_new,
        "n_g": float(len(scores.g_old)),
        "n_l": float(len(scores.l_old)),
        "merged_old": m_old,
        "merged_new": m_new,
        "upper_bound": upper,
    }
    if scores.l_old:
        out["l_old"] = _mean(scores.l_old)
        out["l_new"] = _mean(scores.l_new)
    return Judgement(accept=accept, scores=out)
