"""The member's side holds no secret key: it can compute on the model, never decrypt it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tenseal as ts

from tclearn.he.context import load_public_context, load_vector
from tclearn.he.errors import MalformedCiphertext, SecretKeyLeak
from tclearn.he.logreg_encrypted import encrypt_weights
from tclearn.he.member import HEMember


def test_member_context_has_no_secret_key_and_cannot_decrypt(secret_ctx: Any, public_ctx: Any) -> None:
    assert secret_ctx.has_secret_key()
    assert not public_ctx.has_secret_key() and public_ctx.is_public()
    model = load_vector(public_ctx, encrypt_weights(secret_ctx, np.arange(32.0) / 10).serialize())
    with pytest.raises(ValueError, match="secret_key"):
        model.decrypt()
    doubled = model * 2.0  # but it can compute on it
    assert np.allclose(ts.ckks_vector_from(secret_ctx, doubled.serialize()).decrypt(), np.arange(32.0) / 5,
                       atol=1e-3)


def test_a_context_with_the_secret_key_is_refused_for_a_member(secret_ctx: Any) -> None:
    with pytest.raises(SecretKeyLeak):
        HEMember("hospital-a", secret_ctx)
    small = ts.context(ts.SCHEME_TYPE.CKKS, 4096, coeff_mod_bit_sizes=[40, 20, 40])
    with pytest.raises(SecretKeyLeak):
        load_public_context(small.serialize(save_secret_key=True))


def test_garbage_is_not_a_context_or_a_ciphertext(public_ctx: Any) -> None:
    with pytest.raises(MalformedCiphertext):
        load_public_context(b"\x00not a context")
    with pytest.raises(MalformedCiphertext):
        load_vector(public_ctx, b"\x00" * 100)
    with pytest.raises(MalformedCiphertext):
        load_vector(public_ctx, b"\x00" * (3 * 1024 * 1024))
