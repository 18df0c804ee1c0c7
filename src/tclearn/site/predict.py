"""`tclearn predict --block N INPUT OUTPUT`: a block's model, in the member's hands, applied to its own input.

* digits (a classifier): INPUT is a PNG (any size, read as grey levels, ink
  bright on a dark ground as in scikit-learn's digits; resized to 8×8) or a
  `.npy` array of one image `[8, 8]` / `[1, 8, 8]` or many `[N, 8, 8]` /
  `[N, 1, 8, 8]` with values in [0, 1]. OUTPUT gets JSON: the block, the
  model hash and one class per image.
* bladder / nifti (slice-guided segmentation): INPUT is a NIfTI volume and
  `--slice` a NIfTI label volume on the same grid in which the expert drew the
  organ on (at least) one axial slice — the guidance of Léger et al. The
  volume is read onto the model's grid exactly as training data are
  (`tclearn.data.nifti`), the mask predicted, resampled back onto the input's
  grid (nearest) and written to OUTPUT as a NIfTI with the input's affine.

Bad input (unreadable file, wrong shape, no labelled slice) is one
`DataError` line; OUTPUT is written only once the prediction is done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tclearn.data.nifti import normalise_intensity, resample_to
from tclearn.data.segmentation import guidance_channel
from tclearn.errors import DataError
from tclearn.learning.serialize import state_from_bytes
from tclearn.learning.tasks import Task

__all__ = ["predict_digits", "predict_volume", "read_digit_images"]

DIGIT_SIDE = 8
MAX_INPUT_BYTES = 1 << 30


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_INPUT_BYTES:
        raise DataError(f"{path} is over {MAX_INPUT_BYTES} bytes")


def read_digit_images(path: Path) -> np.ndarray:
    """Images `[N, 1, 8, 8]` float32 in [0, 1] from a PNG or a `.npy` array."""
    _check_size(path)
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path} as a .npy array: {exc}") from None
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise DataError(f"{path}: a real-valued array is needed, got {arr.dtype}")
        arr = arr.astype(np.float32)
        shapes = {(8, 8): (1, 1, 8, 8), (1, 8, 8): (1, 1, 8, 8)}
        if arr.shape in shapes:
            arr = arr.reshape(shapes[arr.shape])
        elif arr.ndim == 3 and arr.shape[1:] == (8, 8):
            arr = arr[:, None]
        elif not (arr.ndim == 4 and arr.shape[1:] == (1, 8, 8)):
            raise DataError(f"{path}: digits are [8, 8], [1, 8, 8], [N, 8, 8] or [N, 1, 8, 8] arrays, got {arr.shape}")
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                grey = img.convert("L").resize((DIGIT_SIDE, DIGIT_SIDE), Image.Resampling.BILINEAR)
                arr = (np.asarray(grey, dtype=np.float32) / 255.0).reshape(1, 1, DIGIT_SIDE, DIGIT_SIDE)
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"cannot read {path} as an image: {exc}") from None
    if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(f"{path}: pixel values must lie in [0, 1]")
    return np.ascontiguousarray(arr)


def _model(task: Task, model_bytes: bytes) -> torch.nn.Module:
    model = task.model_from_state(state_from_bytes(model_bytes, require_canonical=False))
    return model.eval()


def predict_digits(task: Task, model_bytes: bytes, images: np.ndarray) -> list[int]:
    """One class per image."""
    with torch.no_grad():
        logits = _model(task, model_bytes)(torch.from_numpy(images))
    return [int(c) for c in logits.argmax(dim=1)]


def _read_volume(path: Path) -> tuple[np.ndarray, Any]:
    import nibabel as nib

    _check_size(path)
    try:
        image: Any = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for a damaged file
        raise DataError(f"cannot read NIfTI file {path}: {exc}") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{path}: a 3-D volume is needed, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise DataError(f"{path} holds NaN or infinite values")
    return data, image.affine


def predict_volume(task: Any, model_bytes: bytes, volume_path: Path, slice_path: Path) -> tuple[np.ndarray, Any]:
    """(mask on the input's grid (x, y, z) as uint8, the input's affine)."""
    volume, affine = _read_volume(volume_path)
    labels, _ = _read_volume(slice_path)
    if labels.shape != volume.shape:
        raise DataError(f"{slice_path} {labels.shape} is not on the grid of {volume_path} {volume.shape}")
    label_value = getattr(task, "label_value", None)
    fg = (labels == label_value) if label_value is not None else (labels > 0)
    if not fg.any():
        raise DataError(f"{slice_path} labels no voxel: draw the organ on one axial slice")
    shape = tuple(task.shape)
    img = volume.transpose(2, 1, 0)  # (x, y, z) -> (D, H, W), as training data are read
    vol = normalise_intensity(resample_to(img, shape, order=1), getattr(task, "normalisation", "ct"),
                              getattr(task, "window", (40.0, 400.0)))
    mask = resample_to(fg.transpose(2, 1, 0).astype(np.float32), shape, order=0) > 0.5
    if not mask.any():
        raise DataError(f"the labelled slice of {slice_path} vanishes on the model's {shape} grid")
    x = np.stack([vol, guidance_channel(mask.astype(np.uint8))])[None].astype(np.float32)
    with torch.no_grad():
        out = task.predict(_model(task, model_bytes)(torch.from_numpy(x)))
    pred = out[0, 0].numpy().astype(np.float32)
    back = resample_to(pred, img.shape, order=0) > 0.5
    return back.transpose(2, 1, 0).astype(np.uint8), affine


def write_json(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)


def write_mask(path: Path, mask: np.ndarray, affine: Any) -> None:
    import nibabel as nib

    name = path.name
    tmp = path.with_name(f".{name[: -len('.nii.gz')] if name.endswith('.nii.gz') else path.stem}.{os.getpid()}"
                         + (".nii.gz" if name.endswith(".nii.gz") else ".nii"))
    nib.save(nib.Nifti1Image(mask, affine), str(tmp))  # type: ignore[no-untyped-call]
    os.replace(tmp, path)
