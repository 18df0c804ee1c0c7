"""The resemblance check on its own (pure numpy): weights refused, honest-looking values not."""

from __future__ import annotations

import numpy as np

from tclearn.he.resemblance import check_resemblance, protected_vectors


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"fc": rng.normal(0, 0.2, (10, 64)), "bias": rng.normal(0, 0.1, 10)}


def test_a_weight_row_scaled_and_shifted_is_caught() -> None:
    w = _weights()
    leak = 3.0 * w["fc"][2, 5:45] - 1.5 + np.random.default_rng(1).normal(0, 1e-5, 40)
    v = check_resemblance(leak, protected_vectors(w))
    assert v.resembles and v.max_correlation > 0.999


def test_a_weight_column_is_caught() -> None:
    w = _weights()
    v = check_resemblance(np.tile(w["fc"][:, 7], 3), protected_vectors(w))
    assert v.resembles


def test_single_weights_are_caught_by_value() -> None:
    w = _weights()
    rng = np.random.default_rng(2)
    values = rng.normal(0, 5, 10)
    values[:6] = w["fc"][[1, 3, 8, 0, 5, 9], [0, 9, 60, 33, 2, 17]]  # six exact weights among honest logits
    v = check_resemblance(values, protected_vectors(w))
    assert v.resembles and v.matches >= 6


def test_honest_logits_pass() -> None:
    w = _weights()
    rng = np.random.default_rng(3)
    h = rng.random((50, 64)) ** 2
    logits = h @ w["fc"].T + w["bias"]  # what the model outputs on inputs
    v = check_resemblance(logits.T.reshape(-1), protected_vectors(w))
    assert not v.resembles, v


def test_non_finite_values_are_refused() -> None:
    assert check_resemblance(np.array([1.0, np.nan]), protected_vectors(_weights())).resembles
