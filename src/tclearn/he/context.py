"""CKKS contexts: the supervisor keeps the secret key, members get a public context.

Theory of operation. One CKKS context (TenSEAL over Microsoft SEAL) serves the
coalition. The supervisor generates it with the secret, relinearisation and
Galois (rotation) keys; members receive `public_context_bytes`, serialised
with ``save_secret_key=False``: with it they can encrypt, add, multiply and
rotate, never decrypt. `load_public_context` refuses a context that holds a
secret key, so a member cannot be handed one by mistake.

Parameters: N = 8192 (4096 slots) and moduli 40-30-30-30-30-48 bits (218
bits, the most SEAL allows for 128-bit security at N = 8192): four levels of
multiplication at a scale of 2^30, the depth of both circuits here (the digits
network and one logistic-regression training epoch). The first prime (40
bits) leaves 2^10 of head-room above the scale: a decrypted value must stay
within ±512 (logits, a masked weight vector). The special prime (48 bits) is
8 bits above the largest data prime because the rotations of the last
(block-sum) step run at the lowest level, where key-switching noise is
about q0/P of the value: with 45-30-30-30-30-45 one training epoch erred by
5e-3 on weights of 0.02, with 40-…-48 by 9e-5 (digits logits: 2e-3 → 2e-4).

The public context carries every power-of-two Galois key: 65 MB once per
member (TenSEAL has no way to generate only the rotations a circuit uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import tenseal as ts

from tclearn.he.errors import MalformedCiphertext, SecretKeyLeak

__all__ = ["CKKSParams", "DEFAULT_PARAMS", "make_secret_context", "public_context_bytes", "load_public_context",
           "load_vector", "level_of", "MAX_CONTEXT_BYTES", "MAX_CIPHERTEXT_BYTES"]

MAX_CONTEXT_BYTES = 128 * 1024 * 1024
MAX_CIPHERTEXT_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class CKKSParams:
    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (40, 30, 30, 30, 30, 48)
    scale_bits: int = 30

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def depth(self) -> int:
        """Multiplications (rescales) a fresh ciphertext can take."""
        return len(self.coeff_mod_bit_sizes) - 2


DEFAULT_PARAMS = CKKSParams()


def make_secret_context(params: CKKSParams = DEFAULT_PARAMS, n_threads: int = 1) -> ts.Context:
    """The supervisor's context: secret, public, relinearisation and Galois keys."""
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes), n_threads=n_threads)
    ctx.global_scale = 2.0 ** params.scale_bits
    ctx.generate_galois_keys()
    return ctx


def public_context_bytes(ctx: ts.Context) -> bytes:
    """What a member receives: the context without the secret key."""
    data: bytes = ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=True,
                                save_relin_keys=True)
    return data


def load_public_context(data: bytes, n_threads: int = 1) -> ts.Context:
    """A member's context; SecretKeyLeak if it holds a secret key, MalformedCiphertext if not a context."""
    if len(data) > MAX_CONTEXT_BYTES:
        raise MalformedCiphertext(f"a context of {len(data)} bytes is over the {MAX_CONTEXT_BYTES}-byte limit")
    try:
        ctx = ts.context_from(data, n_threads=n_threads)
    except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError on bad protobuf
        raise MalformedCiphertext(f"not a TenSEAL context: {exc}") from None
    if ctx.has_secret_key() or not ctx.is_public():
        raise SecretKeyLeak("this context holds the secret key: a member must get the public context only")
    return ctx


def load_vector(ctx: ts.Context, data: bytes, max_bytes: int = MAX_CIPHERTEXT_BYTES) -> ts.CKKSVector:
    """A CKKS vector from a peer's bytes, bounded before any parsing."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > max_bytes:
        raise MalformedCiphertext(f"a ciphertext must be bytes of at most {max_bytes}")
    try:
        vec = ts.ckks_vector_from(ctx, bytes(data))
    except Exception as exc:
        raise MalformedCiphertext(f"not a CKKS vector of this context: {exc}") from None
    if len(vec.ciphertext()) != 1:
        raise MalformedCiphertext("a result must be one ciphertext")
    return vec


def level_of(vec: ts.CKKSVector) -> int:
    """Rescales left before the ciphertext reaches the last prime (0 = exhausted)."""
    ctx = vec.context().seal_context().data
    index: int = ctx.get_context_data(vec.ciphertext()[0].parms_id()).chain_index()
    return index
