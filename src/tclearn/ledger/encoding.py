"""Canonical encoding of ledger records: deterministic CBOR (RFC 8949 §4.2).

Why CBOR and cbor2: the records carry raw bytes (signatures, hashes) and
floats (scores, strengths); deterministic CBOR encodes both natively and
unambiguously (map keys sorted by their encoded bytes, shortest integer and
float forms), while canonical JSON needs a text detour for bytes and a number
formatting convention for floats. `cbor2` is the reference Python
implementation, maintained and with a C accelerator; `canonical=True` gives
the core deterministic encoding. We restrict values to a small set of types
(None, bool, int, float, str, bytes, list, dict with str keys) and refuse
anything else, so the same record encodes to the same bytes everywhere.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import cbor2

from tclearn.errors import EncodingError

__all__ = ["canonical_bytes", "decode", "sha256_hex"]

_MAX_DEPTH = 32


def _check(value: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise EncodingError("record nested too deeply")
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise EncodingError("NaN and infinite floats are not allowed in records")
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(f"map keys must be strings, got {type(key).__name__}")
            _check(item, depth + 1)
        return
    raise EncodingError(f"type {type(value).__name__} cannot be encoded in a record")


def canonical_bytes(value: Any) -> bytes:
    """Deterministic CBOR bytes of `value` (tuples encode as lists)."""
    _check(value)
    return cbor2.dumps(value, canonical=True)


def decode(data: bytes) -> Any:
    """Decode canonical CBOR; refuse bytes that are not the canonical form."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodingError("expected bytes")
    try:
        value = cbor2.loads(bytes(data))
    except Exception as exc:  # cbor2 raises several types for bad input
        raise EncodingError(f"not valid CBOR: {exc}") from None
    try:
        again = canonical_bytes(value)
    except EncodingError as exc:
        raise EncodingError(f"not a TCLearn record: {exc}") from None
    if again != bytes(data):
        raise EncodingError("bytes are not in canonical form")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
