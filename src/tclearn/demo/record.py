"""What a demo run produced, as plain data: one record per block and the run's totals.

The coalition runner fills a `RunRecord`; `report.py` turns it into
`report.json`, PNG figures and the summary table. Keeping the record plain
(no torch, no blocks) lets the report be tested on its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BlockRecord", "RunRecord", "SliceExample"]


@dataclass
class BlockRecord:
    index: int
    kind: str
    contributor: str | None
    head_score: float  # score on G of the head model after this block
    score_old: float | None = None  # score on G of the parent model (increment/rejected)
    score_new: float | None = None  # score on G of the candidate (increment/rejected)
    votes_accept: int = 0
    votes_reject: int = 0
    strengths: dict[str, float] = field(default_factory=dict)
    malicious: bool = False
    block_hash: str = ""
    timestamp: int = 0
    elapsed_s: float = 0.0  # wall time from the start of the run to this block's commit

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SliceExample:
    """One axial CT slice with true and predicted masks (lists of lists, for JSON-free plotting)."""

    image: Any  # 2-D numpy array
    true_mask: Any
    predicted_mask: Any
    slice_index: int = 0


@dataclass
class RunRecord:
    task: str
    metric: str
    partners: int
    rounds: int
    committee: int
    lam: float
    seed: int
    blocks: list[BlockRecord] = field(default_factory=list)
    initial_score: float = 0.0
    final_score: float = 0.0
    centralized_score: float | None = None
    malicious: list[str] = field(default_factory=list)
    attack: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)
    wall_time_s: float = 0.0
    chain_verified: bool = False
    slice_example: SliceExample | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def proposals(self) -> list[BlockRecord]:
        return [b for b in self.blocks if b.kind in ("increment", "rejected")]

    @property
    def accepted(self) -> int:
        return sum(1 for b in self.blocks if b.kind == "increment")

    @property
    def rejected(self) -> int:
        return sum(1 for b in self.blocks if b.kind == "rejected")

    def honest_rejection_rate(self) -> float | None:
        """Share of honest partners' increments that were rejected (false rejections)."""
        honest = [b for b in self.proposals if not b.malicious]
        if not honest:
            return None
        return sum(1 for b in honest if b.kind == "rejected") / len(honest)

    def malicious_rejection_rate(self) -> float | None:
        bad = [b for b in self.proposals if b.malicious]
        if not bad:
            return None
        return sum(1 for b in bad if b.kind == "rejected") / len(bad)
