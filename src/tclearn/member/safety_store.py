"""Where a member keeps its safety snapshot: in memory, or in a file.

The snapshot holds what the member signed or voted at its current height
(see `tclearn.consensus.snapshot`). Only the latest one matters, so a store
keeps one. The file store replaces it atomically (write, fsync, rename): a
crash leaves either the old snapshot or the new one, never half of one.
"""

from __future__ import annotations

import abc
from pathlib import Path

from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.errors import StoreError
from tclearn.fsutil import atomic_write

__all__ = ["SafetyStore", "MemorySafetyStore", "FileSafetyStore"]


class SafetyStore(abc.ABC):
    @abc.abstractmethod
    def load(self) -> SafetySnapshot | None:
        """The last snapshot saved, or None."""

    @abc.abstractmethod
    def save(self, snapshot: SafetySnapshot) -> None:
        """Replace the stored snapshot, durably, before returning."""


class MemorySafetyStore(SafetyStore):
    """For tests and the simulator: survives a simulated crash (the object outlives the driver)."""

    def __init__(self) -> None:
        self._snapshot: SafetySnapshot | None = None
        self.saves = 0

    def load(self) -> SafetySnapshot | None:
        return self._snapshot

    def save(self, snapshot: SafetySnapshot) -> None:
        self._snapshot = snapshot
        self.saves += 1


class FileSafetyStore(SafetyStore):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> SafetySnapshot | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read safety snapshot {self.path}: {exc.strerror}") from None
        return SafetySnapshot.from_bytes(data)

    def save(self, snapshot: SafetySnapshot) -> None:
        atomic_write(self.path, snapshot.to_bytes(), owner_only=True)
