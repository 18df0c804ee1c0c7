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
"""

from __future__ import annotations

from typing import Any

from tclearn.consensus.actions import Action, PersistSafety
from tclearn.consensus.agreement import Agreement
from tclearn.consensus.committee import Committee
from tclearn.consensus.height_candidates import Candidate, CandidateWork
from tclearn.consensus.height_certify import CertifyWork
from tclearn.consensus.messages import (
    BlockVoteMsg, DecidedMsg, ProposalMsg, QualityVoteMsg, RoundProposal, RoundVotes, ValueRequest, VoteCertificate,
    VoteEntry,
)
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import HeightEvent, HeightPhase, next_phase
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.consensus.tally import DecidedOut, MisbehaviourOut, NeedValueOut, ProposeOut, VoteOut
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState

__all__ = ["HeightWork", "Candidate"]


class HeightWork(CandidateWork, CertifyWork):
    """Everything one member does for height `state.height + 1`."""

    def __init__(self, *, identity: Identity, state: ChainState, committee: Committee, params: ConsensusParams,
                 verifier: SignatureVerifier, now_tick: int, now_ms: int, members: tuple[str, ...],
                 snapshot: SafetySnapshot | None = None) -> None:
        super().__init__(identity=identity, state=state, committee=committee, params=params, verifier=verifier,
                         now_tick=now_tick, now_ms=now_ms, members=members)
        self.block_inst: Agreement | None = None
        self.seal_inst: Agreement | None = None
        if self.is_validator:
            self.block_inst = Agreement("block", committee, self.me, params, value_id=self._signing_id,
                                        validate=self._valid_unsealed, build=self._build_unsealed,
                                        sign=self._signer("block"), check=self._checker("block"))
            self.seal_inst = Agreement("seal", committee, self.me, params, value_id=self._sealed_id,
                                       validate=self._valid_sealed, build=self._build_sealed,
                                       sign=self._signer("seal"), check=self._checker("seal"),
                                       provable_decisions=True)
        if snapshot is not None and snapshot.height == self.h:
            self._restore(snapshot)

    def drain(self) -> list[Action]:
        """The actions produced so far, a fresh snapshot first when our safety state changed."""
        self._pump()
        out, self.out = self.out, []
        if self.dirty or any(i is not None and i.dirty for i in (self.block_inst, self.seal_inst)):
            self.dirty = False
            for inst in (self.block_inst, self.seal_inst):
                if inst is not None:
                    inst.dirty = False
            out.insert(0, PersistSafety(self.snapshot()))
        return out

    def snapshot(self) -> SafetySnapshot:
        instances = {i.name: i.snapshot() for i in (self.block_inst, self.seal_inst) if i is not None and i.started}
        return SafetySnapshot(self.h, self.my_proposal, tuple(self.my_qvs.values()), self.my_bv, instances,
                              head_proof=self.head_proof)

    def _restore(self, snap: SafetySnapshot) -> None:
        self.head_proof = snap.head_proof
        self.my_proposal = snap.proposal
        if snap.proposal is not None:
            self.train_asked = True
            self._register_proposal(snap.proposal, self.me)
        for qv in snap.quality_votes:
            self.my_qvs[qv.proposal_hash] = qv
            self.evaluating.add(qv.proposal_hash)
            self.qvs.setdefault(qv.proposal_hash, {})[self.me] = qv
        if snap.block_vote is not None:
            self.my_bv = snap.block_vote
            self.decided = snap.block_vote.signing_hash
            self._store_bv(snap.block_vote)
            self.phase = next_phase(self.phase, HeightEvent.BLOCK_DECIDED)
        for inst in (self.block_inst, self.seal_inst):
            if inst is not None and inst.name in snap.instances:
                inst.restore(snap.instances[inst.name], self.tick)
                if inst.name == "block" and self.phase is HeightPhase.WAITING:
                    self.phase = next_phase(self.phase, HeightEvent.AGREEMENT_STARTED)
        self._resend()

    def on_round_proposal(self, sender: str, msg: RoundProposal) -> None:
        inst = self._instance(msg.instance)
        if inst is None:
            return
        if msg.block.index != self.h or not self._general_signed(msg.block):  # before its id (a digest)
            self._evidence("invalid-message", sender, f"{msg.instance} proposal of a block its general did not sign")
            return
        self._start_instance(inst)
        if msg.polka is not None:
            inst.on_certificate(msg.polka.round, "prevote", msg.polka.value, msg.polka.signers, self.tick)
        inst.on_proposal(sender, msg.round, msg.valid_round, msg.block, self.tick)

    def on_round_votes(self, sender: str, msg: RoundVotes) -> None:
        inst = self._instance(msg.instance)
        if inst is None:
            return
        self._start_instance(inst)
        inst.on_votes(sender, [(v.round, v.phase, v.value, v.signature) for v in msg.votes], self.tick)

    # --- time ---------------------------------------------------------------------
    def on_tick(self, tick: int, now_ms: int) -> None:
        self.tick, self.now_ms = tick, now_ms
        if self.committed is not None:
            return
        attempt = self._attempt()
        if 0 <= self.my_rank <= attempt and not self.train_asked and (
                self.my_rank > 0 or self.passed_tick is not None) and (
                self.passed_tick is None or self.tick - self.passed_tick >= self.params.proposal_timeout_ticks):
            self._ask_training()
        for ph in [ph for ph, p in self.waiting_turn.items() if self.committee.proposer_rank(p.proposer) <= attempt]:
            self._maybe_evaluate(ph)
        for inst in (self.block_inst, self.seal_inst):
            if inst is not None and inst.started:
                inst.on_tick(tick)
        self._check_attested()
        if (tick - self.start_tick) % self.params.resend_ticks == 0 and tick != self.start_tick:
            self._resend()

    def set_clock(self, tick: int, now_ms: int) -> None:
        self.tick, self.now_ms = tick, now_ms

    def _resend(self) -> None:
        if self.committed is not None:
            return
        if self.my_proposal is not None:
            self._send(tuple(self.committee.generals), ProposalMsg(self.my_proposal))
        if not self.is_validator:
            return
        if self.decided is None:
            for ph, qv in self.my_qvs.items():
                if ph in self.proposals:
                    self._send(self.peers, QualityVoteMsg(self.proposals[ph], qv))
        for inst in (self.block_inst, self.seal_inst):
            if inst is None or not inst.started:
                continue  # decided or not: laggards need our votes until the height is committed
            votes = inst.resend_votes()
            if votes:
                self._send(self.peers, RoundVotes(self.h, inst.name, tuple(VoteEntry(*v) for v in votes)))
            current = inst.current_proposal()
            if current is not None:
                self._send(self.peers, self._round_proposal(inst, current))
        if self.my_bv is not None:
            self._send(self.peers, BlockVoteMsg(self.my_bv))
        inst = self.block_inst
        if inst is not None and inst.decision is not None and self.decided is not None:
            lagging = tuple(p for p in self.peers if p not in self.bvs.get(self.decided, {}))
            round_, signers = inst.decision_certificate() if lagging else (-1, ())
            if signers:  # they have not voted for the block yet: maybe they missed its decision
                proof = VoteCertificate(self.h, "block", round_, "precommit", self.decided, signers)
                self._send(lagging, DecidedMsg(self.h, "block", inst.decision, proof))

    # --- turning agreement effects into actions ------------------------------------
    def _round_proposal(self, inst: Agreement, p: ProposeOut) -> RoundProposal:
        polka = None
        if p.polka:
            polka = VoteCertificate(self.h, inst.name, p.valid_round, "prevote", self._value_of(inst, p.value),
                                    p.polka)
        return RoundProposal(self.h, inst.name, p.round, p.valid_round, p.value, polka)

    def _value_of(self, inst: Agreement, value: Block) -> str:
        return self._signing_id(value) if inst is self.block_inst else self._sealed_id(value)

    def _pump(self) -> None:
        for inst in (self.block_inst, self.seal_inst):
            if inst is None:
                continue
            while inst.out:
                for effect in inst.drain():
                    self._apply(inst, effect)

    def _apply(self, inst: Agreement, effect: Any) -> None:
        if isinstance(effect, VoteOut):
            entry = VoteEntry(effect.round, effect.phase, effect.value, effect.signature)
            self._send(self.peers, RoundVotes(self.h, inst.name, (entry,)))
        elif isinstance(effect, ProposeOut):
            self._send(self.peers, self._round_proposal(inst, effect))
        elif isinstance(effect, DecidedOut):
            if inst is self.block_inst:
                self._block_decided(self._signing_id(effect.value))
            else:
                new_state = self._check_sealed(effect.value)
                if new_state is not None:
                    self._commit(effect.value, new_state)
        elif isinstance(effect, NeedValueOut):
            if effect.holders:
                self._send(effect.holders, ValueRequest(self.h, inst.name, effect.value_id))
        elif isinstance(effect, MisbehaviourOut):
            self._evidence(effect.kind, effect.member, effect.reason)
