"""Signature checks with a memory: a pure function, so caching is sound.

A member meets the same signed record several times in a height: a quality
vote arrives, is re-sent, then sits inside the proposed block, the sealed
block and the committed block. Ed25519 verification is the dominant cost of
the protocol (≈ 66-130 µs a check), so each (key, signature, message) triple
is checked once. The cache is bounded (oldest entries go first) and keeps
failures too, so a peer cannot make us re-check the same forgery.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from typing import Any

from cryptography.exceptions import InvalidSignature

from tclearn.identity import public_key_from_bytes
from tclearn.errors import SignatureError
from tclearn.ledger.records import SignedRecord
from tclearn.meter import Meter

__all__ = ["SignatureVerifier"]


class SignatureVerifier:
    """Ed25519 checks, memoised; counts the checks it actually ran."""

    def __init__(self, max_entries: int = 65_536, meter: Meter | None = None) -> None:
        self.meter = meter  # times each cryptographic check (cache misses), when handed one
        self._seen: OrderedDict[tuple[bytes, bytes, bytes], bool] = OrderedDict()
        self._records: OrderedDict[tuple[bytes, bytes], tuple[tuple[Any, ...], bool]] = OrderedDict()
        self._max = max_entries
        self.checks = 0  # cryptographic checks run (cache misses)
        self.hits = 0

    def verify(self, public_key: bytes, signature: bytes, message: bytes) -> bool:
        key = (public_key, signature, message)
        known = self._seen.get(key)
        if known is not None:
            self.hits += 1
            return known
        self.checks += 1
        if self.meter is not None:
            ok = self.meter.timed("crypto", _check, public_key, signature, message)
        else:
            ok = _check(public_key, signature, message)
        self._seen[key] = ok
        if len(self._seen) > self._max:
            self._seen.popitem(last=False)
        return ok

    def verify_record(self, record: SignedRecord, public_key: bytes | None) -> bool:
        """Check a record's signature; a record seen before (equal fields, same signature) is not re-encoded.

        Fields are compared type-exactly (floats by their hex form), so two
        records with the same fields have the same canonical encoding, hence
        the same signing bytes and the same verdict.
        """
        if public_key is None or not isinstance(record.signature, bytes):
            return False
        fields = _snapshot(record)
        key = (public_key, record.signature)
        known = self._records.get(key)
        if known is not None and known[0] == fields:
            self.hits += 1
            return known[1]
        ok = self.verify(public_key, record.signature, record.signing_bytes())
        self._records[key] = (fields, ok)
        if len(self._records) > self._max:
            self._records.popitem(last=False)
        return ok


def _norm(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return ("f", value.hex())
    if kind is dict:
        return ("d", tuple(sorted((k, _norm(v)) for k, v in value.items())))
    if kind is list or kind is tuple:
        return ("l", tuple(_norm(v) for v in value))
    return (kind.__name__, value)


def _snapshot(record: SignedRecord) -> tuple[Any, ...]:
    fields = _fields(type(record))  # type: ignore[arg-type]  # a class is hashable
    return (type(record).__name__, *(_norm(getattr(record, f.name)) for f in fields))


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> tuple[Any, ...]:
    return tuple(f for f in dataclasses.fields(cls) if f.name != "signature")


def _check(public_key: bytes, signature: bytes, message: bytes) -> bool:
    if not isinstance(signature, bytes) or len(signature) != 64:
        return False
    try:
        public_key_from_bytes(public_key).verify(signature, message)
    except (InvalidSignature, SignatureError, ValueError):
        return False
    return True
