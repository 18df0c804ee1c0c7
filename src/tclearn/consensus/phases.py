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

* `HEIGHT_INPUTS`: which messages of the current height a member takes, by
  its role at the height (validator or observer) and the phase. The height's
  coordinator (`height.Height.on_message`) asks `admit` before any handler
  runs: `ACCEPT` hands the message to the part that owns it, `IGNORE` drops it
  silently (a role that takes no part in that exchange: an observer is sent
  no votes by honest peers, and nothing can be learnt from them), and a
  message the table does not list is a protocol error — the peer's fault,
  recorded as `invalid-message` evidence against the sender, never raised.

A committed height still takes what the message that committed it was
buffered with (the core hands the buffered messages of the new height over
in one go, see `core._after_commit`), hence the same row as CERTIFYING.
"""

from __future__ import annotations

import enum

from tclearn.errors import ConsensusError

__all__ = [
    "Step", "RoundEvent", "ROUND_TRANSITIONS", "next_step",
    "HeightPhase", "HeightEvent", "HEIGHT_TRANSITIONS", "next_phase",
    "Role", "Admission", "HEIGHT_INPUTS", "IGNORED_BY", "admit",
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


class Role(enum.Enum):
    VALIDATOR = "validator"  # drawn into the committee of the height
    OBSERVER = "observer"  # any other member: appends what the committee certifies


class Admission(enum.Enum):
    ACCEPT = "accept"
    IGNORE = "ignore"
    REFUSE = "refuse"


# Messages of the current height, by the name of their class (`consensus.messages`).
_QUALITY = frozenset({"ProposalMsg", "QualityVoteMsg", "GovernanceMsg"})  # the quality round
_CERTIFY = frozenset({"BlockVoteMsg", "CommittedMsg"})  # certification and attestation
_AGREE = frozenset({"RoundProposal", "RoundVotes", "DecidedMsg", "ValueRequest", "ValueReply"})  # the agreements
_ALL = _QUALITY | _CERTIFY | _AGREE

HEIGHT_INPUTS: dict[tuple[Role, HeightPhase], frozenset[str]] = {
    # a validator takes every exchange of the height until it is committed: late proposals and quality votes
    # still carry evidence (equivocation), late agreement votes may be the decision a laggard lacks
    (Role.VALIDATOR, HeightPhase.WAITING): _ALL,
    (Role.VALIDATOR, HeightPhase.AGREEING): _ALL,
    (Role.VALIDATOR, HeightPhase.CERTIFYING): _ALL,
    (Role.VALIDATOR, HeightPhase.COMMITTED): _ALL,
    # an observer only learns the outcome: attestations, and the block (with its proof) from a validator
    (Role.OBSERVER, HeightPhase.WAITING): frozenset({"CommittedMsg"}),
    (Role.OBSERVER, HeightPhase.AGREEING): frozenset({"CommittedMsg"}),
    (Role.OBSERVER, HeightPhase.CERTIFYING): frozenset({"CommittedMsg"}),
    (Role.OBSERVER, HeightPhase.COMMITTED): frozenset({"CommittedMsg"}),
}

# What a role drops without complaint: exchanges it takes no part in.
IGNORED_BY: dict[Role, frozenset[str]] = {
    Role.VALIDATOR: frozenset(),
    Role.OBSERVER: _QUALITY | frozenset({"BlockVoteMsg"}) | _AGREE,
}


def admit(role: Role, phase: HeightPhase, kind: str) -> Admission:
    """Whether a member in `role` and `phase` takes a message of class `kind` (see `HEIGHT_INPUTS`)."""
    if kind in HEIGHT_INPUTS[(role, phase)]:
        return Admission.ACCEPT
    if kind in IGNORED_BY[role]:
        return Admission.IGNORE
    return Admission.REFUSE
