"""Contribution accounting by data id: what a validator checks of a batch's id lists.

Why: D_i (and so every strength and committee draw) counts the samples a
member contributed, once each, the first time an accepted increment trains on
them (DESIGN.md §3). A proposal states how many of its samples are new and
how many are re-used, under two Merkle roots; the chain holds only the roots,
the lists travel off-chain. Before it scores a candidate, a validator checks
the lists against the proposal and against the ids the coalition has already
counted, and refuses, naming the id:

* a sample claimed as new that was already contributed (by anyone);
* a sample listed as re-used that was never contributed (it would be trained
  without ever being counted, and could later be claimed as new);
* a count that does not match its list, or a list that does not match its root;
* a sample of the global test set G (same key, so the same ids): training on
  G would inflate every score the committee relies on;
* an id listed twice.

`SpentIds` is the registry of counted ids a node keeps next to its chain: it
grows by each accepted increment's new ids, and is rebuilt by replaying them.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass

from tclearn.data.ids import check_data_id, merkle_root
from tclearn.errors import DataError

__all__ = ["BatchIds", "BatchRefused", "SpentIds", "check_batch_ids"]


class BatchRefused(DataError):
    """Raised when a batch's id lists break the contribution rules; `data_id` names the offending sample."""

    def __init__(self, message: str, data_id: str | None = None) -> None:
        super().__init__(message)
        self.data_id = data_id


@dataclass(frozen=True)
class BatchIds:
    """The id lists behind a proposal: new contributions and re-used samples."""

    new: tuple[str, ...]
    reused: tuple[str, ...] = ()


def check_batch_ids(
    ids: BatchIds,
    *,
    sample_count: int,
    data_ids_root: str,
    reused_count: int,
    reused_ids_root: str,
    spent: Container[str],
    test_ids: Container[str] = (),
) -> None:
    """Raise `BatchRefused` (naming the id) unless `ids` is an honest account of the proposal's batch."""
    for label, lst in (("new", ids.new), ("re-used", ids.reused)):
        for i in lst:
            try:
                check_data_id(i)
            except DataError:
                raise BatchRefused(f"a {label} id is not a data id: {i!r}"[:200]) from None
    if len(ids.new) != sample_count:
        raise BatchRefused(f"sample_count {sample_count} does not match the {len(ids.new)} new ids listed")
    if len(ids.reused) != reused_count:
        raise BatchRefused(f"reused_count {reused_count} does not match the {len(ids.reused)} re-used ids listed")
    seen: set[str] = set()
    for i in (*ids.new, *ids.reused):
        if i in seen:
            raise BatchRefused(f"sample {i} is listed twice in the batch", i)
        seen.add(i)
    if merkle_root(ids.new) != data_ids_root:
        raise BatchRefused("the new ids do not match data_ids_root")
    if merkle_root(ids.reused) != reused_ids_root:
        raise BatchRefused("the re-used ids do not match reused_ids_root")
    for i in (*ids.new, *ids.reused):
        if i in test_ids:
            raise BatchRefused(f"sample {i} belongs to the global test set G", i)
    for i in ids.new:
        if i in spent:
            raise BatchRefused(f"sample {i} is claimed as new but was already contributed", i)
    for i in ids.reused:
        if i not in spent:
            raise BatchRefused(f"sample {i} is listed as re-used but was never contributed", i)


class SpentIds:
    """The ids counted by accepted increments: grows block by block, rebuilt by replay."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._ids: set[str] = set(ids)

    def __contains__(self, data_id: object) -> bool:
        return data_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def accept(self, new_ids: Sequence[str]) -> None:
        """An accepted increment's new contributions become spent."""
        self._ids.update(new_ids)
