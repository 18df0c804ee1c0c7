"""What a driver is handed: the seams between the protocol and the world.

A member's driver needs an evaluator and (to propose) a trainer from the
learning side, a transport and a clock from the node or the simulator, and
storage. These are small protocols, so a test passes a fake, the simulator a
synthetic one, and the node the real thing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tclearn.consensus.candidate import Candidate
from tclearn.consensus.messages import Message
from tclearn.quality import PairedScores

__all__ = ["Candidate", "Clock", "Evaluator", "Trainer", "Transport"]


@runtime_checkable
class Evaluator(Protocol):
    """Scores the head model and a candidate on G and on this member's L.

    Raising `tclearn.errors.NotYetError` (`ModelNotFoundError` is one) means
    "not yet": the driver asks again later. Any other `LearningError` means the
    candidate is invalid: the member votes reject.
    """

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores: ...


@runtime_checkable
class Trainer(Protocol):
    """Trains the head model on this member's data: the candidate to propose, or None to pass the turn.

    `hyperparams`: the chain's current hyper-parameters (genesis values, as
    changed by `hyperparams` blocks), carried by the core's `Train` action.
    """

    def train(self, parent_model_hash: str, height: int,
              hyperparams: dict[str, Any] | None = None) -> Candidate | None: ...


@runtime_checkable
class Transport(Protocol):
    """Delivers a message to one member. Fire and forget: losses are the protocol's business."""

    def send(self, to: str, message: Message) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in integer milliseconds (block timestamps)."""

    def now_ms(self) -> int: ...
