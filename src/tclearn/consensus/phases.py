"""Every phase transition of the protocol, as data, in this one file.

Two tables:

* `ROUND_TRANSITIONS`: the steps of one round of an agreement (Tendermint's
  propose → prevote → precommit, then a new round or a decision). The
  agreement code never assigns a step itself; it asks `next_step`, which
  raises `ConsensusError` on a transition that is not in the table — a bug of
  ours, never a peer's doing.
* `HEIGHT_TRANSITIONS`: the life of one height at a member: waiting for a
  candidate, agreeing on the block, certifying it (block votes), agreeing on
  the sealed block, committed.

Reading guide (per height, at a validator):

    WAITING ──candidate──▶ AGREEING ──block decided──▶ CERTIFYING
        │                     │                          │
        └──────────────── sealed block committed ────────┴──▶ COMMITTED

A non-validator goes straight from WAITING to COMMITTED when enough committee
members attest the block (or a later certified block links to it).
"""

from __future__ import annotations

import enum

from tclearn.errors import ConsensusError

__all__ = [
    "Step", "RoundEvent", "ROUND_TRANSITIONS", "next_step",
    "HeightPhase", "HeightEvent", "HEIGHT_TRANSITIONS", "next_phase",
]


class Step(enum.Enum):
    PROPOSE = "propose"
    PREVOTE = "prevote"
    PRECOMMIT = "precommit"
    DECIDED = "decided"


class RoundEvent(enum.Enum):
    PREVOTED = "prevoted"  # sent our prevote (the proposal, or nil on timeout / invalid proposal)
    PRECOMMITTED = "precommitted"  # sent our precommit (a polka's value, or nil)
    NEW_ROUND = "new-round"  # precommit timeout, or f+1 members seen in a later round
    DECIDED = "decided"  # a quorum of precommits for a known valid value, in any round


ROUND_TRANSITIONS: dict[tuple[Step, RoundEvent], Step] = {
    (Step.PROPOSE, RoundEvent.PREVOTED): Step.PREVOTE,
    (Step.PREVOTE, RoundEvent.PRECOMMITTED): Step.PRECOMMIT,
    (Step.PROPOSE, RoundEvent.NEW_ROUND): Step.PROPOSE,
    (Step.PREVOTE, RoundEvent.NEW_ROUND): Step.PROPOSE,
    (Step.PRECOMMIT, RoundEvent.NEW_ROUND): Step.PROPOSE,
    (Step.PROPOSE, RoundEvent.DECIDED): Step.DECIDED,
    (Step.PREVOTE, RoundEvent.DECIDED): Step.DECIDED,
    (Step.PRECOMMIT, RoundEvent.DECIDED): Step.DECIDED,
}


def next_step(step: Step, event: RoundEvent) -> Step:
    try:
        return ROUND_TRANSITIONS[(step, event)]
    except KeyError:
        raise ConsensusError(f"illegal round transition: {event.value} in step {step.value}") from None


class HeightPhase(enum.Enum):
    WAITING = "waiting"  # for a candidate (or a governance request) and quality votes
    AGREEING = "agreeing"  # agreement on the unsealed block under way
    CERTIFYING = "certifying"  # block decided, our block vote sent; agreeing on the sealed block
    COMMITTED = "committed"


class HeightEvent(enum.Enum):
    AGREEMENT_STARTED = "agreement-started"
    BLOCK_DECIDED = "block-decided"
    COMMITTED = "committed"


HEIGHT_TRANSITIONS: dict[tuple[HeightPhase, HeightEvent], HeightPhase] = {
    (HeightPhase.WAITING, HeightEvent.AGREEMENT_STARTED): HeightPhase.AGREEING,
    (HeightPhase.WAITING, HeightEvent.BLOCK_DECIDED): HeightPhase.CERTIFYING,  # a quorum of block votes seen first
    (HeightPhase.AGREEING, HeightEvent.BLOCK_DECIDED): HeightPhase.CERTIFYING,
    (HeightPhase.WAITING, HeightEvent.COMMITTED): HeightPhase.COMMITTED,
    (HeightPhase.AGREEING, HeightEvent.COMMITTED): HeightPhase.COMMITTED,
    (HeightPhase.CERTIFYING, HeightEvent.COMMITTED): HeightPhase.COMMITTED,
}


def next_phase(phase: HeightPhase, event: HeightEvent) -> HeightPhase:
    try:
        return HEIGHT_TRANSITIONS[(phase, event)]
    except KeyError:
        raise ConsensusError(f"illegal height transition: {event.value} in phase {phase.value}") from None
