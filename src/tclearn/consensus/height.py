"""One member's work on one height, from the candidate to the committed block.

Theory of operation (the protocol at one height h; `core` says why it is safe):

1. The committee is drawn from the chain (`committee.committee_for`). The
   scheduled proposer trains and sends a signed proposal to the validators;
   if none arrives, the next proposer in turn may step in after
   `proposal_timeout_ticks` (validators evaluate a fallback's proposal only
   once its turn has come).
2. Each validator evaluates the candidate (an `Evaluate` action; the answer
   comes back through `on_evaluated`), judges it with `tclearn.quality.judge`
   and λ from genesis, and sends its signed quality vote, with the proposal,
   to the other validators. Two different signed votes of one validator are
   evidence; the general puts them in the block and its vote does not count.
3. Agreement "block": each round's general builds the block once the votes
   decide (`rules.decide_kind`), or a governance block from a signed request,
   signs it and proposes it; validators accept only a block that passes every
   check of the ledger and of the certificate but the block votes.
4. Once the block is decided — by that agreement, or by seeing q block votes
   for one signing hash, which proves it — the validator signs its single
   block vote of the height, for that block, and sends it to the validators.
5. Agreement "seal": values are sealed blocks (the decided block with ≥ q
   block votes). The block hash covers the votes, so members must agree on
   which votes it carries; this agreement settles it.
6. The decided sealed block is appended; each validator attests its hash to
   every member (the first general in order sends members outside the
   committee the block itself), and shows a validator still working on the
   height the block and the signed seal precommits that decided it.
   A member outside the committee appends a verified block once a quorum of
   validators attest it (honest validators attest only the decided seal), or
   on such a proof; a lagging validator likewise.

The parts, each owning its state: `QualityRound` (steps 1–2: proposals,
evaluations, quality votes), `UnsealedBlocks` (step 3: the block a general
builds, and the check of others'), `Certification` (steps 4–6:
block votes, the sealed block, the commit, attestations) and `Agreements`
(the two Tendermint instances). They share a `HeightContext` (facts, clock,
ordered outbox, phase). `Height` is the coordinator: `phases.admit` decides,
from our role and the height's phase, whether a message is handed to the part
that owns it, dropped, or refused as a protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tclearn.consensus.actions import Action, PersistSafety
from tclearn.consensus.agreements import Agreements
from tclearn.consensus.candidate import Candidate
from tclearn.consensus.certification import Certification
from tclearn.consensus.committee import Committee
from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.height_context import HeightContext
from tclearn.consensus.messages import GovernanceMsg, Message, VoteCertificate
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import Admission, HeightPhase, admit
from tclearn.consensus.quality_round import QualityRound
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.consensus.unsealed import UnsealedBlocks
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState
from tclearn.quality import PairedScores

__all__ = ["Height", "HeightStatus"]


@dataclass(frozen=True, slots=True)
class HeightStatus:
    """What a host may know of the height a member works on (see `Height.status`)."""

    height: int
    phase: HeightPhase
    validator: bool
    block_decided: str | None  # signing hash our block agreement decided (validators)
    seal_decided: str | None  # block hash our seal agreement decided (validators)


class Height:
    """Everything one member does for height `state.height + 1`: the coordinator of its parts."""

    def __init__(self, *, identity: Identity, state: ChainState, committee: Committee, params: ConsensusParams,
                 verifier: SignatureVerifier, now_tick: int, now_ms: int, members: tuple[str, ...],
                 snapshot: SafetySnapshot | None = None) -> None:
        self.ctx = HeightContext(identity=identity, state=state, committee=committee, params=params,
                                 verifier=verifier, now_tick=now_tick, now_ms=now_ms, members=members)
        self.quality = QualityRound(self.ctx)
        self.unsealed = UnsealedBlocks(self.ctx, self.quality)
        self.certification = Certification(self.ctx, self.quality, self.unsealed)
        self.agreements = Agreements(self.ctx, self.unsealed, self.certification)
        self.quality.agreements = self.certification.agreements = self.agreements
        self.head_proof: Any = None  # seal proof of the parent block, kept in the safety snapshot
        q, c, a = self.quality, self.certification, self.agreements
        self._handlers: dict[str, Callable[[str, Any], None]] = {
            "ProposalMsg": q.on_proposal, "QualityVoteMsg": q.on_quality_vote,
            "GovernanceMsg": self._on_governance_msg,
            "BlockVoteMsg": c.on_block_vote, "CommittedMsg": c.on_committed,
            "RoundProposal": a.on_round_proposal, "RoundVotes": a.on_round_votes, "DecidedMsg": a.on_decided,
            "ValueRequest": a.on_value_request, "ValueReply": a.on_value_reply,
        }
        if snapshot is not None and snapshot.height == self.ctx.h:
            self._restore(snapshot)

    # --- what the core reads -----------------------------------------------------------
    @property
    def h(self) -> int:
        return self.ctx.h

    @property
    def committee(self) -> Committee:
        return self.ctx.committee

    @property
    def others(self) -> tuple[str, ...]:
        return self.ctx.others

    @property
    def is_validator(self) -> bool:
        return self.ctx.is_validator

    @property
    def committed(self) -> tuple[Block, ChainState] | None:
        return self.certification.committed

    @property
    def proof(self) -> VoteCertificate | None:
        return self.certification.proof

    @property
    def rounds_used(self) -> int:
        return self.certification.rounds_used

    def mark_dirty(self) -> None:
        """Our safety state changed outside the parts (the head proof): snapshot at the next drain."""
        self.ctx.dirty = True

    def status(self) -> HeightStatus:
        a = self.agreements
        block = a.block.decision if a.block is not None else None
        seal = a.seal.decision if a.seal is not None else None
        return HeightStatus(self.ctx.h, self.ctx.phase, self.ctx.is_validator,
                            self.certification.decided if block is not None else None,
                            seal.block_hash if seal is not None else None)

    # --- inputs -------------------------------------------------------------------------
    def begin(self) -> None:
        self.quality.begin()

    def on_message(self, sender: str, message: Message) -> None:
        """A message of this height: the phase table decides whether (and which part) takes it."""
        kind = type(message).__name__
        verdict = admit(self.ctx.role, self.ctx.phase, kind)
        if verdict is Admission.ACCEPT:
            self._handlers[kind](sender, message)
        elif verdict is Admission.REFUSE:
            self.ctx.evidence("invalid-message", sender, f"{kind} is not accepted by a {self.ctx.role.value} "
                                                         f"in phase {self.ctx.phase.value}")

    def _on_governance_msg(self, sender: str, msg: GovernanceMsg) -> None:
        self.quality.on_governance(sender, msg.request)

    def on_governance(self, sender: str, request: GovernanceRequest) -> None:
        """Our own governance request (a validator takes it like one received)."""
        self.quality.on_governance(sender, request)

    def on_evaluated(self, proposal_hash: str, scores: PairedScores | None) -> None:
        self.quality.on_evaluated(proposal_hash, scores)

    def on_trained(self, candidate: Candidate | None) -> None:
        self.quality.on_trained(candidate)

    def offer_block(self, block: Block, new_state: ChainState, confirmed: bool) -> None:
        self.certification.offer_block(block, new_state, confirmed)

    def set_clock(self, tick: int, now_ms: int) -> None:
        self.ctx.set_clock(tick, now_ms)

    def on_tick(self, tick: int, now_ms: int) -> None:
        ctx = self.ctx
        ctx.set_clock(tick, now_ms)
        if ctx.phase is HeightPhase.COMMITTED:
            return
        self.quality.on_tick()
        self.agreements.on_tick(tick)
        self.certification.check_attested()
        if (tick - ctx.start_tick) % ctx.params.resend_ticks == 0 and tick != ctx.start_tick:
            self._resend()

    def _resend(self) -> None:
        if self.ctx.phase is HeightPhase.COMMITTED:
            return
        self.quality.resend_proposal()
        if not self.ctx.is_validator:
            return
        if self.certification.decided is None:
            self.quality.resend_votes()
        self.agreements.resend()
        self.certification.resend_block_vote()
        self.agreements.resend_decision(self.certification.decided, self.certification.lagging_validators())

    # --- output -------------------------------------------------------------------------
    def drain(self) -> list[Action]:
        """The actions produced so far, a fresh snapshot first when our safety state changed."""
        self.agreements.pump()
        out, self.ctx.out = self.ctx.out, []
        if self.ctx.dirty or self.agreements.dirty():
            self.ctx.dirty = False
            self.agreements.clear_dirty()
            out.insert(0, PersistSafety(self.snapshot()))
        return out

    def snapshot(self) -> SafetySnapshot:
        q = self.quality
        return SafetySnapshot(self.ctx.h, q.my_proposal, tuple(q.my_qvs.values()), self.certification.my_bv,
                              self.agreements.snapshots(), head_proof=self.head_proof)

    def _restore(self, snap: SafetySnapshot) -> None:
        self.head_proof = snap.head_proof
        self.quality.restore(snap)
        self.certification.restore(snap)
        self.agreements.restore(snap)
        self._resend()
