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

import functools
import hashlib
import math
from typing import Any, Mapping, Sequence

import cbor2

from tclearn.errors import EncodingError
from tclearn.ledger.cbor_scan import scan

__all__ = [
    "canonical_bytes", "decode", "decode_map", "sha256_hex",
    "Layout", "encode_map", "encoded_array", "map_layout", "tagged",
]

_MAX_DEPTH = 32


_SCALARS = frozenset({type(None), bool, int, str, bytes})
_LEAVES = _SCALARS | {float}


def _check(value: Any, depth: int = 0) -> None:
    # Fast path on exact types (records hold nothing else); anything else,
    # subclasses included, goes through the general rule. Same verdicts and
    # messages as `_check_general`, which is the specification.
    if depth > _MAX_DEPTH:
        raise EncodingError("record nested too deeply")
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is float:
        if not math.isfinite(value):
            raise EncodingError("NaN and infinite floats are not allowed in records")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise EncodingError(f"map keys must be strings, got {type(key).__name__}")
            if depth >= _MAX_DEPTH or type(item) not in _LEAVES or (type(item) is float and not math.isfinite(item)):
                _check(item, depth + 1)
        return
    if kind is list or kind is tuple:
        for item in value:
            if depth >= _MAX_DEPTH or type(item) not in _LEAVES or (type(item) is float and not math.isfinite(item)):
                _check(item, depth + 1)
        return
    _check_general(value, depth)


def _check_general(value: Any, depth: int) -> None:
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
    return _dumps(value)


def _dumps(value: Any) -> bytes:
    try:
        return cbor2.dumps(value, canonical=True)
    except (ValueError, TypeError, cbor2.CBOREncodeError) as exc:  # e.g. a lone surrogate in a string
        raise EncodingError(f"cannot encode: {exc}") from None


# --- records, encoded faster ------------------------------------------------
# cbor2's canonical maps are slow: every call encodes each key on its own and
# sorts them. A record's map has the same keys every time, so `encode_map`
# sorts a key set once (`map_layout`) and hands cbor2 the entries as one flat
# list [key, value, key, value, …] in canonical order, whose encoding is the
# map's entries: only the head differs. The result is byte for byte
# `canonical_bytes` of the same map; the test suite checks it on blocks,
# records and arbitrary maps.


def _head(major: int, length: int) -> bytes:
    """The shortest CBOR head of a major type (0x80 array, 0xa0 map) and a length."""
    if length < 24:
        return bytes((major | length,))
    if length < 0x100:
        return bytes((major | 24, length))
    if length < 0x10000:
        return bytes((major | 25,)) + length.to_bytes(2, "big")
    if length < 0x100000000:
        return bytes((major | 26,)) + length.to_bytes(4, "big")
    return bytes((major | 27,)) + length.to_bytes(8, "big")


def _key_rank(key: str) -> tuple[int, str]:
    # Canonical order is bytewise on the encoded keys; for text keys that is
    # by UTF-8 length, then by code point (UTF-8 preserves code point order).
    return (len(key.encode("utf-8")), key)


class Layout:
    """A map's key set laid out once: its head, and its keys in canonical order with their encodings."""

    __slots__ = ("head", "keys", "key_bytes", "entries_offset")

    def __init__(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            if not isinstance(key, str):
                raise EncodingError(f"map keys must be strings, got {type(key).__name__}")
        self.keys = tuple(sorted(keys, key=_key_rank))
        self.key_bytes = tuple(_dumps(key) for key in self.keys)
        self.head = _head(0xA0, len(keys))
        self.entries_offset = len(_head(0x80, 2 * len(keys)))  # the head of the flat list [k, v, k, v, …]


@functools.lru_cache(maxsize=1024)
def map_layout(keys: tuple[str, ...]) -> Layout:
    return Layout(keys)


def encode_map(fields: Mapping[str, Any], keys: tuple[str, ...] | Layout | None = None) -> bytes:
    """`canonical_bytes` of {k: fields[k] for k in keys} (default: all)."""
    layout = keys if type(keys) is Layout else map_layout(tuple(fields) if keys is None else keys)
    values = [fields[key] for key in layout.keys]
    for value in values:
        if type(value) not in _SCALARS:
            _check(value, 1)
    flat: list[Any] = [None] * (2 * len(values))
    flat[0::2] = layout.keys
    flat[1::2] = values
    return layout.head + _dumps(flat)[layout.entries_offset:]


def encoded_array(items: Sequence[bytes]) -> bytes:
    """Canonical CBOR of an array, given each item's canonical encoding."""
    return _head(0x80, len(items)) + b"".join(items)


_TAGGED_HEAD = b"\xa2" + cbor2.dumps("body")  # {"body": …, "type": …}: "body" sorts first
_TYPE_KEY = cbor2.dumps("type")


def tagged(tag: str, body: bytes) -> bytes:
    """Canonical CBOR of {"type": tag, "body": <body>}: what signatures and hashes cover."""
    return _TAGGED_HEAD + body + _TYPE_KEY + _tag_bytes(tag)


@functools.lru_cache(maxsize=64)
def _tag_bytes(tag: str) -> bytes:
    return _dumps(tag)


def decode(data: bytes) -> Any:
    """Decode canonical CBOR; refuse bytes that are not the canonical form."""
    if not isinstance(data, (bytes, bytearray)):
        raise EncodingError("expected bytes")
    scan(data)  # tags, sizes, depth: refused before cbor2 runs (see `cbor_scan`)
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


def decode_map(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """`decode` for a map, which also returns each entry's bytes (key and value) as found in `data`.

    The canonical check re-encodes entry by entry, so the entries come for
    free: a block keeps them, and its digests are then slices of the bytes it
    was read from instead of a second encoding (see `Block.from_bytes`).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise EncodingError("expected bytes")
    data = bytes(data)
    scan(data)
    try:
        value = cbor2.loads(data)
    except Exception as exc:  # cbor2 raises several types for bad input
        raise EncodingError(f"not valid CBOR: {exc}") from None
    if type(value) is not dict:
        raise EncodingError("expected a map")
    try:
        _check(value)
        layout = map_layout(tuple(value))
        entries = {key: key_bytes + _dumps(value[key]) for key, key_bytes in zip(layout.keys, layout.key_bytes)}
    except EncodingError as exc:
        raise EncodingError(f"not a TCLearn record: {exc}") from None
    if layout.head + b"".join(entries.values()) != data:
        raise EncodingError("bytes are not in canonical form")
    return value, entries


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
