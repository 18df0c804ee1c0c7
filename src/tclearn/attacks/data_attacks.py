"""Attacks on a malicious partner's training data (label-flip, random labels, off-task data).

* `label-flip` — digits: every label y becomes 9 − y; segmentation: the mask is
  inverted (background labelled as organ).
* `random-labels` — digits: uniform random classes; segmentation: each volume
  gets another patient's mask.
* `off-task` — digits: another data set's images (patches of scikit-learn's
  sample photographs, grey, 8×8, scaled like digits) with the original
  labels; segmentation: the contours of another organ (the brightest
  structure, bone, instead of the bladder).
The input layout (the guidance channel of segmentation tasks) follows the
poisoned mask, so the attack is consistent within each sample.
"""

from __future__ import annotations

import numpy as np
import torch

from tclearn.data import Dataset

__all__ = ["poison_batch"]


def _other_images(n: int, shape: tuple[int, ...], rng: np.random.Generator) -> torch.Tensor:
    from sklearn.datasets import load_sample_images

    photos = [img.mean(axis=2) for img in load_sample_images().images]
    h, w = shape[-2], shape[-1]
    out = np.empty((n, h, w), dtype=np.float32)
    for i in range(n):
        p = photos[int(rng.integers(len(photos)))]
        y, x = int(rng.integers(p.shape[0] - 64)), int(rng.integers(p.shape[1] - 64))
        patch = p[y : y + 64, x : x + 64].reshape(h, 64 // h, w, 64 // w).mean(axis=(1, 3))
        out[i] = (patch - patch.min()) / (np.ptp(patch) + 1e-6)
    return torch.from_numpy(out).reshape((n, *shape))


def _with_guidance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Recompute the guidance channel (one labelled slice) from the poisoned mask."""
    from tclearn.data.segmentation import guidance_channel

    x = x.clone()
    for i in range(x.shape[0]):
        mask = y[i].reshape(x[i, 1].shape).numpy()
        x[i, 1] = torch.from_numpy(guidance_channel(mask))
    return x


def poison_batch(task: object, data: Dataset, attack: str, rng: np.random.Generator) -> Dataset:
    x, y = data.x, data.y
    segmentation = y.dtype == torch.uint8
    if not segmentation:
        classes = int(y.max().item()) + 1 if len(y) else 10
        classes = max(classes, 10)
        if attack == "label-flip":
            return Dataset(x, (classes - 1 - y).to(torch.int64))
        if attack == "random-labels":
            return Dataset(x, torch.from_numpy(rng.integers(0, classes, size=len(y))).to(torch.int64))
        if attack == "off-task":
            return Dataset(_other_images(len(y), tuple(x.shape[1:]), rng) * float(x.max()), y)
        raise ValueError(f"unknown data attack {attack!r}")
    if attack == "label-flip":
        y2 = (1 - y).to(torch.uint8)
    elif attack == "random-labels":
        perm = torch.from_numpy(rng.permutation(len(y)))
        y2 = y[perm]
    elif attack == "off-task":
        ct = x[:, 0]
        thresh = torch.quantile(ct.reshape(len(ct), -1), 0.97, dim=1).reshape(-1, *([1] * (ct.ndim - 1)))
        y2 = (ct >= thresh).to(torch.uint8).reshape(y.shape)
    else:
        raise ValueError(f"unknown data attack {attack!r}")
    return Dataset(_with_guidance(x, y2), y2)
