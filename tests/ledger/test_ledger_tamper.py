"""Tampering: change any field of any block and `verify_chain` names that block.

Block i's hash covers every field but `block_hash` itself, and `block_hash`
is checked against it, so an edit anywhere in block i (inside its votes,
payload and signatures too) is caught at i, before block i+1's link is even
looked at. An edit that is resealed (the hash recomputed) is still caught at
i: the general's signature covers every field but the votes, each vote
signs the block's signing hash, and the block's position fixes its index.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainmaker import random_chain
from tclearn.errors import InvalidBlockError
from tclearn.ledger import KINDS, Block, verify_chain

N_CHAINS = 8
CHAIN_LENGTH = 9
HEX = "0123456789abcdef"

Path = tuple[Any, ...]


@functools.lru_cache(maxsize=None)
def chain_for(seed: int) -> tuple[Block, ...]:
    return tuple(random_chain(1000 + seed, CHAIN_LENGTH).blocks)


def edits(value: Any, path: Path = ()) -> Iterator[tuple[str, Path]]:
    """Every place an edit can land: each leaf, each map key, each list element (to drop)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield "rename", path + (key,)
            yield from edits(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield "drop", path + (i,)
            yield from edits(item, path + (i,))
    else:
        yield "change", path


def changed(value: Any) -> Any:
    """A different value of the same type and form (so the block can still be built)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:] if value else b"\x00"
    if isinstance(value, str):
        if value in KINDS:
            return KINDS[(KINDS.index(value) + 1) % len(KINDS)]
        if len(value) == 64 and not value.strip(HEX):
            return HEX[(HEX.index(value[0]) + 1) % 16] + value[1:]
        return value + "x"
    if value is None:
        return "x"
    raise AssertionError(f"unexpected leaf {value!r}")


def apply_edit(data: dict[str, Any], kind: str, path: Path) -> dict[str, Any]:
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if kind == "change":
        parent[last] = changed(parent[last])
    elif kind == "rename":
        parent[last + "x"] = parent.pop(last)
    else:
        del parent[last]
    return data


def tampered_chain(seed: int, data: st.DataObject) -> tuple[list[Block], int, Block | None, str, Path]:
    chain = list(chain_for(seed))
    i = data.draw(st.integers(0, len(chain) - 1), label="block")
    kind, path = data.draw(st.sampled_from(list(edits(chain[i].to_dict()))), label="edit")
    try:
        block = Block.from_dict(apply_edit(chain[i].to_dict(), kind, path))
    except InvalidBlockError:
        return chain, i, None, kind, path  # the edit does not even make a block: refused on decoding
    return chain, i, block, kind, path


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_edit_of_any_block_is_caught_at_that_block(seed: int, data: st.DataObject) -> None:
    chain, i, block, kind, path = tampered_chain(seed, data)
    if block is None:
        return
    assert block != chain[i]
    chain[i] = block
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(chain)
    assert err.value.index == i, f"{kind} {path} of block {i} reported as: {err.value}"


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data())
@settings(max_examples=300, deadline=None)
def test_any_resealed_edit_of_any_block_is_still_caught_at_that_block(seed: int, data: st.DataObject) -> None:
    chain, i, block, kind, path = tampered_chain(seed, data)
    if block is None or path[0] == "block_hash" or (kind == "drop" and path[0] == "block_votes"):
        return  # resealing undoes a block_hash edit; a smaller certificate is the consensus check's to refuse
    chain[i] = block.sealed()
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(chain)
    assert err.value.index == i, f"resealed {kind} {path} of block {i} reported as: {err.value}"


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data())
@settings(max_examples=100, deadline=None)
def test_reordered_chains_fail_at_the_first_misplaced_block(seed: int, data: st.DataObject) -> None:
    chain = list(chain_for(seed))
    i = data.draw(st.integers(0, len(chain) - 2))
    j = data.draw(st.integers(i + 1, len(chain) - 1))
    chain[i], chain[j] = chain[j], chain[i]
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(chain)
    assert err.value.index == i


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data())
@settings(max_examples=100, deadline=None)
def test_a_chain_with_a_block_missing_or_repeated_fails_there(seed: int, data: st.DataObject) -> None:
    chain = list(chain_for(seed))
    i = data.draw(st.integers(0, len(chain) - 2))
    if data.draw(st.booleans(), label="repeat"):
        broken = chain[: i + 1] + chain[i:]  # block i twice
        where = i + 1
    else:
        broken = chain[:i] + chain[i + 1 :]  # block i dropped
        where = i
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(broken)
    assert err.value.index == where


def test_an_empty_chain_is_invalid() -> None:
    with pytest.raises(InvalidBlockError, match="empty"):
        verify_chain([])


def test_a_chain_is_only_the_coalitions_if_its_genesis_is() -> None:
    chain = list(chain_for(0))
    verify_chain(chain, genesis_hash=chain[0].block_hash)
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(chain, genesis_hash=random_chain(0, 1, key_seed=b"another coalition").blocks[0].block_hash)
    assert err.value.index == 0


# --- a peer's garbage is an InvalidBlockError, never a crash ------------------------

junk = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**65), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=70), st.binary(max_size=70),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data(), replacement=junk)
@settings(max_examples=300, deadline=None)
def test_any_value_anywhere_is_refused_as_an_invalid_block(seed: int, data: st.DataObject, replacement: Any) -> None:
    chain = list(chain_for(seed))
    i = data.draw(st.integers(0, len(chain) - 1))
    d = copy.deepcopy(chain[i].to_dict())  # to_dict shares nested payload maps with the block
    _, path = data.draw(st.sampled_from([e for e in edits(d) if e[0] != "drop"]))
    parent = d
    for step in path[:-1]:
        parent = parent[step]
    if type(parent[path[-1]]) is type(replacement) and parent[path[-1]] == replacement:
        return
    parent[path[-1]] = replacement
    try:
        chain[i] = Block.from_dict(d)
    except InvalidBlockError:
        return
    with pytest.raises(InvalidBlockError):
        verify_chain(chain)
    if path[0] != "block_hash":  # resealing would undo that edit
        with pytest.raises(InvalidBlockError):
            verify_chain([c.sealed() if k == i else c for k, c in enumerate(chain)])


@given(seed=st.integers(0, N_CHAINS - 1), data=st.data())
@settings(max_examples=200, deadline=None)
def test_flipped_bytes_are_refused_as_an_invalid_block(seed: int, data: st.DataObject) -> None:
    chain = list(chain_for(seed))
    i = data.draw(st.integers(0, len(chain) - 1))
    raw = bytearray(chain[i].to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        k = data.draw(st.integers(0, len(raw) - 1))
        raw[k] ^= data.draw(st.integers(1, 255))
    try:
        block = Block.from_bytes(bytes(raw))
    except InvalidBlockError:
        return
    chain[i] = block
    if block == chain_for(seed)[i]:
        return  # cannot happen for canonical bytes, but would not be tampering
    with pytest.raises(InvalidBlockError) as err:
        verify_chain(chain)
    assert err.value.index == i


def test_every_kind_of_block_is_in_the_tampered_chains() -> None:
    kinds = {b.kind for s in range(N_CHAINS) for b in chain_for(s)}
    assert kinds == set(KINDS)
