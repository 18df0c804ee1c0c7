"""Canonical encoding: round trips, one encoding per value, non-canonical bytes refused."""

from __future__ import annotations

import math
import random
import struct
from dataclasses import replace
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainmaker import random_chain
from tclearn.errors import EncodingError, InvalidBlockError
from tclearn.ledger import Block, BlockVote, Proposal, QualityVote
from tclearn.ledger.encoding import canonical_bytes, decode, decode_map, encode_map, sha256_hex

texts = st.text(max_size=12)  # hypothesis' text includes multi-byte characters: key order is by UTF-8
scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | texts | st.binary(max_size=40)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(texts, inner, max_size=5), max_leaves=25
)
hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True in Python, not in CBOR)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b)  # -0.0 is not 0.0
    return bool(a == b)


@given(values)
@settings(max_examples=300, deadline=None)
def test_decode_inverts_encode(value: Any) -> None:
    data = canonical_bytes(value)
    back = decode(data)
    assert same(back, value)
    assert canonical_bytes(back) == data


@given(values)
@settings(max_examples=200, deadline=None)
def test_equal_values_encode_equally_whatever_the_insertion_order(value: Any) -> None:
    def shuffled(v: Any, rng: random.Random) -> Any:
        if isinstance(v, dict):
            keys = list(v)
            rng.shuffle(keys)
            return {k: shuffled(v[k], rng) for k in keys}
        if isinstance(v, list):
            return [shuffled(x, rng) for x in v]
        return v

    assert canonical_bytes(shuffled(value, random.Random(1))) == canonical_bytes(value)
    assert canonical_bytes(value) == cbor2.dumps(value, canonical=True)


@given(st.dictionaries(texts, values, max_size=12), st.data())
@settings(max_examples=200, deadline=None)
def test_maps_encoded_from_their_fields_are_the_canonical_encoding(mapping: dict[str, Any], data: Any) -> None:
    expected = cbor2.dumps(mapping, canonical=True)
    assert encode_map(mapping) == expected
    keys = tuple(k for k in mapping if data.draw(st.booleans()))
    assert encode_map(mapping, keys) == cbor2.dumps({k: mapping[k] for k in keys}, canonical=True)


def test_encode_map_checks_what_it_encodes() -> None:
    for bad in ({"x": math.nan}, {"x": {1: 2}}, {"x": [object()]}, {1: "x"}):
        with pytest.raises(EncodingError):
            encode_map(bad)


@given(st.dictionaries(texts, scalars, min_size=2, max_size=6))
@settings(max_examples=200, deadline=None)
def test_a_map_in_another_key_order_is_refused(mapping: dict[str, Any]) -> None:
    canonical = canonical_bytes(mapping)
    for order in (sorted(mapping, reverse=True), sorted(mapping)):
        data = cbor2.dumps({k: mapping[k] for k in order})  # insertion order, not canonical order
        if data != canonical:
            with pytest.raises(EncodingError, match="canonical"):
                decode(data)


@given(st.dictionaries(texts, values, max_size=8))
@settings(max_examples=200, deadline=None)
def test_decode_map_agrees_with_decode_and_returns_each_entry(mapping: dict[str, Any]) -> None:
    data = canonical_bytes(mapping)
    value, entries = decode_map(data)
    assert same(value, decode(data))
    assert data.endswith(b"".join(entries.values())) and len(entries) == len(mapping)
    for key, entry in entries.items():
        assert entry == canonical_bytes(key) + canonical_bytes(mapping[key])
    if len(mapping) >= 2:
        shuffled = cbor2.dumps({k: mapping[k] for k in reversed(list(decode(data)))})
        if shuffled != data:
            with pytest.raises(EncodingError):
                decode_map(shuffled)


@pytest.mark.parametrize(
    "data",
    [
        b"\x18\x05",  # 5 with a needless extra byte
        b"\x19\x00\x05",
        b"\x9f\x01\xff",  # indefinite-length array
        b"\x7f\x61a\xff",  # indefinite-length text
        b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00",  # 1.5 as float64 (canonical: float16)
        b"\xa2\x61b\x01\x61a\x02",  # keys out of order
        b"\x01\x00",  # trailing bytes
        b"\xc1\x1a\x00\x00\x00\x00",  # a tag (epoch datetime)
        b"\xf7",  # undefined
        b"\xa1\x01\x02",  # integer map key
        b"\xf9\x7e\x00",  # NaN
    ],
)
def test_non_canonical_or_foreign_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(EncodingError):
        decode(data)
    with pytest.raises(EncodingError):
        decode_map(data)


def test_unencodable_values_are_refused() -> None:
    for bad in (math.nan, math.inf, {1: "x"}, {"s": {1, 2}}, object(), "\ud800"):
        with pytest.raises(EncodingError):
            canonical_bytes(bad)
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(EncodingError, match="deeply"):
        canonical_bytes(deep)


# --- blocks and records ---------------------------------------------------------

@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return random_chain(31, 40).blocks


def test_blocks_round_trip_and_their_digests_are_those_of_the_reference_form(blocks: list[Block]) -> None:
    """The per-field encodings (encoding.encoded_map) give exactly cbor2's canonical bytes of to_dict()."""
    for b in blocks:
        d = b.to_dict()
        assert b.to_bytes() == cbor2.dumps(d, canonical=True)
        assert Block.from_bytes(b.to_bytes()) == b
        body = dict(d)
        del body["block_hash"]
        assert b.compute_hash() == sha256_hex(cbor2.dumps({"type": "block", "body": body}, canonical=True))
        assert b.compute_hash() == b.block_hash
        del body["block_votes"], body["general_signature"]
        assert b.signing_bytes() == cbor2.dumps({"type": "block", "body": body}, canonical=True)
        hashed, signing = b.hash_and_signing_bytes()
        assert signing == b.signing_bytes() and sha256_hex(hashed) == b.block_hash
        for v in (*b.quality_votes, *b.block_votes):
            assert v.encoded() == cbor2.dumps(v.to_dict(), canonical=True)
            assert v.signing_bytes() == cbor2.dumps({"type": v.TAG, "body": v.body()}, canonical=True)


def test_a_block_digests_the_entries_it_was_read_from_or_encoded_once(blocks: list[Block]) -> None:
    """A decoded block slices its digests out of its bytes, a built one out of its fields encoded once: same bytes."""
    for b in blocks:
        built = replace(b)  # a new value: nothing encoded yet
        assert "_entries" not in built.__dict__
        d = Block.from_bytes(b.to_bytes())
        assert "_entries" in d.__dict__  # from the bytes it was read from
        assert built.compute_hash() == d.compute_hash() == d.block_hash
        assert built._field_entries() == d._field_entries()
        assert built.to_bytes() == d.to_bytes() == b.to_bytes()
        assert d.signing_bytes() == built.signing_bytes() and d.signing_hash == built.signing_hash
        assert d.hash_and_signing_bytes() == built.hash_and_signing_bytes()
        changed = replace(d, timestamp=d.timestamp + 1)  # a new value: encoded afresh
        assert "_entries" not in changed.__dict__ and changed.compute_hash() != d.block_hash


def test_equal_blocks_encode_equally(blocks: list[Block]) -> None:
    for b in blocks:
        d = b.to_dict()
        reordered = {k: d[k] for k in reversed(list(d))}
        reordered["strengths"] = {k: d["strengths"][k] for k in reversed(list(d["strengths"]))}
        reordered["payload"] = {k: d["payload"][k] for k in reversed(list(d["payload"]))}
        again = Block.from_dict(reordered)
        assert again == b and again.to_bytes() == b.to_bytes() and again.compute_hash() == b.block_hash


def test_a_block_in_non_canonical_bytes_is_refused(blocks: list[Block]) -> None:
    for b in blocks[:10]:
        with pytest.raises(InvalidBlockError):
            Block.from_bytes(cbor2.dumps(b.to_dict()))  # insertion order and float64


@given(
    validator=st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True), height=st.integers(1, 2**40),
    h1=hex64, h2=hex64, accept=st.booleans(),
    scores=st.dictionaries(texts, st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)),
    signature=st.binary(min_size=64, max_size=64),
)
@settings(max_examples=150, deadline=None)
def test_records_encode_as_the_reference_form(validator: str, height: int, h1: str, h2: str, accept: bool,
                                              scores: dict[str, float], signature: bytes) -> None:
    records = [
        QualityVote(validator=validator, height=height, proposal_hash=h1, model_hash=h2, accept=accept,
                    scores=scores, signature=signature),
        BlockVote(validator=validator, index=height, signing_hash=h1, signature=signature),
        Proposal(proposer=validator, height=height, prev_hash=h1, parent_model_hash=h2, model_hash=h1,
                 increment_hash=h2, sample_count=height, data_ids_root=h1, signature=signature),
    ]
    for r in records:
        assert r.encoded() == cbor2.dumps(r.to_dict(), canonical=True)
        assert r.signing_bytes() == cbor2.dumps({"type": r.TAG, "body": r.body()}, canonical=True)
        assert type(r).from_dict(decode(r.encoded())) == r
        assert r.encoded() is r.encoded() and r.signing_bytes() is r.signing_bytes()  # kept once made
        other = replace(r, signature=bytes(64) if r.signature != bytes(64) else b"\x01" * 64)  # a new value
        assert other.encoded() == cbor2.dumps(other.to_dict(), canonical=True) != r.encoded()
        assert other.signing_bytes() == r.signing_bytes()  # the signature is not under itself
