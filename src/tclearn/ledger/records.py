"""The signed records of the protocol: proposals, quality votes, block votes.

Each record is a frozen dataclass validated in its constructor. Its signature
covers the canonical CBOR of its fields (all but `signature`) under a type tag,
so a signature for one kind of record can never be replayed as another.
Records round-trip through plain dicts (`to_dict` / `from_dict`), which is the
form they take inside blocks and on the wire.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from tclearn.errors import EncodingError, SignatureError
from tclearn.identity import Identity, verify_signature
from tclearn.ledger.encoding import Layout, encode_map, map_layout, sha256_hex, tagged

__all__ = ["Proposal", "QualityVote", "BlockVote", "SignedRecord", "check_hash", "check_batch_counts", "check_vault_head",
           "EMPTY_IDS_ROOT"]

HASH_LEN = 64  # hex SHA-256
R = TypeVar("R", bound="SignedRecord")


def check_hash(value: Any, name: str, allow_empty: bool = False) -> str:
    if allow_empty and value == "":
        return ""
    if not isinstance(value, str) or len(value) != HASH_LEN or value.strip("0123456789abcdef"):
        raise EncodingError(f"{name} must be a 64-character lower-case hex SHA-256")
    return value


def check_int(value: Any, name: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise EncodingError(f"{name} must be an integer ≥ {minimum}")
    return value


def check_str(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise EncodingError(f"{name} must be a non-empty string")
    return value


EMPTY_IDS_ROOT = sha256_hex(b"")  # Merkle root of no id (`tclearn.data.ids.EMPTY_ROOT`)
MAX_JOURNAL_SEQ = 2**53  # a vault journal's entry number (JSON-safe integer)


def check_vault_head(value: Any, name: str = "vault_head") -> str:
    """"" (level A) or ``SEQ:HASH``: the head of the vault's audit journal the proposer saw (levels B/C)."""
    if value == "":
        return ""
    if not isinstance(value, str) or len(value) > 90:
        raise EncodingError(f"{name} must be '' or SEQ:HASH (a vault journal head)")
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or (len(seq) > 1 and seq[0] == "0") or int(seq) >= MAX_JOURNAL_SEQ:
        raise EncodingError(f"{name} must be '' or SEQ:HASH (a vault journal head)")
    check_hash(digest, name)
    return value


def check_batch_counts(sample_count: Any, data_ids_root: Any, reused_count: Any = 0,
                       reused_ids_root: Any = EMPTY_IDS_ROOT) -> None:
    """The counts and Merkle roots of a batch's new and re-used ids agree as far as the chain can tell.

    A batch trains on at least one sample; a list is empty exactly when its
    count is zero (the empty root). Whether a count matches its list, and
    whether an id is really new, is checked by validators against the lists
    (`tclearn.data.accounting`), which the chain does not hold.
    """
    check_int(sample_count, "sample_count", 0)
    check_hash(data_ids_root, "data_ids_root")
    check_int(reused_count, "reused_count", 0)
    check_hash(reused_ids_root, "reused_ids_root")
    if sample_count + reused_count < 1:
        raise EncodingError("a batch trains on at least one sample (sample_count + reused_count ≥ 1)")
    if (sample_count == 0) != (data_ids_root == EMPTY_IDS_ROOT):
        raise EncodingError("data_ids_root must be the empty root exactly when sample_count is 0")
    if (reused_count == 0) != (reused_ids_root == EMPTY_IDS_ROOT):
        raise EncodingError("reused_ids_root must be the empty root exactly when reused_count is 0")


def check_scores(value: Any, name: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise EncodingError(f"{name} must be a map of names to numbers")
    out: dict[str, float] = {}
    for key, val in value.items():
        if not isinstance(key, str) or isinstance(val, bool) or not isinstance(val, (int, float)):
            raise EncodingError(f"{name} must be a map of names to numbers")
        if isinstance(val, float) and not math.isfinite(val):
            raise EncodingError(f"{name}[{key}] is not finite")
        out[key] = val
    return out


@functools.lru_cache(maxsize=None)
def _body_names(cls: type) -> tuple[str, ...]:
    """The signed fields of a record class, in declaration order (cached: `fields()` is slow)."""
    return tuple(f.name for f in fields(cls) if f.name != "signature")


@functools.lru_cache(maxsize=None)
def _all_names(cls: type) -> tuple[str, ...]:
    return (*_body_names(cls), "signature")


@functools.lru_cache(maxsize=None)
def _layouts(cls: type) -> tuple[Layout, Layout]:
    """The canonical layouts of a record class's body and of the whole record (fields live in __dict__)."""
    return map_layout(_body_names(cls)), map_layout(_all_names(cls))


@functools.lru_cache(maxsize=None)
def _layout_without(cls: type, omitted: tuple[str, ...], whole: bool) -> Layout:
    names = _all_names(cls) if whole else _body_names(cls)
    return map_layout(tuple(n for n in names if n not in omitted))


@dataclass(frozen=True)
class SignedRecord:
    """Base: canonical signing bytes, sign, verify, dict round-trip."""

    TAG: ClassVar[str] = ""
    # fields left out of every encoding while they hold their default (added to a record
    # after chains were written: records that do not use them keep their bytes and hashes)
    OPTIONAL: ClassVar[dict[str, Any]] = {}
    signature: bytes = field(default=b"", kw_only=True)

    def _omitted(self) -> tuple[str, ...]:
        return tuple(name for name, default in self.OPTIONAL.items() if getattr(self, name) == default)

    def _layout(self, whole: bool) -> Layout:
        omitted = self._omitted() if self.OPTIONAL else ()
        if not omitted:
            return _layouts(type(self))[1 if whole else 0]  # type: ignore[arg-type]  # a class is hashable
        return _layout_without(type(self), omitted, whole)  # type: ignore[arg-type]  # a class is hashable

    def body(self) -> dict[str, Any]:
        omitted = self._omitted() if self.OPTIONAL else ()
        return {name: getattr(self, name) for name in _body_names(type(self)) if name not in omitted}  # type: ignore[arg-type]  # a class is hashable

    # A record is a frozen value that every node encodes several times (inside
    # each block digest, for each signature check): both encodings are kept
    # on the instance once made. `replace` makes a new record, encoded afresh.
    def signing_bytes(self) -> bytes:
        """canonical_bytes({"type": TAG, "body": body()}), straight from the fields (`encode_map`)."""
        data: bytes | None = self.__dict__.get("_signing_bytes")
        if data is None:
            data = tagged(self.TAG, encode_map(self.__dict__, self._layout(False)))
            object.__setattr__(self, "_signing_bytes", data)
        return data

    def encoded(self) -> bytes:
        """canonical_bytes(self.to_dict()): the record as it sits inside a block."""
        data: bytes | None = self.__dict__.get("_encoded")
        if data is None:
            data = encode_map(self.__dict__, self._layout(True))
            object.__setattr__(self, "_encoded", data)
        return data

    def signer(self) -> str:
        raise NotImplementedError

    def signed_by(self: R, identity: Identity) -> R:
        if identity.member_id != self.signer():
            raise SignatureError(f"{identity.member_id} cannot sign a record of {self.signer()}")
        return replace(self, signature=identity.sign(self.signing_bytes()))

    def verify(self, public_key: bytes) -> None:
        try:
            verify_signature(public_key, self.signature, self.signing_bytes())
        except SignatureError:
            raise SignatureError(f"{self.TAG} signature of {self.signer()} does not verify") from None

    def to_dict(self) -> dict[str, Any]:
        out = self.body()
        out["signature"] = self.signature
        return out

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        if not isinstance(data, Mapping):
            raise EncodingError(f"{cls.TAG} must be a map")
        names = set(_all_names(cls))  # type: ignore[arg-type]  # a class is hashable
        unknown = set(data) - names
        missing = names - set(data) - set(cls.OPTIONAL)
        if unknown or missing:
            raise EncodingError(
                f"{cls.TAG}: unknown fields {sorted(unknown)}, missing fields {sorted(missing)}"
            )
        sig = data["signature"]
        if not isinstance(sig, bytes):
            raise EncodingError(f"{cls.TAG}: signature must be bytes")
        try:
            return cls(**{k: v for k, v in data.items()})
        except TypeError as exc:
            raise EncodingError(f"{cls.TAG}: {exc}") from None


@dataclass(frozen=True)
class Proposal(SignedRecord):
    """A partner's candidate increment for the block at `height`."""

    TAG: ClassVar[str] = "proposal"
    OPTIONAL: ClassVar[dict[str, Any]] = {"reused_count": 0, "reused_ids_root": EMPTY_IDS_ROOT, "vault_head": ""}
    proposer: str
    height: int
    prev_hash: str
    parent_model_hash: str
    model_hash: str
    increment_hash: str
    # new contributions: samples no accepted increment has used before; they count towards D_i
    sample_count: int
    data_ids_root: str  # Merkle root of their anonymised ids
    # samples contributed earlier and trained on again: trained, never counted twice
    reused_count: int = 0
    reused_ids_root: str = EMPTY_IDS_ROOT
    # levels B/C: the vault journal's head (SEQ:HASH) right after the proposer published its candidate there;
    # on the chain it anchors the journal (`tclearn audit verify --chain`); "" at level A (left out of the bytes)
    vault_head: str = ""

    def __post_init__(self) -> None:
        check_str(self.proposer, "proposer")
        check_int(self.height, "height", 1)
        check_hash(self.prev_hash, "prev_hash")
        check_hash(self.parent_model_hash, "parent_model_hash")
        check_hash(self.model_hash, "model_hash")
        check_hash(self.increment_hash, "increment_hash")
        check_batch_counts(self.sample_count, self.data_ids_root, self.reused_count, self.reused_ids_root)
        check_vault_head(self.vault_head)

    @property
    def trained_count(self) -> int:
        """Samples the increment was trained on: new contributions and re-used ones."""
        return self.sample_count + self.reused_count

    def signer(self) -> str:
        return self.proposer

    @property
    def proposal_hash(self) -> str:
        return sha256_hex(self.encoded())


@dataclass(frozen=True)
class QualityVote(SignedRecord):
    """A validator's verdict on a candidate, with the scores it measured.

    `scores` holds at least `g_old`, `g_new` (on the global test set G) and,
    when the validator has local data, `l_old`, `l_new`, plus the statistics
    of the decision rule (see `tclearn.quality`).
    """

    TAG: ClassVar[str] = "quality-vote"
    validator: str
    height: int
    proposal_hash: str
    model_hash: str
    accept: bool
    scores: dict[str, float]

    def __post_init__(self) -> None:
        check_str(self.validator, "validator")
        check_int(self.height, "height", 1)
        check_hash(self.proposal_hash, "proposal_hash")
        check_hash(self.model_hash, "model_hash")
        if not isinstance(self.accept, bool):
            raise EncodingError("accept must be a boolean")
        object.__setattr__(self, "scores", check_scores(self.scores, "scores"))

    def signer(self) -> str:
        return self.validator


@dataclass(frozen=True)
class BlockVote(SignedRecord):
    """A validator's signature on a block's signing hash: part of its certificate."""

    TAG: ClassVar[str] = "block-vote"
    validator: str
    index: int
    signing_hash: str

    def __post_init__(self) -> None:
        check_str(self.validator, "validator")
        check_int(self.index, "index", 0)
        check_hash(self.signing_hash, "signing_hash")

    def signer(self) -> str:
        return self.validator
