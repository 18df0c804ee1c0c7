"""Evidence of a peer's misbehaviour: recorded, never raised.

A peer's invalid or contradictory message is the peer's fault, not a reason
for us to stop (h11's RemoteProtocolError, turned into a record). Evidence
built from two signed records of the same member (two quality votes, two
block votes) convinces anyone; the rest (an invalid block, two different
prevotes seen on one authenticated channel) is our own observation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Evidence", "EVIDENCE_KINDS"]

EVIDENCE_KINDS = (
    "quality-vote-equivocation",  # two different signed quality votes for one candidate (transferable)
    "block-vote-equivocation",  # two signed block votes for different blocks at one height (transferable)
    "proposal-equivocation",  # two different signed proposals by one proposer at one height (transferable)
    "vote-equivocation",  # two different prevotes / precommits in one round (observed)
    "round-proposal-equivocation",  # a general proposed two values in one round (observed)
    "invalid-block",  # a proposed or announced block that does not verify
    "attest-equivocation",  # attested two different blocks at one height (observed)
    "invalid-message",  # anything else a peer should not have sent
)


@dataclass(frozen=True)
class Evidence:
    kind: str
    member: str  # who misbehaved
    height: int
    reason: str
    records: tuple[dict[str, Any], ...] = field(default=())  # signed records, as dicts, when transferable

    def __post_init__(self) -> None:
        if self.kind not in EVIDENCE_KINDS:
            raise ValueError(f"unknown evidence kind {self.kind!r}")
