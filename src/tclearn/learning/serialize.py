"""Canonical bytes and hashes of model states and increments (safetensors only).

Why canonical: the ledger names a model by the hash of its weights, so equal
weights must give equal bytes on every machine. The canonical form is the
safetensors file of the state with every tensor float32 (little-endian, as
safetensors always is), contiguous, on the CPU, names sorted, and no metadata.
`safetensors` writes its header with sorted keys and no padding that varies,
so the file is a pure function of names, shapes and values.

Why safetensors and never pickle: a peer's model file is untrusted input;
`torch.load` of a pickle runs code, `safetensors.torch.load` only parses a
JSON header and copies bytes.

Increments: `increment(new, old) = new − old` tensor by tensor, and the
candidate model is *defined* as `apply_increment(old, inc) = old + inc`
(float32 addition, exactly reproducible), not as the trainer's raw `new`: in
floating point `old + (new − old)` can differ from `new` in the last bit, and
only the reconstructed form is what every receiver of the increment gets.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from tclearn.learning.errors import InvalidModelError

__all__ = [
    "State",
    "canonical_state",
    "state_to_bytes",
    "state_from_bytes",
    "hash_bytes",
    "model_hash",
    "increment",
    "apply_increment",
    "increment_hash",
    "candidate_from",
    "states_equal",
]

State = dict[str, torch.Tensor]


def canonical_state(state: Mapping[str, torch.Tensor]) -> State:
    """A detached float32 contiguous CPU copy of `state`, names sorted."""
    out: State = {}
    for name in sorted(state):
        t = state[name]
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise InvalidModelError(f"state entry {name!r} is not a named tensor")
        if t.is_complex():
            raise InvalidModelError(f"state entry {name!r} is complex")
        out[name] = t.detach().to(device="cpu", dtype=torch.float32).contiguous().clone()
    return out


def state_to_bytes(state: Mapping[str, torch.Tensor]) -> bytes:
    """The canonical safetensors bytes of `state`."""
    return bytes(_st_save(canonical_state(state)))


def state_from_bytes(data: bytes, *, require_canonical: bool = True) -> State:
    """Parse safetensors bytes (safe for untrusted input). InvalidModelError if malformed.

    With `require_canonical`, bytes that are not exactly the canonical form of
    what they hold (other dtypes, metadata, other order) are refused too, so a
    model has one byte form and one hash.
    """
    try:
        loaded = _st_load(bytes(data))
        state = {name: loaded[name] for name in sorted(loaded)}
    except Exception as exc:  # safetensors raises its own error type and others
        raise InvalidModelError(f"not a safetensors model: {exc}") from None
    if require_canonical:
        if any(t.dtype != torch.float32 for t in state.values()):
            raise InvalidModelError("model tensors must be float32")
        if state_to_bytes(state) != bytes(data):
            raise InvalidModelError("model bytes are not in canonical form")
    return state


def hash_bytes(data: bytes) -> str:
    """64-character lowercase hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def model_hash(state: Mapping[str, torch.Tensor]) -> str:
    """Hash of the canonical bytes of `state`: equal weights, equal hash, everywhere."""
    return hash_bytes(state_to_bytes(state))


def _check_same_layout(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> None:
    if set(a) != set(b):
        diff = sorted(set(a) ^ set(b))
        raise InvalidModelError(f"states hold different tensors: {', '.join(diff[:5])}")
    for name in a:
        if a[name].shape != b[name].shape:
            raise InvalidModelError(f"tensor {name!r} has shape {tuple(a[name].shape)} vs {tuple(b[name].shape)}")


def increment(new: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor]) -> State:
    """`new − old`, tensor by tensor, in float32."""
    n, o = canonical_state(new), canonical_state(old)
    _check_same_layout(n, o)
    return {k: n[k] - o[k] for k in n}


def apply_increment(old: Mapping[str, torch.Tensor], inc: Mapping[str, torch.Tensor]) -> State:
    """`old + inc`, tensor by tensor, in float32: the candidate model an increment defines."""
    o, d = canonical_state(old), canonical_state(inc)
    _check_same_layout(o, d)
    return {k: o[k] + d[k] for k in o}


def candidate_from(new: Mapping[str, torch.Tensor], old: Mapping[str, torch.Tensor]) -> tuple[State, State]:
    """(increment, candidate) for a trained state `new` on parent `old`; candidate = old + (new − old)."""
    inc = increment(new, old)
    return inc, apply_increment(old, inc)


def increment_hash(inc: Mapping[str, torch.Tensor]) -> str:
    """Hash of an increment's canonical bytes (same form as a model)."""
    return model_hash(inc)


def states_equal(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    """True if both states hold the same names and bit-identical float32 values."""
    return state_to_bytes(a) == state_to_bytes(b)
