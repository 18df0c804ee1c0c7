"""Errors of the learning layer, under `tclearn.errors.LearningError`.

Why separate classes: the consensus driver must tell a *peer's* bad model
(undecodable bytes, wrong architecture, bytes that do not hash to the name
they were sent under: evidence against the proposer, a reason to vote
reject) from a model we simply do not hold yet (fetch it, then retry).
"""

from __future__ import annotations

from tclearn.errors import LearningError, NotYetError

__all__ = ["InvalidModelError", "ModelNotFoundError", "HashMismatchError"]


class InvalidModelError(LearningError):
    """Raised when bytes or a state dict are not a valid model of the task's architecture."""


class HashMismatchError(InvalidModelError):
    """Raised when model bytes do not hash to the name they were given under."""


class ModelNotFoundError(NotYetError):
    """Raised when a model store does not hold the asked-for hash."""
