"""What a block is, how it hashes and how it is signed (DESIGN.md §1 "Block").

Three digests, each over deterministic CBOR (`tclearn.ledger.encoding`):

* `signing_hash`: every field except `block_votes`, `general_signature` and
  `block_hash`. The general signs it and each validator's block vote signs it,
  so the certificate can be collected after the block is built.
* `block_hash`: every field except `block_hash` itself — votes and general's
  signature included, as DESIGN.md asks. The next block links to it.

`payload` carries what is particular to a kind: the genesis configuration, the
proposal of an increment, the target of a revert, new hyper-parameters, a
membership change. Timestamps are integer milliseconds handed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from collections.abc import Mapping
from typing import Any

from tclearn.errors import EncodingError, InvalidBlockError
from tclearn.identity import Identity, verify_signature
from tclearn.errors import SignatureError
from tclearn.ledger.encoding import (
    canonical_bytes, decode_map, encoded_array, map_layout, sha256_hex, tagged,
)
from tclearn.ledger.records import BlockVote, QualityVote, check_hash, check_int, check_str

__all__ = ["Block", "KINDS", "ZERO_HASH", "EMPTY_ROOT"]

KINDS = ("genesis", "increment", "rejected", "revert", "hyperparams", "membership")
ZERO_HASH = "0" * 64
EMPTY_ROOT = sha256_hex(b"")

_FIELDS = (
    "index", "timestamp", "kind", "prev_hash", "model_hash", "contributor", "strengths",
    "data_ids_root", "quality_votes", "block_votes", "general", "payload",
    "general_signature", "block_hash",
)
_HASHED = tuple(name for name in _FIELDS if name != "block_hash")
_SIGNED = tuple(name for name in _HASHED if name not in ("block_votes", "general_signature"))
_LAYOUTS = {keys: map_layout(keys) for keys in (_FIELDS, _HASHED, _SIGNED)}
_RECORD_LISTS = ("quality_votes", "block_votes")


@dataclass(frozen=True)
class Block:
    index: int
    timestamp: int
    kind: str
    prev_hash: str
    model_hash: str
    contributor: str | None
    strengths: dict[str, float]
    data_ids_root: str
    quality_votes: tuple[QualityVote, ...]
    block_votes: tuple[BlockVote, ...]
    general: str
    payload: dict[str, Any] = field(default_factory=dict)
    general_signature: bytes = b""
    block_hash: str = ""

    def __post_init__(self) -> None:
        try:
            check_int(self.index, "index", 0)
            check_int(self.timestamp, "timestamp", 0)
            if self.kind not in KINDS:
                raise EncodingError(f"kind must be one of {', '.join(KINDS)}")
            check_hash(self.prev_hash, "prev_hash")
            check_hash(self.model_hash, "model_hash")
            if self.contributor is not None:
                check_str(self.contributor, "contributor")
            if not isinstance(self.strengths, Mapping) or not all(
                isinstance(k, str) and isinstance(v, float) for k, v in self.strengths.items()
            ):
                raise EncodingError("strengths must map member ids to floats")
            check_hash(self.data_ids_root, "data_ids_root")
            if not all(isinstance(v, QualityVote) for v in self.quality_votes):
                raise EncodingError("quality_votes must be QualityVote records")
            if not all(isinstance(v, BlockVote) for v in self.block_votes):
                raise EncodingError("block_votes must be BlockVote records")
            check_str(self.general, "general")
            if not isinstance(self.payload, Mapping):
                raise EncodingError("payload must be a map")
            if not isinstance(self.general_signature, bytes):
                raise EncodingError("general_signature must be bytes")
            check_hash(self.block_hash, "block_hash", allow_empty=True)
        except EncodingError as exc:
            raise InvalidBlockError(self.index if isinstance(self.index, int) else None, str(exc)) from None
        object.__setattr__(self, "quality_votes", tuple(self.quality_votes))
        object.__setattr__(self, "block_votes", tuple(self.block_votes))
        object.__setattr__(self, "strengths", dict(self.strengths))
        object.__setattr__(self, "payload", dict(self.payload))

    # --- encodings -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "timestamp": self.timestamp,
            "kind": self.kind,
            "prev_hash": self.prev_hash,
            "model_hash": self.model_hash,
            "contributor": self.contributor,
            "strengths": dict(self.strengths),
            "data_ids_root": self.data_ids_root,
            "quality_votes": [v.to_dict() for v in self.quality_votes],
            "block_votes": [v.to_dict() for v in self.block_votes],
            "general": self.general,
            "payload": dict(self.payload),
            "general_signature": self.general_signature,
            "block_hash": self.block_hash,
        }

    @classmethod
    def from_dict(cls, data: Any) -> "Block":
        if not isinstance(data, Mapping):
            raise InvalidBlockError(None, "a block must be a map")
        index = data.get("index") if isinstance(data.get("index"), int) else None
        unknown = set(data) - set(_FIELDS)
        missing = set(_FIELDS) - set(data)
        if unknown or missing:
            raise InvalidBlockError(index, f"unknown fields {sorted(unknown)}, missing fields {sorted(missing)}")
        try:
            qv = data["quality_votes"]
            bv = data["block_votes"]
            if not isinstance(qv, list) or not isinstance(bv, list):
                raise EncodingError("quality_votes and block_votes must be lists")
            kwargs = dict(data)
            kwargs["quality_votes"] = tuple(QualityVote.from_dict(v) for v in qv)
            kwargs["block_votes"] = tuple(BlockVote.from_dict(v) for v in bv)
            return cls(**kwargs)
        except EncodingError as exc:
            raise InvalidBlockError(index, str(exc)) from None

    def to_bytes(self) -> bytes:
        return self._digest_body(_FIELDS)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Block":
        """The block encoded in `data` (canonical bytes only).

        The block remembers the encoding of each of its fields as read, so
        its digests are slices of `data` rather than a second encoding: a
        chain check would otherwise encode every block it has just decoded.
        A block is a frozen value; one made by `replace` starts afresh.
        """
        try:
            value, entries = decode_map(data)
            block = cls.from_dict(value)
        except EncodingError as exc:
            raise InvalidBlockError(None, str(exc)) from None
        object.__setattr__(block, "_entries", entries)
        return block

    def _field_entries(self) -> dict[str, bytes]:
        """Each field's canonical entry (its key's and its value's bytes), encoded once per block.

        A block read from bytes has them from `from_bytes`; a block built here
        encodes them on first use and keeps them, since a block is a frozen
        value: every node checks, hashes, votes on and stores the same block
        object several times, and each digest is then a join of slices.
        """
        entries: dict[str, bytes] | None = self.__dict__.get("_entries")
        if entries is None:
            layout = _LAYOUTS[_FIELDS]
            entries = {}
            for key, key_bytes in zip(layout.keys, layout.key_bytes):
                value = self.__dict__[key]
                # a vote list is the array of its records' own (kept) encodings, as to_dict() would give
                data = encoded_array([v.encoded() for v in value]) if key in _RECORD_LISTS else canonical_bytes(value)
                entries[key] = key_bytes + data
            object.__setattr__(self, "_entries", entries)
        return entries

    # --- digests ---------------------------------------------------------
    # Each is canonical_bytes of a dict built from `to_dict()`: the map's
    # head and, in canonical order, the entries of the fields it covers
    # (`_field_entries`), so every field is encoded once for all three.
    def _digest_body(self, keys: tuple[str, ...]) -> bytes:
        entries, layout = self._field_entries(), _LAYOUTS[keys]
        return layout.head + b"".join([entries[k] for k in layout.keys])

    def signing_bytes(self) -> bytes:
        return tagged("block", self._digest_body(_SIGNED))

    @property
    def signing_hash(self) -> str:
        return sha256_hex(self.signing_bytes())

    def compute_hash(self) -> str:
        return sha256_hex(tagged("block", self._digest_body(_HASHED)))

    def hash_and_signing_bytes(self) -> tuple[bytes, bytes]:
        """The bytes under `compute_hash` and `signing_bytes`, sharing the encoding of what both cover."""
        return tagged("block", self._digest_body(_HASHED)), tagged("block", self._digest_body(_SIGNED))

    # --- building --------------------------------------------------------
    def signed_by(self, general: Identity) -> "Block":
        """The general's signature over the signing hash."""
        if general.member_id != self.general:
            raise SignatureError(f"{general.member_id} is not this block's general ({self.general})")
        return replace(self, general_signature=general.sign(self.signing_bytes()), block_hash="")

    def with_votes(self, votes: tuple[BlockVote, ...] | list[BlockVote]) -> "Block":
        """Attach the certificate (sorted by validator) and seal the block hash."""
        ordered = tuple(sorted(votes, key=lambda v: v.validator))
        sealed = replace(self, block_votes=ordered, block_hash="")
        return replace(sealed, block_hash=sealed.compute_hash())

    def sealed(self) -> "Block":
        return replace(self, block_hash=replace(self, block_hash="").compute_hash())

    def vote(self, validator: Identity) -> BlockVote:
        return BlockVote(validator=validator.member_id, index=self.index, signing_hash=self.signing_hash).signed_by(
            validator
        )

    def check_general_signature(self, public_key: bytes) -> None:
        try:
            verify_signature(public_key, self.general_signature, self.signing_bytes())
        except SignatureError:
            raise InvalidBlockError(self.index, f"signature of general {self.general} does not verify") from None
