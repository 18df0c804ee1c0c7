"""The genesis adaptive learning-rate policy, carried out by a node: ask for a `hyperparams` block.

Why here and why one asker: `Progress.next_learning_rate` reads the chain, so
every node reaches the same answer at the same height. If every node asked,
each would keep renewing its own request after the first block carried one
(renewal drops only a member's own request) and the chain would record the
same change several times. So the member scheduled to propose the next
height asks (`committee.proposer_of`, the same on every node), once per stall:
the `hyperparams` block resets the stall, and `asked_at` remembers the last
`hyperparams` height we asked after. If that member is down, the next
height's proposer asks after the next commit. The one-process demo asks
once per stall too, from its observer (`demo/engine.py`), whoever proposes
next: both ask as soon as they have committed the block that shows the
stall, but the member named as requester in the `hyperparams` block
differs, and with it the block's bytes and every later committee draw
(unifying them would change every benchmark chain with the policy).
"""

from __future__ import annotations

from typing import Callable

from tclearn.consensus.committee import proposer_of
from tclearn.consensus.progress import Progress
from tclearn.errors import ConsensusError
from tclearn.ledger.policies import LearningRatePolicy
from tclearn.ledger.state import ChainState

__all__ = ["LearningRateAsker"]


class LearningRateAsker:
    """Asks for the lower learning rate the genesis policy calls for, when it is this member's turn."""

    def __init__(self, member_id: str, policy: LearningRatePolicy, log: Callable[..., None]) -> None:
        self.member_id, self.policy, self.log = member_id, policy, log
        self.asked_at: int | None = None  # Progress.last_hyperparams when we last asked

    def after_commit(self, progress: Progress, state: ChainState,
                     request: Callable[[dict[str, float | int]], None]) -> float | None:
        """`progress` and `state` include the block just committed; the rate asked for, or None.

        The request also caps the epochs when the policy says so (`Progress.next_hyperparams`).
        """
        ask = progress.next_hyperparams(self.policy)
        if ask is None or self.asked_at == progress.last_hyperparams:
            return None
        if proposer_of(state, state.height + 1) != self.member_id:
            return None
        self.asked_at = progress.last_hyperparams
        new_lr = float(ask["learning_rate"])
        try:
            request(ask)
        except ConsensusError as exc:
            self.log("adaptive_lr_refused", learning_rate=new_lr, reason=str(exc)[:200])
            return None
        self.log("adaptive_lr_requested", height=state.height + 1, **ask)
        return new_lr
