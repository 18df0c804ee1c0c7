"""A member's own data as NumPy arrays: one `.npz` file, or a folder of them.

Each file holds two arrays, `x` (model inputs, `[N, C, ...]`, any real dtype,
read as float32) and `y` (integer class labels `[N]`, read as int64, or binary
masks `[N, 1, ...]`, read as uint8). A folder's files are read in name order
and concatenated. Loaded with `allow_pickle=False`: an `.npz` holding Python
objects is refused, never unpickled. Every failure is a `DataError` that names
the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from tclearn.data.dataset import Dataset, concat_datasets
from tclearn.errors import DataError

__all__ = ["load_npz", "npz_files", "save_npz"]


def npz_files(path: Path | str) -> list[Path]:
    """`path` itself if it is a file, else the `.npz` files of the folder, by name; DataError if none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"no data at {path} (neither a .npz file nor a folder)")
    files = sorted(p for p in path.iterdir() if p.suffix == ".npz" and p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"no .npz file in {path}")
    return files


def _read_one(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files or "y" not in arrays.files:
                raise DataError(f"{path} must hold arrays 'x' and 'y', it holds {sorted(arrays.files)}")
            x, y = arrays["x"], arrays["y"]
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:  # damaged, truncated, object arrays
        raise DataError(f"cannot read {path}: {exc}") from None
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{path}: x must be a real-valued array, got {x.dtype}")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataError(f"{path}: y must hold integer labels or a binary mask, got {y.dtype}")
    if x.ndim < 2 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise DataError(f"{path}: x {x.shape} and y {y.shape} do not hold the same samples")
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if y.ndim == 1:
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    else:
        if y.size and (int(y.min()) < 0 or int(y.max()) > 1):
            raise DataError(f"{path}: a mask y must hold only 0 and 1")
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.uint8))
    try:
        return Dataset(xt, yt)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


def load_npz(path: Path | str) -> Dataset:
    """The samples of one `.npz` file or of every `.npz` file in a folder (in name order)."""
    parts = [_read_one(p) for p in npz_files(path)]
    try:
        return concat_datasets(parts)
    except DataError as exc:
        raise DataError(f"the .npz files of {path} do not agree: {exc}") from None


def save_npz(data: Dataset, path: Path | str) -> Path:
    """Write `data` as one `.npz` file (`x`, `y`), the format `load_npz` reads."""
    path = Path(path)
    np.savez_compressed(path, x=data.x.numpy(), y=data.y.numpy())
    return path
