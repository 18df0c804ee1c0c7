"""Candidates and quality votes: proposals, evaluations, votes, and the block the general builds.

Part of `HeightWork` (see `height.py`): steps 1–3 of a height.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tclearn.consensus.actions import Evaluate, Train
from tclearn.consensus.certificate import check_block_content
from tclearn.consensus.governance import GovernanceRequest, build_governance_block, request_problem
from tclearn.consensus.messages import ProposalMsg, QualityVoteMsg
from tclearn.consensus.phases import HeightEvent, HeightPhase, next_phase
from tclearn.consensus.rules import decide_kind, flagged_validators
from tclearn.errors import ConsensusError, EncodingError, InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import (EMPTY_IDS_ROOT, Proposal, QualityVote, check_batch_counts, check_hash,
                                   check_vault_head)
from tclearn.ledger.verify import verify_block
from tclearn.quality import PairedScores, judge
from tclearn.consensus.height_base import MAX_GOVERNANCE, MAX_PROPOSALS_PER_PROPOSER, HeightBase

__all__ = ["Candidate", "CandidateWork"]


@dataclass(frozen=True)
class Candidate:
    """What a trainer produces from the head model: the fields of a proposal."""

    model_hash: str
    increment_hash: str
    sample_count: int  # new contributions (they count towards D_i)
    data_ids_root: str
    reused_count: int = 0  # samples contributed before and trained on again
    reused_ids_root: str = EMPTY_IDS_ROOT
    vault_head: str = ""

    def __post_init__(self) -> None:
        try:
            check_vault_head(self.vault_head)
            check_hash(self.model_hash, "model_hash")
            check_hash(self.increment_hash, "increment_hash")
            check_batch_counts(self.sample_count, self.data_ids_root, self.reused_count, self.reused_ids_root)
        except EncodingError as exc:
            raise ConsensusError(f"candidate: {exc}") from None


class CandidateWork(HeightBase):
    """Proposals, quality votes, governance requests; building and checking the unsealed block."""

    # --- the start -------------------------------------------------------------
    def begin(self) -> None:
        if self.my_rank == 0 and not self.train_asked:
            self._ask_training()

    def _ask_training(self) -> None:
        self.train_asked = True
        self.out.append(Train(self.h, self.state.head_model_hash))

    def on_trained(self, candidate: Candidate | None) -> None:
        if candidate is None:
            # we passed our turn (data spent, or an on-demand node nobody asked yet): ask the
            # trainer again after a proposal timeout, in case it has something by then
            if self.my_proposal is None:
                self.train_asked = False
                self.passed_tick = self.tick
            return
        if self.my_proposal is not None or self.committed is not None:
            return
        proposal = Proposal(
            proposer=self.me, height=self.h, prev_hash=self.state.head_hash,
            parent_model_hash=self.state.head_model_hash, model_hash=candidate.model_hash,
            increment_hash=candidate.increment_hash, sample_count=candidate.sample_count,
            data_ids_root=candidate.data_ids_root, reused_count=candidate.reused_count,
            reused_ids_root=candidate.reused_ids_root, vault_head=candidate.vault_head,
        ).signed_by(self.identity)
        self.my_proposal = proposal
        self.dirty = True
        self._send(self.peers, ProposalMsg(proposal))
        if self.is_validator:  # a validator proposing as a last resort: keep it (others vote; we build blocks)
            self._register_proposal(proposal, self.me)

    # --- proposals and quality votes ---------------------------------------------
    def _attempt(self) -> int:
        return (self.tick - self.start_tick) // self.params.proposal_timeout_ticks

    def _proposal_problem(self, p: Proposal) -> str | None:
        if p.height != self.h or p.prev_hash != self.state.head_hash:
            return "proposal for another height or parent"
        if p.parent_model_hash != self.state.head_model_hash:
            return "proposal not trained from the head model"
        if self.committee.proposer_rank(p.proposer) < 0:
            return f"{p.proposer} may not propose at height {self.h}"
        if not self.verifier.verify_record(p, self.state.public_key(p.proposer)):
            return "proposal signature does not verify"
        return None

    def _register_proposal(self, p: Proposal, sender: str) -> str | None:
        """Keep a valid proposal (at most two per proposer); returns its hash, or None if refused.

        A refused proposal is held against `sender`, the member who showed it
        to us (the transport names it), never against the proposer it names:
        anyone can write a proposal naming someone else. Only two proposals
        whose signatures verify convict their proposer (equivocation).
        """
        ph = p.proposal_hash
        if ph in self.proposals:
            return ph
        problem = self._proposal_problem(p)
        if problem:
            self._evidence("invalid-message", sender, problem)
            return None
        mine = self.by_proposer.setdefault(p.proposer, [])
        if mine:
            self._evidence("proposal-equivocation", p.proposer, "two proposals at one height",
                           (self.proposals[mine[0]].to_dict(), p.to_dict()))
            if len(mine) >= MAX_PROPOSALS_PER_PROPOSER:
                return None
        mine.append(ph)
        self.proposals[ph] = p
        self.qvs.setdefault(ph, {})
        if self.is_validator:
            self._maybe_evaluate(ph)
        return ph

    def _maybe_evaluate(self, ph: str) -> None:
        if ph in self.evaluating or self.committed is not None:
            return
        p = self.proposals[ph]
        if p.proposer == self.me:
            return  # never our own validator
        if self.committee.proposer_rank(p.proposer) > self._attempt():
            self.waiting_turn[ph] = p
            return
        self.waiting_turn.pop(ph, None)
        self.evaluating.add(ph)
        self.out.append(Evaluate(self.h, ph, p.parent_model_hash, p.model_hash))

    def on_proposal(self, sender: str, p: Proposal) -> None:
        if self.is_validator:
            self._register_proposal(p, sender)

    def on_evaluated(self, ph: str, scores: PairedScores | None) -> None:
        """Our evaluation of a candidate; None when its model is invalid (we vote reject)."""
        p = self.proposals.get(ph)
        if p is None or ph in self.my_qvs or not self.is_validator or p.proposer == self.me:
            return
        if scores is None:
            accept, measured = False, {"invalid_model": 1.0}
        else:
            judgement = judge(scores, self.lam, max_drop=self.max_drop)
            accept, measured = judgement.accept, judgement.scores
        vote = QualityVote(validator=self.me, height=self.h, proposal_hash=ph, model_hash=p.model_hash,
                           accept=accept, scores=measured).signed_by(self.identity)
        self.my_qvs[ph] = vote
        self.dirty = True
        self._add_qv(vote)
        self._send(self.peers, QualityVoteMsg(p, vote))
        self._start_block()

    def on_quality_vote(self, sender: str, p: Proposal, vote: QualityVote) -> None:
        if not self.is_validator:
            return
        if vote.validator != sender or sender not in self.committee.validators:
            self._evidence("invalid-message", sender, "quality vote not sent by a validator of its own")
            return
        ph = self._register_proposal(p, sender)
        if ph is None:
            return
        if vote.proposal_hash != ph or vote.model_hash != p.model_hash or vote.height != self.h:
            self._evidence("invalid-message", sender, "quality vote for another candidate")
            return
        if vote.validator == p.proposer:
            self._evidence("invalid-message", sender, "quality vote on its own candidate")
            return
        if not self.verifier.verify_record(vote, self.state.public_key(sender)):
            self._evidence("invalid-message", sender, "quality vote signature does not verify")
            return
        self._add_qv(vote)

    def _add_qv(self, vote: QualityVote) -> None:
        ph = vote.proposal_hash
        book = self.qvs.setdefault(ph, {})
        held = book.get(vote.validator)
        if held is not None:
            if held.signing_bytes() != vote.signing_bytes() and (ph, vote.validator) not in self.equivocated:
                self.equivocated[(ph, vote.validator)] = (held, vote)
                self._evidence("quality-vote-equivocation", vote.validator, "two quality votes for one candidate",
                               (held.to_dict(), vote.to_dict()))
            return
        book[vote.validator] = vote
        if len(book) >= self.committee.quorum and ph not in self.quorum_tick:
            self.quorum_tick[ph] = self.tick
        if self.block_inst is not None and self.block_inst.started:
            self.block_inst.poke(self.tick)

    # --- governance ------------------------------------------------------------
    def on_governance(self, sender: str, request: GovernanceRequest) -> None:
        if not self.is_validator:
            return
        if sender != request.requester:  # a request travels only from its requester: leave a trace
            self._evidence("invalid-message", sender, f"governance request of {request.requester} "
                                                      f"sent by {sender}: refused")
            return
        if request.request_hash in self.governance or len(self.governance) >= MAX_GOVERNANCE:
            return
        problem = request_problem(self.state, request, self.verifier.verify)
        if problem:
            self._evidence("invalid-message", sender, f"governance request refused: {problem}")
            return
        self.governance[request.request_hash] = request
        self._start_block()

    # --- agreement on the block ------------------------------------------------
    def _start_block(self) -> None:
        inst = self.block_inst
        if inst is not None and not inst.started:
            inst.start(self.tick)
            if self.phase is HeightPhase.WAITING:
                self.phase = next_phase(self.phase, HeightEvent.AGREEMENT_STARTED)
        elif inst is not None:
            inst.poke(self.tick)

    def _build_unsealed(self) -> Block | None:
        if self.governance:
            request = self.governance[min(self.governance)]
            return build_governance_block(self.state, request, self.me, self.now_ms).signed_by(self.identity)
        k = self.committee.size
        order = sorted(self.proposals, key=lambda ph: (self.committee.proposer_rank(self.proposals[ph].proposer), ph))
        for ph in order:
            votes = [v for who, v in sorted(self.qvs.get(ph, {}).items()) if (ph, who) not in self.equivocated]
            kind = decide_kind(votes, k, self.max_drop)
            if kind is None:
                continue
            rejects = sum(1 for v in votes if not v.accept)
            if kind == "rejected" and len(votes) < k and 2 * rejects < k:
                if self.tick - self.quorum_tick.get(ph, self.tick) < self.params.quality_grace_ticks:
                    continue  # a few more votes might still make an accepting majority
            return self._candidate_block(ph, kind, tuple(votes))
        return None

    def _candidate_block(self, ph: str, kind: str, votes: tuple[QualityVote, ...]) -> Block:
        p = self.proposals[ph]
        payload: dict[str, Any] = {"proposal": p.to_dict(), "flagged": flagged_validators(votes)}
        evidence = [{"validator": who, "votes": [a.to_dict(), b.to_dict()]}
                    for (eph, who), (a, b) in sorted(self.equivocated.items()) if eph == ph]
        if evidence:
            payload["evidence"] = evidence
        return Block(
            index=self.h, timestamp=max(self.now_ms, self.state.head_timestamp), kind=kind,
            prev_hash=self.state.head_hash,
            model_hash=p.model_hash if kind == "increment" else self.state.head_model_hash,
            contributor=p.proposer, strengths=self.state.strengths(), data_ids_root=p.data_ids_root,
            quality_votes=votes, block_votes=(), general=self.me, payload=payload,
        ).signed_by(self.identity)

    def _valid_unsealed(self, block: Block) -> bool:
        key = (self._signing_id(block), block.general_signature)
        known = self._unsealed_ok.get(key)
        if known is not None:
            return known
        if block.timestamp > self.now_ms + self.params.max_clock_skew_ms:
            return False  # not cached: the clock will catch up
        ok = True
        if block.block_votes or block.index != self.h or not self._general_signed(block):
            ok = False  # a block its general did not sign is nobody's evidence: not the general's
        else:
            try:
                verify_block(self.state, block.sealed(), lambda st, b: check_block_content(
                    st, b, self.committee, self.verifier), signature_check=self.verifier.verify)
            except InvalidBlockError as exc:
                ok = False
                self._evidence("invalid-block", block.general, f"proposed block refused: {exc.reason}")
        self._bounded(self._unsealed_ok)
        self._unsealed_ok[key] = ok
        if ok:
            self._cross_check(block)
        return ok

    def _cross_check(self, block: Block) -> None:
        """Compare the votes a verified block carries with those their signers sent us: equivocation shows."""
        for qv in block.quality_votes:
            held = self.qvs.get(qv.proposal_hash, {}).get(qv.validator)
            if held is not None and held.signing_bytes() != qv.signing_bytes():
                self._add_qv(qv)  # records the evidence; the first vote stays
        for bv in block.block_votes:
            held_bv = self.bv_of.get(bv.validator)  # stored unchecked: evidence needs its signature too
            if held_bv is not None and held_bv.signing_hash != bv.signing_hash and self.verifier.verify_record(
                    held_bv, self.state.public_key(held_bv.validator)):
                self._evidence("block-vote-equivocation", bv.validator, "block votes for two blocks at one height",
                               (held_bv.to_dict(), bv.to_dict()))
