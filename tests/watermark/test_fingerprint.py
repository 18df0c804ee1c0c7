"""The fingerprint maths alone: embedding, detection, the false-accusation bound (no vault)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from tclearn.learning.tasks import get_task
from tclearn.watermark.fingerprint import (
    Detector, code_for, embed, false_accusation_bound, key_id, marked_names, threshold_for,
)


def keys(n: int, tag: str = "k") -> list[bytes]:
    return [hashlib.sha256(f"{tag}{i}".encode()).digest() for i in range(n)]


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return get_task("digits").initial_state(3)


def test_marks_only_wide_weights_and_changes_them_by_alpha_std(reference: dict[str, torch.Tensor]) -> None:
    marked = embed(reference, keys(1)[0], alpha=0.03)
    names = marked_names(reference)
    assert names == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"]
    for n, t in reference.items():
        delta = marked[n] - t
        if n in names:
            assert torch.allclose(delta.abs(), torch.full_like(t, 0.03 * float(t.double().std())), rtol=1e-3, atol=1e-7)
        else:
            assert torch.equal(delta, torch.zeros_like(t))


def test_codes_are_keyed_balanced_and_reproducible() -> None:
    a, b = keys(2)
    ca, cb = code_for(a, "w", 10_000), code_for(b, "w", 10_000)
    assert np.array_equal(ca, code_for(a, "w", 10_000))
    assert set(np.unique(ca)) == {-1, 1} and abs(int(ca.sum())) < 400
    assert abs(int((ca.astype(np.int64) * cb).sum())) < 400  # two keys' codes are nearly orthogonal
    assert not np.array_equal(ca, code_for(a, "v", 10_000))
    assert key_id(a) != key_id(b) and len(key_id(a)) == 64


def test_detector_names_the_right_key_and_only_it(reference: dict[str, torch.Tensor]) -> None:
    ks = keys(20)
    det = Detector(reference, ks)
    z = det.scores(embed(reference, ks[7]))
    limit = threshold_for(len(ks))
    assert int(np.argmax(z)) == 7 and z[7] > 5 * limit
    assert (np.delete(z, 7) < limit).all()
    assert np.array_equal(det.scores(reference), np.zeros(20))  # the clean model carries no mark


def test_null_scores_follow_the_hoeffding_bound(reference: dict[str, torch.Tensor]) -> None:
    """Independent models against 200 keys: scores look N(0, 1); none reaches the 1e-6 threshold."""
    det = Detector(reference, keys(200, "null"))
    task = get_task("digits")
    z = np.concatenate([det.scores(task.initial_state(100 + s)) for s in range(10)])
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2
    assert z.max() < threshold_for(200)


def test_threshold_and_bound_agree() -> None:
    t = threshold_for(50, 1e-6)
    assert t == pytest.approx(math.sqrt(2 * math.log(5e7)))
    assert false_accusation_bound(t, 50) == pytest.approx(1e-6)
    assert false_accusation_bound(-1.0, 50) == 1.0


def test_embed_refuses_a_mark_larger_than_the_weights(reference: dict[str, torch.Tensor]) -> None:
    with pytest.raises(ValueError):
        embed(reference, keys(1)[0], alpha=1.5)
