"""The Decathlon-layout NIfTI loader, on small files written by the test."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tclearn.data import central_slice_index, find_cases, load_decathlon
from tclearn.errors import DataError


def _write(path: Path, array: np.ndarray) -> None:
    nib.save(nib.Nifti1Image(array, affine=np.eye(4)), str(path))


def _case(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    img = rng.normal(40.0, 20.0, size=shape).astype(np.float32)
    lab = np.zeros(shape, dtype=np.uint8)
    x0, y0, z0 = (s // 4 for s in shape)
    lab[x0 : 3 * x0, y0 : 3 * y0, z0 : 3 * z0] = 1
    lab[:2, :2, :2] = 2  # another structure
    img[lab == 1] = 0.0
    return img, lab


@pytest.fixture()
def decathlon(tmp_path: Path) -> Path:
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i, shape in enumerate([(20, 18, 12), (24, 24, 16), (16, 20, 10)]):
        img, lab = _case(rng, shape)
        _write(tmp_path / "imagesTr" / f"case_{i:03d}.nii.gz", img)
        _write(tmp_path / "labelsTr" / f"case_{i:03d}.nii.gz", lab)
    (tmp_path / "imagesTr" / "._case_000.nii.gz").write_bytes(b"macOS junk")  # ignored
    return tmp_path


def test_loads_and_resamples(decathlon: Path) -> None:
    ds = load_decathlon(decathlon, shape=(16, 16, 8))
    assert ds.x.shape == (3, 2, 16, 16, 8) and ds.y.shape == (3, 1, 16, 16, 8)
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) <= 1.0
    for i in range(3):
        frac = float(ds.y[i].float().mean())
        assert 0.08 < frac < 0.25  # the labelled block is about 1/8 of the volume, plus label 2
        mask = ds.y[i, 0].numpy()
        k = central_slice_index(mask)
        assert np.array_equal(ds.x[i, 1, k].numpy(), mask[k].astype(np.float32))
    only_one = load_decathlon(decathlon, shape=(16, 16, 8), label_value=1)
    assert int(only_one.y.sum()) < int(ds.y.sum())
    z = load_decathlon(decathlon, shape=(8, 8, 8), normalisation="zscore", max_cases=2)
    assert len(z) == 2 and 0.0 <= float(z.x.min()) and float(z.x.max()) <= 1.0


def test_four_d_images_pick_a_modality(decathlon: Path) -> None:
    img, lab = _case(np.random.default_rng(1), (12, 12, 8))
    _write(decathlon / "imagesTr" / "case_100.nii.gz", np.stack([img, -img], axis=-1))
    _write(decathlon / "labelsTr" / "case_100.nii.gz", lab)
    a = load_decathlon(decathlon, shape=(8, 8, 8), modality=0)
    b = load_decathlon(decathlon, shape=(8, 8, 8), modality=1)
    assert not np.array_equal(a.x[3, 0].numpy(), b.x[3, 0].numpy())
    with pytest.raises(DataError, match="modalities"):
        load_decathlon(decathlon, shape=(8, 8, 8), modality=2)


def test_mismatched_folders_are_named(decathlon: Path) -> None:
    (decathlon / "labelsTr" / "case_001.nii.gz").unlink()
    with pytest.raises(DataError, match="case_001"):
        find_cases(decathlon)
    img, lab = _case(np.random.default_rng(2), (8, 8, 8))
    _write(decathlon / "labelsTr" / "extra.nii.gz", lab)
    with pytest.raises(DataError, match="extra"):
        load_decathlon(decathlon)


def test_grid_mismatch_and_damaged_files(decathlon: Path) -> None:
    img, lab = _case(np.random.default_rng(3), (10, 10, 10))
    _write(decathlon / "imagesTr" / "case_200.nii.gz", img)
    _write(decathlon / "labelsTr" / "case_200.nii.gz", lab[:, :, :8])
    with pytest.raises(DataError, match="case_200.*different grids"):
        load_decathlon(decathlon, shape=(8, 8, 8))
    (decathlon / "labelsTr" / "case_200.nii.gz").write_bytes(b"not nifti")
    with pytest.raises(DataError, match="cannot read"):
        load_decathlon(decathlon, shape=(8, 8, 8))


def test_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing folder"):
        load_decathlon(tmp_path)
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    with pytest.raises(DataError, match="no .nii"):
        load_decathlon(tmp_path)
    with pytest.raises(DataError, match="normalisation"):
        load_decathlon(tmp_path, normalisation="minmax")
