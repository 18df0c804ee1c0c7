"""Chain storage behind one small interface: in memory, and SQLite (see sqlite_store).

A store is append-only: it refuses a block whose index or parent hash does
not follow its head, and an append is all or nothing. It checks linkage only;
full verification (signatures, certificates) is the caller's job, done before
appending (`tclearn.ledger.verify`).
"""

from __future__ import annotations

import abc
from typing import Iterator

from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import ZERO_HASH, Block

__all__ = ["ChainStore", "MemoryChainStore", "check_follows"]


def check_follows(head: Block | None, block: Block) -> None:
    """Raise InvalidBlockError unless `block` is the next block after `head`."""
    expected_index = 0 if head is None else head.index + 1
    expected_prev = ZERO_HASH if head is None else head.block_hash
    if block.index != expected_index:
        raise InvalidBlockError(block.index, f"index {block.index} does not follow the head (expected {expected_index})")
    if block.prev_hash != expected_prev:
        raise InvalidBlockError(block.index, "prev_hash does not link to the head")
    if block.block_hash != block.compute_hash():
        raise InvalidBlockError(block.index, "block_hash does not match its contents")


class ChainStore(abc.ABC):
    """An append-only chain of blocks."""

    @abc.abstractmethod
    def append(self, block: Block) -> None:
        """Append `block` durably, or raise and change nothing."""

    @abc.abstractmethod
    def get(self, index: int) -> Block:
        """The block at `index` (IndexError if absent)."""

    @abc.abstractmethod
    def height(self) -> int:
        """Index of the head block; -1 for an empty store."""

    def head(self) -> Block | None:
        h = self.height()
        return None if h < 0 else self.get(h)

    def __len__(self) -> int:
        return self.height() + 1

    def __iter__(self) -> Iterator[Block]:
        for i in range(self.height() + 1):
            yield self.get(i)

    def blocks_from(self, start: int) -> list[Block]:
        return [self.get(i) for i in range(max(0, start), self.height() + 1)]

    def blocks_range(self, start: int, count: int) -> list[Block]:
        """At most `count` blocks from index `start` (fewer at the head); reads only those."""
        start = max(0, start)
        return [self.get(i) for i in range(start, min(self.height() + 1, start + max(0, count)))]

    def close(self) -> None:
        """Release resources (no-op for memory)."""


class MemoryChainStore(ChainStore):
    def __init__(self) -> None:
        self._blocks: list[Block] = []

    def append(self, block: Block) -> None:
        check_follows(self._blocks[-1] if self._blocks else None, block)
        self._blocks.append(block)

    def get(self, index: int) -> Block:
        if index < 0:
            raise IndexError(index)
        return self._blocks[index]

    def height(self) -> int:
        return len(self._blocks) - 1
