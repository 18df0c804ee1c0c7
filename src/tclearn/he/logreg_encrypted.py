"""Encrypted logistic regression: predictions and training on an encrypted weight vector.

Theory of operation. The weight vector w (32 slots, see `tclearn.he.logreg`)
is encrypted by the supervisor; a fresh CKKS encryption of 32 values repeats
them over all 4096 slots, which TenSEAL's `matmul` (the diagonal method of
Halevi and Shoup, encrypted vector × plain matrix) needs.

* Prediction: z = Xw is `enc_w.matmul(Xᵀ)`: the member's plain samples are
  the matrix, the model the vector. Depth 1, 32 rotations per ≤ 4096 samples
  (one sample: `enc_matmul_plain`, 5 rotations).
* Training, one epoch (full batch), per chunk of ≤ 128 samples:
  1. z_rep = `enc_w.matmul(A)`, A[f, 32i + f'] = x_i[f]: z_i repeated over
     sample i's 32-slot block (depth 1);
  2. u = z ⊙ c1·X + (z ⊙ c3·X) ⊙ z² + (c0 − y)·X, slot 32i + f holding
     (σ(z_i) − y_i)·x_i[f] (depth 3; the y term is plain, the member's own);
  3. `u.enc_matmul_plain(lr/N · ones, 32)` sums the 128 blocks (depth 4).
     The blocks fill the whole ring, so the cyclic sum leaves the gradient
     repeated in every block: no slot holds a partial sum over a subset of
     samples, and w − g stays repeated like a fresh encryption.
* The four levels are spent: the supervisor refreshes the ciphertext
  (`tclearn.he.refresh`), the member masking it first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tenseal as ts

from tclearn.he.logreg import SIGMOID3, WIDTH, augment

__all__ = ["encrypt_weights", "lr_predict", "lr_gradient_step", "Mask", "mask_weights", "unmask_weights",
           "LR_PREDICT_DEPTH", "LR_EPOCH_DEPTH", "MASK_BOUND"]

LR_PREDICT_DEPTH = 1
LR_EPOCH_DEPTH = 4
# Uniform mask in [-MASK_BOUND, MASK_BOUND]: 2^8, under the ±2^9 a decrypted value may reach (first
# prime 40 bits, scale 2^30, see `tclearn.he.context`); a weight of magnitude |w| shifts the masked
# value's distribution by |w| / (2·MASK_BOUND) in statistical distance (|w| ≈ 0.2 here: ≈ 4e-4).
MASK_BOUND = 256.0


def encrypt_weights(ctx: ts.Context, w: np.ndarray) -> ts.CKKSVector:
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    if w.shape != (WIDTH,):
        raise ValueError(f"a weight vector has {WIDTH} slots")
    return ts.ckks_vector(ctx, w.tolist())


def lr_predict(enc_w: ts.CKKSVector, x: np.ndarray, per_ct: int = 4096) -> list[ts.CKKSVector]:
    """Encrypted logits of the member's plain samples, ≤ `per_ct` per ciphertext.

    One sample alone takes `enc_matmul_plain` (the weights as a 32 × 1 encrypted
    matrix, the sample as the plain vector: 5 rotations, 17× faster than
    `matmul`'s 32 diagonals); the result has the same size (1) and level.
    """
    xa = augment(x)
    if len(xa) == 1:
        return [enc_w.enc_matmul_plain(xa[0].tolist(), 1)]
    return [enc_w.matmul(xa[i:i + per_ct].T.tolist()) for i in range(0, len(xa), per_ct)]


def _chunk_gradient(enc_w: ts.CKKSVector, xa: np.ndarray, y: np.ndarray, scale: float, blocks: int) -> ts.CKKSVector:
    n = len(xa)
    c0, c1, _, c3 = SIGMOID3
    a = np.zeros((WIDTH, blocks, WIDTH))
    a[:, :n, :] = xa.T[:, :, None]  # A[f, i, f'] = x_i[f]
    layout = np.zeros((blocks, WIDTH))
    layout[:n] = xa
    flat = layout.reshape(-1)
    y_term = np.zeros((blocks, WIDTH))
    y_term[:n] = (c0 - y)[:, None] * xa
    z = enc_w.matmul(a.reshape(WIDTH, -1).tolist())
    u = z * (c1 * flat).tolist()
    cube = (z * (c3 * flat).tolist()) * z.square()
    u = u + cube + y_term.reshape(-1).tolist()
    return u.enc_matmul_plain([scale] * blocks, WIDTH)


def lr_gradient_step(enc_w: ts.CKKSVector, x: np.ndarray, y: np.ndarray, lr: float,
                     n_total: int | None = None) -> ts.CKKSVector:
    """w − lr/N · Xᵀ(σ(Xw) − y), encrypted; the result has no level left (refresh it)."""
    xa = augment(x)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    slots = enc_w.context().seal_context().data.first_context_data().parms().poly_modulus_degree() // 2
    blocks = slots // WIDTH
    scale = lr / (n_total or len(xa))
    grad = None
    for i in range(0, len(xa), blocks):
        g = _chunk_gradient(enc_w, xa[i:i + blocks], y[i:i + blocks], scale, blocks)
        grad = g if grad is None else grad + g
    assert grad is not None
    return enc_w - grad


@dataclass(frozen=True)
class Mask:
    """The member's secret additive mask for one refresh."""

    values: np.ndarray


def mask_weights(ctx: ts.Context, enc_w: ts.CKKSVector, rng: np.random.Generator) -> tuple[ts.CKKSVector, Mask]:
    """enc(w) → enc(w + m), m uniform in ±MASK_BOUND, m encrypted under the public key (so repeated in all slots)."""
    m = rng.uniform(-MASK_BOUND, MASK_BOUND, WIDTH)
    return enc_w + ts.ckks_vector(ctx, m.tolist()), Mask(m)


def unmask_weights(ctx: ts.Context, refreshed: ts.CKKSVector, mask: Mask) -> ts.CKKSVector:
    """enc(w + m) (fresh) → enc(w), subtracting an encryption of m (repeated in all slots)."""
    return refreshed - ts.ckks_vector(ctx, mask.values.tolist())
