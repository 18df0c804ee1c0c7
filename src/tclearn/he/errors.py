"""Errors of the homomorphic-encryption level (C, part 2): one subtree under `TCLearnError`.

A refusal by the supervisor is journaled before `DecryptionRefused` is raised;
a peer's malformed ciphertext is `MalformedCiphertext` (its fault, not ours).
"""

from __future__ import annotations

from tclearn.errors import TCLearnError

__all__ = ["HEError", "DecryptionRefused", "MalformedCiphertext", "SecretKeyLeak", "BadRequest"]


class HEError(TCLearnError):
    """Raised for a homomorphic-encryption problem that no subclass describes."""


class DecryptionRefused(HEError):
    """Raised when the supervisor refuses a decryption or refresh request (journaled first)."""


class MalformedCiphertext(HEError):
    """Raised when a peer's ciphertext is too large, not CKKS, or not made under this context."""


class SecretKeyLeak(HEError):
    """Raised when a context meant for a member holds the secret key."""


class BadRequest(HEError):
    """Raised when a sealed request is too large, not canonical CBOR, or not signed by the member it names."""
