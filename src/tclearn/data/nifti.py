"""A user's NIfTI segmentation data in the Medical Segmentation Decathlon layout.

Why this layout: it is what public medical segmentation sets (and most
hospitals' exports converted with dcm2niix) look like:

    root/imagesTr/case_001.nii.gz   image (3-D, or 4-D with modalities last)
    root/labelsTr/case_001.nii.gz   label map, same grid as the image

Images and labels are matched by file name. Every case is resampled to one
fixed grid (linear for images, nearest for labels) so cases from different
scanners fit one network, intensities are normalised (a CT window or a
per-volume z-score squashed to [0, 1]), and the label becomes a binary mask of
the chosen label value (or of any non-zero label). Missing, unreadable or
mismatched files raise a DataError that names the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]

from tclearn.data.dataset import Dataset
from tclearn.data.segmentation import segmentation_dataset
from tclearn.errors import DataError

__all__ = ["load_decathlon", "find_cases", "resample_to", "normalise_intensity", "NORMALISATIONS"]

NORMALISATIONS = ("ct", "zscore")
_SUFFIXES = (".nii.gz", ".nii")


def _case_name(path: Path) -> str | None:
    for suffix in _SUFFIXES:
        if path.name.endswith(suffix) and not path.name.startswith("."):
            return path.name[: -len(suffix)]
    return None


def _scan(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"missing folder {folder}")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        name = _case_name(p)
        if name is not None:
            if name in found:
                raise DataError(f"case {name!r} appears twice in {folder}")
            found[name] = p
    return found


def find_cases(root: Path | str) -> list[tuple[str, Path, Path]]:
    """(name, image path, label path) of every case, sorted by name; DataError if unmatched."""
    root = Path(root)
    images, labels = _scan(root / "imagesTr"), _scan(root / "labelsTr")
    if not images:
        raise DataError(f"no .nii or .nii.gz image in {root / 'imagesTr'}")
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    if no_label or no_image:
        parts = []
        if no_label:
            parts.append(f"images without a label: {', '.join(no_label[:5])}")
        if no_image:
            parts.append(f"labels without an image: {', '.join(no_image[:5])}")
        raise DataError(f"imagesTr and labelsTr of {root} do not match ({'; '.join(parts)})")
    return [(n, images[n], labels[n]) for n in sorted(images)]


def _read(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))
        return np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for a damaged file
        raise DataError(f"cannot read NIfTI file {path}: {exc}") from None


def resample_to(volume: np.ndarray, shape: tuple[int, int, int], *, order: int) -> np.ndarray:
    """`volume` resampled onto `shape` voxels (order 1: linear, 0: nearest)."""
    factors = [t / s for t, s in zip(shape, volume.shape)]
    out: np.ndarray = ndimage.zoom(volume, factors, order=order, mode="nearest", grid_mode=True)
    if out.shape != tuple(shape):  # zoom rounds; pad or crop the odd voxel
        fixed = np.zeros(shape, dtype=out.dtype)
        sl = tuple(slice(0, min(a, b)) for a, b in zip(out.shape, shape))
        fixed[sl] = out[sl]
        out = fixed
    return out


def normalise_intensity(volume: np.ndarray, mode: str, window: tuple[float, float] = (40.0, 400.0)) -> np.ndarray:
    """Map intensities to [0, 1]: a CT (level, width) window, or a clipped per-volume z-score."""
    if mode == "ct":
        level, width = window
        return np.clip((volume - (level - width / 2)) / width, 0.0, 1.0).astype(np.float32)
    if mode == "zscore":
        std = float(volume.std())
        z = (volume - float(volume.mean())) / (std if std > 0 else 1.0)
        return np.clip((z + 3.0) / 6.0, 0.0, 1.0).astype(np.float32)
    raise DataError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {mode!r}")


def load_decathlon(
    root: Path | str,
    *,
    shape: tuple[int, int, int] = (32, 32, 32),
    label_value: int | None = None,
    normalisation: str = "ct",
    window: tuple[float, float] = (40.0, 400.0),
    modality: int = 0,
    max_cases: int | None = None,
) -> Dataset:
    """Every case of `root` as a two-channel segmentation data set on a `shape` grid.

    NIfTI arrays are (x, y, z); they are transposed to (z, y, x) = (D, H, W),
    the axis order of the phantoms, so the guidance slice is an axial one.
    `label_value` None keeps every non-zero label as foreground.
    """
    if normalisation not in NORMALISATIONS:
        raise DataError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {normalisation!r}")
    cases = find_cases(root)
    if max_cases is not None:
        cases = cases[:max_cases]
    vols, masks = [], []
    for name, img_path, lab_path in cases:
        img, lab = _read(img_path), _read(lab_path)
        if img.ndim == 4:
            if not 0 <= modality < img.shape[3]:
                raise DataError(f"{img_path} has {img.shape[3]} modalities, modality {modality} asked")
            img = img[..., modality]
        if lab.ndim == 4 and lab.shape[3] == 1:
            lab = lab[..., 0]
        if img.ndim != 3 or lab.ndim != 3:
            raise DataError(f"case {name!r}: image and label must be 3-D, got {img.shape} and {lab.shape}")
        if img.shape != lab.shape:
            raise DataError(f"case {name!r}: image {img.shape} and label {lab.shape} have different grids")
        if not (np.isfinite(img).all() and np.isfinite(lab).all()):
            raise DataError(f"case {name!r} holds NaN or infinite values")
        img, lab = img.transpose(2, 1, 0), lab.transpose(2, 1, 0)
        fg = (lab == label_value) if label_value is not None else (lab > 0)
        vol = normalise_intensity(resample_to(img, shape, order=1), normalisation, window)
        vols.append(vol)
        masks.append(resample_to(fg.astype(np.float32), shape, order=0) > 0.5)
    return segmentation_dataset(vols, masks)
