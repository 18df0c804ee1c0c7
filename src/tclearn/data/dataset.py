"""A data set as two aligned tensors, with a canonical byte form per sample.

Why one small container instead of torch's `Dataset`/`DataLoader`: the
coalition needs to *name* samples (anonymised ids, the hash of the global test
set G) and to evaluate them in a canonical order on every node, and both need
each sample's bytes to be the same on every machine. So a `Dataset` is just
`x` (model inputs, float32, `[N, C, ...]`) and `y` (targets: int64 class labels
`[N]` or uint8 masks `[N, 1, ...]`) with the sample order fixed, and
`sample_bytes(i)` is the canonical encoding that ids and digests are built on.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from tclearn.errors import DataError

__all__ = ["Dataset", "concat_datasets", "SAMPLE_ENCODING_VERSION"]

SAMPLE_ENCODING_VERSION = b"tclearn-sample-v1\x00"

# Canonical little-endian numpy dtype per torch dtype we accept.
_DTYPES: dict[torch.dtype, str] = {
    torch.float32: "<f4",
    torch.int64: "<i8",
    torch.uint8: "|u1",
}


def _encode_tensor(t: torch.Tensor) -> bytes:
    code = _DTYPES[t.dtype]
    arr = np.ascontiguousarray(t.detach().cpu().numpy().astype(code, copy=False))
    header = code.encode() + struct.pack("<B", arr.ndim) + b"".join(struct.pack("<Q", s) for s in arr.shape)
    return struct.pack("<I", len(header)) + header + arr.tobytes()


@dataclass(frozen=True, eq=False)
class Dataset:
    """Aligned inputs `x` (float32) and targets `y`; sample i is `(x[i], y[i])`."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise DataError("a data set needs tensors x and y")
        if self.x.ndim < 2 or self.x.shape[0] != self.y.shape[0]:
            raise DataError(f"x {tuple(self.x.shape)} and y {tuple(self.y.shape)} do not hold the same samples")
        if self.x.dtype != torch.float32:
            raise DataError(f"x must be float32, got {self.x.dtype}")
        if self.y.dtype not in (torch.int64, torch.uint8):
            raise DataError(f"y must be int64 labels or uint8 masks, got {self.y.dtype}")
        if not bool(torch.isfinite(self.x).all()):
            raise DataError("x holds NaN or infinite values")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> "Dataset":
        """The samples at `indices`, in that order (a copy)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64).reshape(-1))
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            raise DataError(f"sample index out of range for a data set of {len(self)}")
        return Dataset(self.x[idx].clone(), self.y[idx].clone())

    def sample_bytes(self, i: int) -> bytes:
        """Canonical bytes of sample i: versioned, typed, shaped, little-endian."""
        return SAMPLE_ENCODING_VERSION + _encode_tensor(self.x[i]) + _encode_tensor(self.y[i])

    def digest(self) -> str:
        """Hex SHA-256 of every sample's canonical bytes, in order (e.g. the genesis hash of G)."""
        h = hashlib.sha256(b"tclearn-dataset-v1\x00" + struct.pack("<Q", len(self)))
        for i in range(len(self)):
            b = self.sample_bytes(i)
            h.update(struct.pack("<Q", len(b)))
            h.update(b)
        return h.hexdigest()

    def empty(self) -> "Dataset":
        """A data set with no sample but the same sample shapes and dtypes."""
        return Dataset(self.x[:0].clone(), self.y[:0].clone())


def concat_datasets(parts: Sequence[Dataset]) -> Dataset:
    """The samples of `parts`, one after another. Needs at least one part."""
    if not parts:
        raise DataError("nothing to concatenate")
    first = parts[0]
    for p in parts[1:]:
        if p.sample_shape != first.sample_shape or p.y.shape[1:] != first.y.shape[1:] or p.y.dtype != first.y.dtype:
            raise DataError("cannot concatenate data sets with different sample shapes or target types")
    return Dataset(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
