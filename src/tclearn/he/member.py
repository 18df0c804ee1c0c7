"""A member at level C: its own data, the encrypted model and the public context, nothing else.

Theory of operation. `HEMember` refuses a context with a secret key
(`load_public_context`), computes encrypted predictions and encrypted
training epochs locally, and talks to the supervisor through two calls
only: `decrypt` (a result, checked and journaled there) and `refresh` (a
masked ciphertext that ran out of depth).

Why a refresh teaches nobody anything. After an epoch the member holds
enc(w') with no level left. It draws a mask m uniformly in ±2^8 (its own
seeded generator) and sends enc(w' + m); the supervisor decrypts w' + m,
which, m being uniform and much wider than w', says little about w'
(statistical distance |w'| / 2^9 per weight, ≈ 4e-4 here; the mask cannot
be wider: a decrypted value must stay within ±2^9), hence about the
member's data; it returns a *fresh encryption* of w' + m, from which the member
subtracts enc(m). The member only ever sees ciphertexts, so it learns nothing
either; and because the answer is a ciphertext, refresh cannot serve as a
decryption oracle. (Not covered: CKKS decryption noise carries a little
information about the computation, Li–Micciancio 2021; no noise flooding here.)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tenseal as ts

from tclearn.he.authority import DecryptionRequest
from tclearn.he.context import load_public_context, load_vector
from tclearn.he.errors import SecretKeyLeak
from tclearn.he.digits_encrypted import DigitsLayout, EncryptedDigits, digits_predict
from tclearn.he.logreg_encrypted import lr_gradient_step, lr_predict, mask_weights, unmask_weights

__all__ = ["HEMember", "Refresher", "Decryptor"]

Refresher = Callable[[str, bytes], bytes]
Decryptor = Callable[[DecryptionRequest], np.ndarray]


class HEMember:
    """One member's encrypted computations (seeded: its masks come from `seed`)."""

    def __init__(self, member_id: str, public_context: bytes | ts.Context, seed: int = 0) -> None:
        self.member_id = member_id
        if isinstance(public_context, (bytes, bytearray)):
            self.ctx = load_public_context(bytes(public_context))
        elif public_context.has_secret_key():
            raise SecretKeyLeak("a member's context must not hold the secret key")
        else:
            self.ctx = public_context
        self._rng = np.random.default_rng(seed)

    def load_logreg(self, data: bytes) -> ts.CKKSVector:
        return load_vector(self.ctx, data)

    def load_digits(self, layout: DigitsLayout, blobs: list[bytes]) -> EncryptedDigits:
        return EncryptedDigits.from_bytes(self.ctx, layout, blobs)

    def predict_logreg(self, model_id: str, enc_w: ts.CKKSVector, x: np.ndarray, ref: str = "") -> DecryptionRequest:
        results = lr_predict(enc_w, x)
        return DecryptionRequest(self.member_id, model_id, len(x), tuple(r.serialize() for r in results), ref)

    def predict_digits(self, model_id: str, model: EncryptedDigits, images: np.ndarray,
                       ref: str = "") -> DecryptionRequest:
        results = digits_predict(model, images)
        return DecryptionRequest(self.member_id, model_id, len(images), tuple(r.serialize() for r in results), ref)

    def train_logreg(self, enc_w: ts.CKKSVector, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float,
                     refresh: Refresher) -> ts.CKKSVector:
        """`epochs` full-batch steps on the member's plain data; a masked refresh after each."""
        for _ in range(epochs):
            spent = lr_gradient_step(enc_w, x, y, lr)
            masked, mask = mask_weights(self.ctx, spent, self._rng)
            fresh = load_vector(self.ctx, refresh(self.member_id, masked.serialize()))
            enc_w = unmask_weights(self.ctx, fresh, mask)
        return enc_w
