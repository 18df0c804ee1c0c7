"""Each aggregation rule against a naive, obviously-correct version."""


import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tclearn.baselines.aggregators import coordinate_median, fedavg, fltrust, krum, multi_krum, trimmed_mean

mats = st.integers(3, 8).flatmap(
    lambda n: arrays(np.float64, (n, 5), elements=st.floats(-100, 100, allow_nan=False, width=32))
)


def naive_krum_scores(m, f):
    n = len(m)
    out = []
    for i in range(n):
        d = sorted(float(np.sum((m[i] - m[j]) ** 2)) for j in range(n) if j != i)
        out.append(sum(d[: max(1, n - f - 2)]))
    return out


@given(mats, st.integers(0, 2))
@settings(max_examples=60, deadline=None)
def test_krum_picks_naive_best(m, f):
    scores = naive_krum_scores(m, f)
    best = min(scores)
    chosen = krum(m, f)
    candidates = [m[i] for i, s in enumerate(scores) if np.isclose(s, best, rtol=1e-6, atol=1e-6)]
    assert any(np.allclose(chosen, c) for c in candidates)


@given(mats)
@settings(max_examples=60, deadline=None)
def test_median_and_trimmed_mean_match_naive(m):
    n = len(m)
    for j in range(m.shape[1]):
        col = sorted(m[:, j])
        med = (col[(n - 1) // 2] + col[n // 2]) / 2
        assert np.isclose(coordinate_median(m)[j], med)
        k = int(np.floor(0.2 * n))
        assert np.isclose(trimmed_mean(m, 0.2)[j], np.mean(col[k : n - k]))


def test_fedavg_weighted():
    m = np.array([[0.0, 2.0], [4.0, 6.0]])
    assert np.allclose(fedavg(m, [1, 3]), [3.0, 5.0])


def test_multi_krum_discards_outlier():
    honest = np.array([[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05]])
    evil = np.array([[100.0, -100.0]])
    agg = multi_krum(np.vstack([honest, evil]), f=1)
    assert np.allclose(agg, honest.mean(axis=0), atol=0.1)


def test_fltrust_ignores_opposite_direction_and_rescales():
    root = np.array([1.0, 0.0])
    ups = np.array([[10.0, 0.0], [-5.0, 0.0], [0.0, 3.0]])
    agg = fltrust(ups, root)
    # only the first has positive cosine; it is rescaled to the root's norm
    assert np.allclose(agg, [1.0, 0.0])


def test_trimmed_mean_resists_one_outlier_per_side():
    m = np.array([[0.0], [1.0], [2.0], [3.0], [1000.0]])
    assert np.isclose(trimmed_mean(m, 0.2)[0], 2.0)
