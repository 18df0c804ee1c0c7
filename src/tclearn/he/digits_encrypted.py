"""Encrypted inference of `HEDigitsNet`: the weights encrypted, the member's images plain.

Theory of operation. TenSEAL's MNIST tutorial encrypts the *image* (im2col
encoding, `enc_x.conv2d_im2col(plain_kernel)`) and keeps the weights plain.
Here it is the other way round: the supervisor encrypts the *weights*, the
member's image stays plain. TenSEAL multiplies a ciphertext by a plain vector
slot-wise and, with `enc_matmul_plain`, sums a ciphertext's blocks, so the
whole network is laid out in slots so that it needs only those two:

* the plain image is unrolled by im2col (numpy) into 9 vectors X_q, one per
  kernel tap q: X_q[j, r] = patch_s[p, q] for the conv output j = (c, p);
* the supervisor encrypted the kernel the same way, E_q[j, r] = K[c, q], so
  conv = Σ_q E_q ⊙ X_q + B (9 plain multiplications, no rotation, depth 1);
* x² (depth 2); ⊙ the encrypted linear layer laid out as W[k, j] (depth 3);
* `enc_matmul_plain(ones, rows)` sums the J blocks: logits[k, s] (depth 4).

Slot j·R + r holds conv output j for row r = (class k, sample s): the conv
output is produced already repeated for every class, so no rotation is spent
copying it. A ciphertext holds R = classes × samples rows of J = 64 (C·P
rounded up to a power of two) blocks; a layer whose J × 10 exceeds the slots
is split into groups of classes, one ciphertext per group (`DigitsLayout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tenseal as ts

from tclearn.data.digits import DIGITS_CLASSES
from tclearn.he.context import load_vector
from tclearn.he.digits_net import IMAGE, KERNEL, PADDING, STRIDE, DigitsWeights
from tclearn.he.errors import HEError, MalformedCiphertext

__all__ = ["DigitsLayout", "EncryptedDigits", "encrypt_digits", "digits_predict", "decode_digits", "im2col",
           "DIGITS_DEPTH", "result_count"]

DIGITS_DEPTH = 4  # rescales the honest circuit spends: conv (plain ×), x², × W, block sum
SIDE = (IMAGE + 2 * PADDING - KERNEL) // STRIDE + 1
WINDOWS = SIDE * SIDE


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class DigitsLayout:
    """Where every value sits in the slots; shared by the supervisor and the members."""

    channels: int
    width: int  # J: conv outputs per sample, rounded up to a power of two
    per_group: int  # classes per ciphertext
    per_ct: int  # samples per ciphertext
    slots: int

    @classmethod
    def plan(cls, channels: int, slots: int) -> "DigitsLayout":
        width = _pow2(channels * WINDOWS)
        if width > slots:
            raise HEError(f"a conv output of {width} values does not fit {slots} slots")
        if width * DIGITS_CLASSES <= slots:
            return cls(channels, width, DIGITS_CLASSES, slots // (width * DIGITS_CLASSES), slots)
        return cls(channels, width, slots // width, 1, slots)

    @property
    def rows(self) -> int:
        return self.per_group * self.per_ct

    @property
    def groups(self) -> list[list[int]]:
        """Classes of each ciphertext; -1 pads the last group (zero weights)."""
        out = []
        for start in range(0, DIGITS_CLASSES, self.per_group):
            g = list(range(start, min(start + self.per_group, DIGITS_CLASSES)))
            out.append(g + [-1] * (self.per_group - len(g)))
        return out

    def spread(self, per_j: np.ndarray) -> np.ndarray:
        """[J'] → slots: value of conv output j repeated over every row r."""
        col = np.zeros(self.width)
        col[:per_j.shape[0]] = per_j
        return np.repeat(col, self.rows)

    def result_size(self) -> int:
        return self.rows


def im2col(images: np.ndarray) -> np.ndarray:
    """[n, 8, 8] → [n, P, 9] patches in torch's order (window row-major, tap (kh, kw) row-major)."""
    padded = np.pad(images, ((0, 0), (PADDING, PADDING), (PADDING, PADDING)))
    cols = [padded[:, i * STRIDE:i * STRIDE + KERNEL, j * STRIDE:j * STRIDE + KERNEL].reshape(len(images), -1)
            for i in range(SIDE) for j in range(SIDE)]
    return np.stack(cols, axis=1)


@dataclass
class EncryptedDigits:
    """The encrypted network: 9 kernel taps, the conv bias, and per class group the layer and its bias."""

    layout: DigitsLayout
    taps: list[ts.CKKSVector]
    conv_bias: ts.CKKSVector
    fc: list[ts.CKKSVector]
    fc_bias: list[ts.CKKSVector]

    def to_bytes(self) -> list[bytes]:
        return [v.serialize() for v in [*self.taps, self.conv_bias, *self.fc, *self.fc_bias]]

    @classmethod
    def from_bytes(cls, ctx: ts.Context, layout: DigitsLayout, blobs: Sequence[bytes]) -> "EncryptedDigits":
        n_groups = len(layout.groups)
        if len(blobs) != KERNEL * KERNEL + 1 + 2 * n_groups:
            raise MalformedCiphertext("an encrypted digits model has 10 + 2 × groups ciphertexts")
        vecs = [load_vector(ctx, b) for b in blobs]
        taps, bias = vecs[:9], vecs[9]
        return cls(layout, taps, bias, vecs[10:10 + n_groups], vecs[10 + n_groups:])


def encrypt_digits(ctx: ts.Context, weights: DigitsWeights) -> EncryptedDigits:
    """The supervisor's side: lay the weights out (see the module docstring) and encrypt them."""
    layout = DigitsLayout.plan(weights.channels, ctx.seal_context().data.first_context_data().parms()
                               .poly_modulus_degree() // 2)
    per_c = WINDOWS
    taps = [ts.ckks_vector(ctx, layout.spread(np.repeat(weights.kernel[:, q], per_c)).tolist())
            for q in range(KERNEL * KERNEL)]
    bias = ts.ckks_vector(ctx, layout.spread(np.repeat(weights.conv_bias, per_c)).tolist())
    fc, fc_bias = [], []
    n_j = weights.fc.shape[1]
    for group in layout.groups:
        w = np.zeros((layout.width, layout.per_group, layout.per_ct))
        b = np.zeros((layout.per_group, layout.per_ct))
        for k, cls_ in enumerate(group):
            if cls_ >= 0:
                w[:n_j, k, :] = weights.fc[cls_][:, None]
                b[k, :] = weights.fc_bias[cls_]
        fc.append(ts.ckks_vector(ctx, w.reshape(-1).tolist()))
        fc_bias.append(ts.ckks_vector(ctx, b.reshape(-1).tolist()))
    return EncryptedDigits(layout, taps, bias, fc, fc_bias)


def _tap_vectors(layout: DigitsLayout, patches: np.ndarray) -> list[list[float]]:
    """Plain X_q for up to `per_ct` images: X_q[j = (c, p), (k, s)] = patches[s, p, q]."""
    n = patches.shape[0]
    out = []
    for q in range(KERNEL * KERNEL):
        x = np.zeros((layout.width, layout.per_group, layout.per_ct))
        per_jp = patches[:, :, q].T  # [P, n]
        for c in range(layout.channels):
            x[c * WINDOWS:(c + 1) * WINDOWS, :, :n] = per_jp[:, None, :]
        out.append(x.reshape(-1).tolist())
    return out


def digits_predict(model: EncryptedDigits, images: np.ndarray) -> list[ts.CKKSVector]:
    """The member's side: encrypted logits for its plain images, `per_ct` images × groups per ciphertext.

    Returns chunk-major, group-minor: [chunk0 group0, chunk0 group1, …, chunk1 group0, …].
    """
    images = np.asarray(images, dtype=np.float64).reshape(-1, IMAGE, IMAGE)
    layout = model.layout
    ones = [1.0] * layout.width
    out = []
    for start in range(0, len(images), layout.per_ct):
        xs = _tap_vectors(layout, im2col(images[start:start + layout.per_ct]))
        h = model.taps[0] * xs[0]
        for tap, x in zip(model.taps[1:], xs[1:]):
            h += tap * x
        h += model.conv_bias
        h.square_()
        for w, b in zip(model.fc, model.fc_bias):
            out.append((h * w).enc_matmul_plain(ones, layout.rows) + b)
    return out


def decode_digits(layout: DigitsLayout, values: Sequence[np.ndarray], n_samples: int) -> np.ndarray:
    """Decrypted ciphertexts (in `digits_predict` order) → logits [n, 10] of the stated samples only."""
    logits = np.zeros((n_samples, DIGITS_CLASSES))
    groups = layout.groups
    for i, vals in enumerate(values):
        chunk, g = divmod(i, len(groups))
        block = np.asarray(vals).reshape(layout.per_group, layout.per_ct)
        first = chunk * layout.per_ct
        n = min(layout.per_ct, n_samples - first)
        for k, cls_ in enumerate(groups[g]):
            if cls_ >= 0:
                logits[first:first + n, cls_] = block[k, :n]
    return logits


def result_count(layout: DigitsLayout, n_samples: int) -> int:
    """Ciphertexts an honest result for `n_samples` images holds."""
    return -(-n_samples // layout.per_ct) * len(layout.groups)
