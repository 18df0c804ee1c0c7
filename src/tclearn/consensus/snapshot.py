"""What a member must remember across a crash to stay safe, for its current height.

Why: after a restart a member must not say anything that contradicts what it
said before the crash — a different prevote or precommit in a round it voted
in, a lock forgotten, a second quality vote for a candidate, a block vote for
another block, a second proposal. The core hands the driver a new snapshot
(`PersistSafety`) before the messages it covers; on restart the driver hands
the last snapshot back. A snapshot for a height the chain has already passed
is stale and ignored.

It also keeps `head_proof`, the seal certificate of the block before its
height (written right after that block is committed): the block's own
certificate fixes its content but not which vote set it carries, so a member
that lags at that height needs the proof from someone who committed it. Lost
in a restart, it left laggards waiting for a seal agreement whose other
validators had moved on (a stall the fault simulation found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from tclearn.errors import ConsensusError, EncodingError, InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.encoding import canonical_bytes, decode
from tclearn.consensus.votes import VoteCertificate
from tclearn.ledger.records import BlockVote, Proposal, QualityVote

__all__ = ["SafetySnapshot", "InstanceSnapshot"]


@dataclass(frozen=True)
class InstanceSnapshot:
    """One agreement's safety state."""

    locked_round: int = -1
    locked_value: Block | None = None
    valid_round: int = -1
    valid_value: Block | None = None
    votes: tuple[tuple[int, str, str | None], ...] = ()  # (round, phase, value id or None) we sent
    proposed: tuple[int, int, Block] | None = None  # (round, valid_round, value) of our latest proposal

    def to_dict(self) -> dict[str, Any]:
        return {
            "locked_round": self.locked_round,
            "locked_value": None if self.locked_value is None else self.locked_value.to_dict(),
            "valid_round": self.valid_round,
            "valid_value": None if self.valid_value is None else self.valid_value.to_dict(),
            "votes": [list(v) for v in self.votes],
            "proposed": None if self.proposed is None else [self.proposed[0], self.proposed[1],
                                                            self.proposed[2].to_dict()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "InstanceSnapshot":
        def block(x: Any) -> Block | None:
            return None if x is None else Block.from_dict(x)

        p = d["proposed"]
        return cls(
            locked_round=d["locked_round"], locked_value=block(d["locked_value"]),
            valid_round=d["valid_round"], valid_value=block(d["valid_value"]),
            votes=tuple((int(r), str(ph), v) for r, ph, v in d["votes"]),
            proposed=None if p is None else (p[0], p[1], Block.from_dict(p[2])),
        )


@dataclass(frozen=True)
class SafetySnapshot:
    """Everything signed or voted at `height` that must survive a restart."""

    height: int
    proposal: Proposal | None = None
    quality_votes: tuple[QualityVote, ...] = ()
    block_vote: BlockVote | None = None
    instances: dict[str, InstanceSnapshot] = field(default_factory=dict)
    head_proof: VoteCertificate | None = None  # seal proof of block height − 1

    def to_bytes(self) -> bytes:
        return canonical_bytes({
            "head_proof": None if self.head_proof is None else self.head_proof.to_wire(),
            "height": self.height,
            "proposal": None if self.proposal is None else self.proposal.to_dict(),
            "quality_votes": [v.to_dict() for v in self.quality_votes],
            "block_vote": None if self.block_vote is None else self.block_vote.to_dict(),
            "instances": {name: inst.to_dict() for name, inst in self.instances.items()},
        })

    @classmethod
    def from_bytes(cls, data: bytes) -> "SafetySnapshot":
        try:
            d = decode(data)
            return cls(
                height=d["height"],
                proposal=None if d["proposal"] is None else Proposal.from_dict(d["proposal"]),
                quality_votes=tuple(QualityVote.from_dict(v) for v in d["quality_votes"]),
                block_vote=None if d["block_vote"] is None else BlockVote.from_dict(d["block_vote"]),
                instances={name: InstanceSnapshot.from_dict(i) for name, i in d["instances"].items()},
                head_proof=None if d.get("head_proof") is None else VoteCertificate.from_wire(d["head_proof"]),
            )
        except (EncodingError, InvalidBlockError, KeyError, TypeError, ValueError) as exc:
            raise ConsensusError(f"safety snapshot is corrupt: {exc}") from None
