"""What the core asks its driver to do: the only way it acts on the world.

The core returns a list of actions from every input; the driver carries them
out *in order*. The order is part of the protocol: a `PersistSafety` comes
before the `Send`s whose votes it records, and an `AppendBlock` before the
attestation of that block, so a crash between two actions never leaves a
member that has said more than it remembers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from tclearn.consensus.evidence import Evidence
from tclearn.consensus.messages import Message
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.ledger.block import Block

__all__ = ["Send", "AppendBlock", "PersistSafety", "Evaluate", "Train", "ServeBlocks", "ServeHead", "Committed",
           "RecordEvidence", "Action"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to each member of `to`."""

    to: tuple[str, ...]
    message: Message


@dataclass(frozen=True, slots=True)
class AppendBlock:
    """Append `block` (verified, certificate included) to the chain store, durably."""

    block: Block


@dataclass(frozen=True, slots=True)
class PersistSafety:
    """Replace the stored safety snapshot (votes, locks, own records of the height) by this one."""

    snapshot: SafetySnapshot


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Score the parent and the candidate (`Evaluator.evaluate`), then call `core.on_evaluated`."""

    height: int
    proposal_hash: str
    parent_model_hash: str
    candidate_model_hash: str


@dataclass(frozen=True, slots=True)
class Train:
    """Produce a candidate from the head model (`Trainer.train`), then call `core.on_trained`.

    `hyperparams`: the chain's values at the parent block (genesis, as changed by `hyperparams` blocks).
    """

    height: int
    parent_model_hash: str
    hyperparams: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class ServeBlocks:
    """Send `to` a BlocksResponse with our blocks from `from_index` (at most `max_count`)."""

    to: str
    from_index: int
    max_count: int


@dataclass(frozen=True, slots=True)
class ServeHead:
    """Send `to` a CommittedMsg naming our block at `height`, if we have it."""

    to: str
    height: int


@dataclass(frozen=True, slots=True)
class Committed:
    """Notification: `block` is committed (already appended by the AppendBlock before it)."""

    block: Block


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """Keep `evidence` of a peer's misbehaviour (an audit log; never a reason to crash)."""

    evidence: Evidence


Action = Union[Send, AppendBlock, PersistSafety, Evaluate, Train, ServeBlocks, ServeHead, Committed, RecordEvidence]
