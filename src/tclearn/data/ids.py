"""Anonymised data ids, their Merkle root, and duplicate detection.

Why a *keyed* hash: a plain SHA-256 of a scan lets anyone holding the scan
check whether it was used (a membership test on patients). HMAC-SHA256 with a
key known to the coalition only gives ids that name a sample without revealing
it to outsiders, and that every member computes identically. A block carries
only the Merkle root of its batch's ids; the vault keeps the list, so a batch
that repeats an already used sample can be refused.

Merkle tree: leaves are the ids *sorted* (the root names the set, not the
order), hashed with a 0x00 prefix; inner nodes hash 0x01 ‖ left ‖ right; an odd
node is promoted unchanged to the next level (no duplication, so [a, b, c] and
[a, b, c, c] have different roots). The empty list has root sha256(b"").
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from typing import Iterable, Sequence

from tclearn.data.dataset import Dataset
from tclearn.errors import DataError

__all__ = ["data_id", "dataset_ids", "merkle_root", "find_duplicates", "check_data_id", "EMPTY_ROOT"]

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
_LEAF = b"\x00"
_NODE = b"\x01"
_ID_RE = re.compile(r"[0-9a-f]{64}")
MIN_KEY_BYTES = 16


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise DataError(f"the coalition data-id key must be at least {MIN_KEY_BYTES} bytes")


def data_id(key: bytes, sample_bytes: bytes) -> str:
    """HMAC-SHA256(key, sample's canonical bytes), as 64 lowercase hex characters."""
    _check_key(key)
    return hmac.new(bytes(key), sample_bytes, hashlib.sha256).hexdigest()


def dataset_ids(key: bytes, data: Dataset) -> tuple[str, ...]:
    """The id of every sample of `data`, in the data set's order."""
    _check_key(key)
    return tuple(data_id(key, data.sample_bytes(i)) for i in range(len(data)))


def check_data_id(value: str) -> str:
    """Return `value` if it is a well-formed id (64 lowercase hex), else raise DataError."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise DataError(f"not a data id (64 lowercase hex characters): {value!r}")
    return value


def merkle_root(ids: Iterable[str]) -> str:
    """Hex SHA-256 Merkle root of the sorted ids (domain-separated leaves and nodes)."""
    leaves = sorted(check_data_id(i) for i in ids)
    if not leaves:
        return EMPTY_ROOT
    level = [hashlib.sha256(_LEAF + bytes.fromhex(i)).digest() for i in leaves]
    while len(level) > 1:
        nxt = [hashlib.sha256(_NODE + level[j] + level[j + 1]).digest() for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


def find_duplicates(ids: Sequence[str], seen: Iterable[str] = ()) -> tuple[str, ...]:
    """Ids of `ids` that repeat within it or already appear in `seen`, sorted, each once."""
    counts = Counter(ids)
    previous = set(seen)
    return tuple(sorted(i for i, c in counts.items() if c > 1 or i in previous))
