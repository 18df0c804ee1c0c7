"""What passes across the driver's seam: work taken from the core, its typed results, and a member's status.

A node runs evaluation and training apart from the core (`MemberDriver.take_work`,
`compute_work`, `finish_work`); these records are what travels between those
steps, so nothing there needs to look at an evaluator's modules or a
trainer's signature to know what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from tclearn.consensus.actions import Evaluate, Train
from tclearn.consensus.candidate import Candidate
from tclearn.consensus.height import HeightStatus
from tclearn.quality import PairedScores

__all__ = ["PendingWork", "Scored", "Trained", "RetryLater", "WorkResult", "MemberStatus"]


@dataclass(frozen=True)
class PendingWork:
    """An evaluation or training taken from the driver (a `Train` carries the hyper-parameters)."""

    action: Evaluate | Train


@dataclass(frozen=True)
class Scored:
    """An evaluation's scores; None when the candidate's model is invalid (the member votes reject)."""

    scores: PairedScores | None


@dataclass(frozen=True)
class Trained:
    """A training's candidate; None when the trainer passes its turn."""

    candidate: Candidate | None


@dataclass(frozen=True)
class RetryLater:
    """The evaluation cannot run yet (`NotYetError`: the model is not here): ask again later."""


WorkResult = Union[Scored, Trained, RetryLater]


@dataclass(frozen=True)
class MemberStatus:
    """What a host shows of a member: its chain head and the height it works on."""

    member_id: str
    height: int  # index of the last committed block
    head_hash: str
    work: HeightStatus  # the height being worked on, its phase and decisions
    commits: int
    evidence: int
    messages_sent: int
    pending_work: int
