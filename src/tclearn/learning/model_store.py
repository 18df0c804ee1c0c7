"""Content-addressed storage of model states (and increments), keyed by model hash.

Why content-addressed: at level A every node serves the models the ledger
names, and a hash is all a block holds. A store that files bytes under their
own hash, and checks the hash again on every read, cannot be tricked into
serving a model under another model's name, nor serve bytes corrupted on disk.
`put` also refuses bytes that are not the canonical safetensors form, so one
model has one name.

One small interface, two versions (in memory; one file per model in a
directory, written atomically), tested by one contract test.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Mapping

import torch

from tclearn.learning.errors import HashMismatchError, ModelNotFoundError
from tclearn.learning.serialize import State, hash_bytes, state_from_bytes, state_to_bytes
from tclearn.errors import LearningError
from tclearn.fsutil import atomic_write

__all__ = ["ModelStore", "MemoryModelStore", "DirectoryModelStore", "check_model_hash"]

_HASH_RE = re.compile(r"[0-9a-f]{64}")


def check_model_hash(value: str) -> str:
    """Return `value` if it is 64 lowercase hex characters, else raise LearningError."""
    if not isinstance(value, str) or not _HASH_RE.fullmatch(value):
        raise LearningError(f"not a model hash (64 lowercase hex characters): {value!r}")
    return value


class ModelStore(ABC):
    """Bytes of canonical model states, by the SHA-256 of those bytes."""

    def put(self, data: bytes, expected_hash: str | None = None) -> str:
        """Store canonical model bytes; return their hash.

        Raises InvalidModelError for bytes that are not a canonical model, and
        HashMismatchError when they do not hash to `expected_hash`.
        """
        data = bytes(data)
        h = hash_bytes(data)
        if expected_hash is not None and h != check_model_hash(expected_hash):
            raise HashMismatchError(f"bytes hash to {h}, not to the announced {expected_hash}")
        if not self.has(h):
            state_from_bytes(data, require_canonical=True)
            self._write(h, data)
        return h

    def get(self, model_hash: str) -> bytes:
        """The bytes stored under `model_hash`, checked against it."""
        data = self._read(check_model_hash(model_hash))
        if hash_bytes(data) != model_hash:
            raise HashMismatchError(f"stored bytes of {model_hash} are corrupted")
        return data

    def put_state(self, state: Mapping[str, torch.Tensor]) -> str:
        """Store a state dict in canonical form; return its model hash."""
        return self.put(state_to_bytes(state))

    def get_state(self, model_hash: str) -> State:
        """The state stored under `model_hash`."""
        return state_from_bytes(self.get(model_hash), require_canonical=False)

    @abstractmethod
    def has(self, model_hash: str) -> bool:
        """True if the store holds `model_hash`."""

    @abstractmethod
    def _write(self, model_hash: str, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, model_hash: str) -> bytes:
        """The raw bytes; ModelNotFoundError if absent."""


class MemoryModelStore(ModelStore):
    """A store in a dict, for tests and the in-process simulator."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    def has(self, model_hash: str) -> bool:
        return model_hash in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def _write(self, model_hash: str, data: bytes) -> None:
        self._blobs[model_hash] = data

    def _read(self, model_hash: str) -> bytes:
        try:
            return self._blobs[model_hash]
        except KeyError:
            raise ModelNotFoundError(f"model {model_hash} is not in the store") from None


class DirectoryModelStore(ModelStore):
    """One `<hash>.safetensors` file per model under `root/<first two hex>/`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, model_hash: str) -> Path:
        check_model_hash(model_hash)
        return self.root / model_hash[:2] / f"{model_hash}.safetensors"

    def has(self, model_hash: str) -> bool:
        return _HASH_RE.fullmatch(model_hash or "") is not None and self._path(model_hash).is_file()

    def _write(self, model_hash: str, data: bytes) -> None:
        atomic_write(self._path(model_hash), data, owner_only=True)

    def _read(self, model_hash: str) -> bytes:
        try:
            return self._path(model_hash).read_bytes()
        except FileNotFoundError:
            raise ModelNotFoundError(f"model {model_hash} is not in the store") from None
