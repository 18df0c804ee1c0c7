"""Phantom generator: shapes, Hounsfield ranges, variety, and partners' scanners."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from tclearn.data import (
    DEFAULT_PHANTOM_SHAPE,
    SCANNER_PROFILES,
    ScannerProfile,
    apply_scanner,
    central_slice_index,
    make_phantom,
    partner_profile,
    phantom_coalition,
    phantom_dataset,
    phantom_hu,
    phantom_test_set,
)
from tclearn.data.phantoms import HELD_OUT_STREAM
from tclearn.errors import DataError


def test_phantom_shapes_and_types() -> None:
    vol, mask = make_phantom(np.random.default_rng(0))
    assert vol.shape == mask.shape == DEFAULT_PHANTOM_SHAPE
    assert vol.dtype == np.float32 and mask.dtype == np.uint8
    assert 0.0 <= vol.min() and vol.max() <= 1.0
    assert set(np.unique(mask)) == {0, 1}


def test_hounsfield_ranges() -> None:
    hu, mask = phantom_hu(np.random.default_rng(1))
    assert hu.min() == pytest.approx(-1000.0)  # air around the body
    assert 800 <= hu.max() <= 1100  # cortical bone
    assert ((hu > -130) & (hu < -60)).sum() > 500  # fat
    assert ((hu > 250) & (hu < 1100)).sum() > 100  # bone
    urine = hu[mask > 0]
    assert urine.size > 50 and -15 < urine.min() and urine.max() < 30
    soft = hu[(hu > 25) & (hu < 70)]
    assert soft.size > 0.2 * hu.size


def test_same_generator_same_phantom_and_bladders_vary() -> None:
    a = make_phantom(np.random.default_rng([5, 1]))
    b = make_phantom(np.random.default_rng([5, 1]))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    masks = [phantom_hu(np.random.default_rng(s))[1] for s in range(16)]
    sizes = np.array([m.sum() for m in masks])
    assert sizes.min() > 0 and sizes.max() / sizes.min() > 2.0
    centres = np.array([ndimage.center_of_mass(m) for m in masks])
    assert centres.std(axis=0).max() > 1.0  # positions vary by more than a voxel


def _noise_level(vol: np.ndarray, region: np.ndarray) -> float:
    return float((vol - ndimage.uniform_filter(vol, 3))[region].std())


def test_scanner_profiles_make_partners_differ() -> None:
    hu, _ = phantom_hu(np.random.default_rng(2))
    soft = ndimage.binary_erosion((hu > 25) & (hu < 70), iterations=2)
    sharp = apply_scanner(hu, SCANNER_PROFILES[0], np.random.default_rng(0))
    low_dose = apply_scanner(hu, partner_profile(4), np.random.default_rng(0))
    wide = apply_scanner(hu, partner_profile(3), np.random.default_rng(0))
    # noise: the low-dose scanner is noisier (even relative to its window)
    assert _noise_level(low_dose, soft) > 1.5 * _noise_level(sharp, soft)
    # window: the same soft tissue lands at other normalised intensities
    assert abs(float(wide[soft].mean()) - float(sharp[soft].mean())) > 0.02
    # resolution: thick slices blur along z
    thick = apply_scanner(hu, ScannerProfile("t", noise_hu=0.0, slice_factor=2), np.random.default_rng(0))
    thin = apply_scanner(hu, ScannerProfile("t", noise_hu=0.0), np.random.default_rng(0))
    assert np.abs(np.diff(thick, axis=0)).mean() < np.abs(np.diff(thin, axis=0)).mean()
    assert partner_profile(len(SCANNER_PROFILES)) == partner_profile(0)


def test_phantom_dataset_has_guidance_channel() -> None:
    ds = phantom_dataset(3, seed=0)
    assert ds.x.shape == (3, 2, *DEFAULT_PHANTOM_SHAPE) and ds.y.shape == (3, 1, *DEFAULT_PHANTOM_SHAPE)
    for i in range(3):
        mask, guide = ds.y[i, 0].numpy(), ds.x[i, 1].numpy()
        k = central_slice_index(mask)
        assert k is not None
        filled = np.flatnonzero(mask.reshape(mask.shape[0], -1).sum(1))
        assert filled[0] <= k <= filled[-1]
        assert np.array_equal(guide[k], mask[k].astype(np.float32))
        guide[k] = 0
        assert not guide.any()  # one labelled slice only


def test_phantom_coalition_partners_and_test_set() -> None:
    data = phantom_coalition(3, seed=0, per_partner=4, test_size=3, shape=(16, 16, 16))
    assert [len(p) for p in data.partners] == [4, 4, 4] and len(data.test) == 3
    assert len(data.pooled) == 12
    # streams differ: no patient shared between partners or with G
    digests = {p.subset([i]).digest() for p in (*data.partners, data.test) for i in range(len(p))}
    assert len(digests) == 15
    g = phantom_test_set(3, seed=0, n_partners=3, shape=(16, 16, 16))  # stream 0: G itself
    assert g.digest() == data.test.digest()
    held_out = phantom_test_set(4, seed=0, n_partners=3, shape=(16, 16, 16), stream=HELD_OUT_STREAM)
    assert not digests & {held_out.subset([i]).digest() for i in range(4)}  # nobody's patients, nor G's
    with pytest.raises(DataError):
        phantom_test_set(0, seed=0, n_partners=3)
    with pytest.raises(DataError):
        phantom_hu(np.random.default_rng(0), (4, 4, 4))
    with pytest.raises(DataError):
        ScannerProfile("bad", window_width=0.0)
