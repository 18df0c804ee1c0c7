"""Canonical model bytes and hashes; safetensors round trip; increments."""

from __future__ import annotations

import hashlib
import pickle
import re
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from tclearn.learning import (
    InvalidModelError,
    Task,
    apply_increment,
    candidate_from,
    canonical_state,
    increment,
    increment_hash,
    model_hash,
    state_from_bytes,
    state_to_bytes,
    states_equal,
)


def test_pinned_vector() -> None:
    """The canonical form must not drift between versions: pin one tiny state's bytes."""
    state = {"b": torch.zeros(2, 2, dtype=torch.float64), "a": torch.tensor([1.0, 2.0])}
    header = (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
              b'"b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}')
    header += b" " * (-len(header) % 8)  # safetensors pads the header with spaces to 8 bytes
    expected = struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0) + bytes(16)
    assert state_to_bytes(state) == expected
    assert model_hash(state) == hashlib.sha256(expected).hexdigest()
    assert model_hash(state) == "74c603de12aee1647b7cbfb999d5d2404b70891ff11439a0f02c2aa6a8d745fd"


def test_same_weights_same_hash(digits_task: Task) -> None:
    a = digits_task.build_model(7).state_dict()
    b = digits_task.build_model(7).state_dict()
    h = model_hash(a)
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == model_hash(b) == model_hash(dict(reversed(list(a.items()))))
    assert h == model_hash({k: v.double() for k, v in a.items()})  # stored as float32 whatever the input
    assert h == model_hash(state_from_bytes(state_to_bytes(a)))
    assert h != model_hash(digits_task.build_model(8).state_dict())


def test_one_bit_changes_the_hash(digits_task: Task) -> None:
    state = canonical_state(digits_task.build_model(0).state_dict())
    h = model_hash(state)
    name = sorted(state)[0]
    flipped = dict(state)
    t = state[name].clone()
    t.view(torch.int32).view(-1)[3] ^= 1  # the lowest mantissa bit of one weight
    flipped[name] = t
    assert model_hash(flipped) != h
    assert not states_equal(state, flipped)


def test_round_trip_and_refusals(digits_task: Task) -> None:
    state = canonical_state(digits_task.build_model(0).state_dict())
    data = state_to_bytes(state)
    back = state_from_bytes(data)
    assert list(back) == sorted(state) and all(torch.equal(back[k], state[k]) for k in state)
    with pytest.raises(InvalidModelError):
        state_from_bytes(b"not safetensors at all")
    with pytest.raises(InvalidModelError):
        state_from_bytes(pickle.dumps(state))  # never unpickled
    with_meta = st_save(state, metadata={"who": "me"})
    assert state_from_bytes(with_meta, require_canonical=False).keys() == state.keys()
    with pytest.raises(InvalidModelError, match="canonical"):
        state_from_bytes(with_meta)
    with pytest.raises(InvalidModelError, match="float32"):
        state_from_bytes(st_save({k: v.double() for k, v in state.items()}))


def test_increment_round_trip(digits_task: Task) -> None:
    old = canonical_state(digits_task.build_model(0).state_dict())
    new = {k: v * 1.01 + 0.003 for k, v in old.items()}
    inc, candidate = candidate_from(new, old)
    assert all(torch.allclose(candidate[k], new[k], atol=1e-6) for k in new)
    # a receiver that gets the increment's bytes rebuilds the candidate bit for bit
    received = state_from_bytes(state_to_bytes(inc))
    assert model_hash(apply_increment(old, received)) == model_hash(candidate)
    assert increment_hash(inc) == model_hash(received)
    assert all(torch.equal(increment(old, old)[k], torch.zeros_like(old[k])) for k in old)
    with pytest.raises(InvalidModelError):
        apply_increment(old, {k: v for k, v in list(inc.items())[1:]})
    bad = dict(inc)
    name = sorted(bad)[0]
    bad[name] = torch.zeros(3)
    with pytest.raises(InvalidModelError, match="shape"):
        apply_increment(old, bad)
