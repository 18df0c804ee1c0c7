"""The `digits` network that CKKS can evaluate with its weights encrypted.

Why this shape: CKKS evaluates additions and multiplications only, so no ReLU
and no max-pooling; the activation is x² (one multiplication). One
convolution, as the first layer, keeps the input plain (the member's own
image) and the circuit shallow: conv 3×3 stride 2 pad 1 (4 channels, 4×4
windows) → x² → linear (64 → 10). Depth 4 with the encrypted weights (see
`tclearn.he.digits_encrypted`). Trained on the same split as the level-A
`DigitsCNN` (`DigitsTask.coalition_data`), its plaintext accuracy is reported
next to the CNN's by `bench/he.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tclearn.data.dataset import Dataset
from tclearn.data.digits import DIGITS_CLASSES

__all__ = ["HEDigitsNet", "DigitsWeights", "train_he_digits", "KERNEL", "STRIDE", "PADDING", "IMAGE"]

KERNEL, STRIDE, PADDING, IMAGE = 3, 2, 1, 8


class HEDigitsNet(nn.Module):
    """conv 3×3/2 (C channels) → x² → linear (C·16 → 10)."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        side = (IMAGE + 2 * PADDING - KERNEL) // STRIDE + 1
        self.conv = nn.Conv2d(1, channels, KERNEL, stride=STRIDE, padding=PADDING)
        self.fc = nn.Linear(channels * side * side, DIGITS_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        out: torch.Tensor = self.fc((h * h).flatten(1))
        return out


@dataclass(frozen=True)
class DigitsWeights:
    """The network's weights as arrays: kernel [C, 9], conv bias [C], fc [10, C·P], fc bias [10]."""

    kernel: np.ndarray
    conv_bias: np.ndarray
    fc: np.ndarray
    fc_bias: np.ndarray

    @classmethod
    def of(cls, net: HEDigitsNet) -> "DigitsWeights":
        k = net.conv.weight.detach().double().numpy()
        assert net.conv.bias is not None
        return cls(k.reshape(k.shape[0], -1), net.conv.bias.detach().double().numpy(),
                   net.fc.weight.detach().double().numpy(), net.fc.bias.detach().double().numpy())

    @property
    def channels(self) -> int:
        return int(self.kernel.shape[0])

    def protected(self) -> dict[str, np.ndarray]:
        """Every weight tensor by name (what a decrypted result must not reveal)."""
        return {"kernel": self.kernel, "conv_bias": self.conv_bias, "fc": self.fc, "fc_bias": self.fc_bias}


def train_he_digits(train: Dataset, *, channels: int = 4, epochs: int = 60, lr: float = 3e-3,
                    batch: int = 32, seed: int = 0) -> HEDigitsNet:
    """Adam on mini-batches, seeded (generator for the model and the order both)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = HEDigitsNet(channels)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n = len(train.y)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(net(train.x[idx]), train.y[idx])
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    net.eval()
    return net
