"""The model's course along a chain: which blocks a later revert outshone, and what governance changed.

Why: a reader of `tclearn chain show` (or any tool listing blocks) should see
the story of the model, not just a list of kinds. A `revert` block to target
j at index r makes block j's model the head again: the models that the
increments (and reverts) between j and r put at the head are *outshone* —
they stay on the chain, their samples stay counted and their contributors'
strengths unchanged (strengths are computed from accepted increments; a
revert changes only the head model), but training continues from block j.
Rejected candidates in that stretch never were the head, and hyper-parameter
and membership blocks stay in force, so neither is marked.

Pure and read-only: it takes blocks (any iterable, from `start` to the head)
and returns one `Course` per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from tclearn.ledger.block import Block

__all__ = ["Course", "OUTSHONE_KINDS", "course_of"]

OUTSHONE_KINDS = ("increment", "revert")  # kinds whose model a later revert can discard


@dataclass(frozen=True)
class Course:
    """One block's place in the model's course."""

    index: int
    reverted_by: int | None  # index of the revert that discarded this block's model, if any
    change: dict[str, Any] | None  # revert: {revert_to}; hyperparams: {hyperparams}; membership: {added, removed}

    @property
    def note(self) -> str:
        """A short line for a table: the governance change, then the revert that outshone the block."""
        parts = []
        c = self.change or {}
        if "revert_to" in c:
            parts.append(f"revert to block {c['revert_to']}")
        if "hyperparams" in c:
            parts.append("hyperparams " + ", ".join(f"{k}={v}" for k, v in sorted(c["hyperparams"].items())))
        if "added" in c or "removed" in c:
            parts.append("members " + " ".join([f"+{m}" for m in c.get("added", [])]
                                                 + [f"-{m}" for m in c.get("removed", [])]))
        if self.reverted_by is not None:
            parts.append(f"outshone by revert {self.reverted_by}")
        return "; ".join(parts)


def _change(block: Block) -> dict[str, Any] | None:
    p = block.payload
    if block.kind == "revert":
        return {"revert_to": p.get("target")}
    if block.kind == "hyperparams":
        return {"hyperparams": dict(p.get("hyperparams", {}))}
    if block.kind == "membership":
        return {"added": [str(m.get("id")) for m in p.get("add", []) if isinstance(m, dict)],
                "removed": [str(m) for m in p.get("remove", [])]}
    return None


def course_of(blocks: Iterable[Block]) -> list[Course]:
    """One `Course` per block, in order; a revert marks the earlier blocks in the list it outshines.

    Pass the blocks from the first one to show up to the head: a revert after
    the window still marks blocks in it.
    """
    listed = list(blocks)
    first = listed[0].index if listed else 0
    reverted_by: dict[int, int] = {}
    for b in listed:
        if b.kind != "revert":
            continue
        target = b.payload.get("target")
        if not isinstance(target, int) or isinstance(target, bool):
            continue
        for i in range(max(target + 1, first), b.index):
            if listed[i - first].kind in OUTSHONE_KINDS:
                reverted_by.setdefault(i, b.index)  # the first revert that discarded it
    return [Course(b.index, reverted_by.get(b.index), _change(b)) for b in listed]
