"""Segmentation samples with one expert-labelled slice as a second input channel.

Why: as in Léger et al., the expert draws the organ on one slice and the
network segments the rest of the volume. So a sample's input has two
channels, the image and the mask restricted to the organ's central axial
slice (zeros elsewhere), and the target is the whole mask. Building that
second channel here, once, keeps it part of the sample's canonical bytes: the
same scan with a different guidance slice is a different sample.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from tclearn.data.dataset import Dataset
from tclearn.errors import DataError

__all__ = ["central_slice_index", "guidance_channel", "segmentation_dataset"]


def central_slice_index(mask: np.ndarray) -> int | None:
    """Index (axis 0) of the organ's central non-empty slice, or None for an empty mask."""
    per_slice = mask.reshape(mask.shape[0], -1).sum(axis=1)
    filled = np.flatnonzero(per_slice)
    if filled.size == 0:
        return None
    middle = (int(filled[0]) + int(filled[-1])) // 2
    # The middle of the extent is filled for any organ without holes between slices;
    # otherwise take the nearest filled slice (lowest index on a tie).
    return int(filled[np.argmin(np.abs(filled - middle))])


def guidance_channel(mask: np.ndarray) -> np.ndarray:
    """The mask on its central slice, zeros elsewhere (float32, same shape)."""
    out = np.zeros(mask.shape, dtype=np.float32)
    k = central_slice_index(mask)
    if k is not None:
        out[k] = mask[k] > 0
    return out


def segmentation_dataset(volumes: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> Dataset:
    """Samples x = [image, guidance] ([N, 2, D, H, W] float32), y = mask ([N, 1, D, H, W] uint8)."""
    if len(volumes) != len(masks):
        raise DataError(f"{len(volumes)} volumes but {len(masks)} masks")
    if not volumes:
        raise DataError("no volume to build a data set from")
    shape = np.shape(volumes[0])
    xs, ys = [], []
    for v, m in zip(volumes, masks):
        if np.shape(v) != shape or np.shape(m) != shape or len(shape) != 3:
            raise DataError(f"every volume and mask must have the same 3-D shape, expected {shape}")
        m8 = (np.asarray(m) > 0).astype(np.uint8)
        xs.append(np.stack([np.asarray(v, dtype=np.float32), guidance_channel(m8)]))
        ys.append(m8[None])
    return Dataset(torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)))
