"""One contract test for both model stores (memory, directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save as st_save

from tclearn.errors import LearningError
from tclearn.learning import (
    DirectoryModelStore,
    HashMismatchError,
    InvalidModelError,
    MemoryModelStore,
    ModelNotFoundError,
    ModelStore,
    model_hash,
    state_to_bytes,
)

STATE = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2)}


@pytest.fixture(params=["memory", "directory"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ModelStore]:
    if request.param == "memory":
        store = MemoryModelStore()
        return lambda: store
    return lambda: DirectoryModelStore(tmp_path / "models")


def test_put_get_has(make_store: Callable[[], ModelStore]) -> None:
    store = make_store()
    data = state_to_bytes(STATE)
    h = store.put(data)
    assert h == model_hash(STATE) and store.has(h)
    assert store.put(data, expected_hash=h) == h  # idempotent
    assert make_store().get(h) == data  # a directory store persists
    assert torch.equal(store.get_state(h)["w"], STATE["w"])
    assert store.put_state({k: v.double() for k, v in STATE.items()}) == h
    assert not store.has("0" * 64)


def test_refusals(make_store: Callable[[], ModelStore]) -> None:
    store = make_store()
    data = state_to_bytes(STATE)
    with pytest.raises(HashMismatchError):
        store.put(data, expected_hash="0" * 64)
    with pytest.raises(InvalidModelError):
        store.put(st_save(STATE, metadata={"note": "same weights, other bytes"}))
    with pytest.raises(InvalidModelError):
        store.put(b"garbage")
    with pytest.raises(ModelNotFoundError):
        store.get("a" * 64)
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(LearningError):
            store.get(bad)
        assert not store.has(bad)


def test_directory_store_detects_corruption(tmp_path: Path) -> None:
    store = DirectoryModelStore(tmp_path)
    h = store.put_state(STATE)
    path = tmp_path / h[:2] / f"{h}.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(HashMismatchError):
        store.get(h)
    assert not list(tmp_path.rglob(".tmp-*"))
