"""The quality round of a height: proposals, evaluations, quality votes, governance requests.

Steps 1–3 of a height (see `height.py`): the scheduled proposer trains and
signs a proposal; each validator evaluates the candidate (an `Evaluate`
action, answered through `on_evaluated`), judges it with
`tclearn.quality.judge` and λ from genesis, and sends its signed quality
vote with the proposal to the other validators. Once the votes decide
(`rules.decide_kind`) — or a signed governance request is at hand — the
round's general builds the unsealed block from them (`unsealed.UnsealedBlocks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tclearn.consensus.actions import Evaluate, Train
from tclearn.consensus.candidate import Candidate
from tclearn.consensus.governance import GovernanceRequest, request_problem
from tclearn.consensus.height_context import HeightContext
from tclearn.consensus.messages import ProposalMsg, QualityVoteMsg
from tclearn.consensus.phases import HeightPhase
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.ledger.block import Block
from tclearn.ledger.records import Proposal, QualityVote
from tclearn.quality import PairedScores, judge

if TYPE_CHECKING:
    from tclearn.consensus.agreements import Agreements

__all__ = ["QualityRound", "MAX_PROPOSALS_PER_PROPOSER", "MAX_GOVERNANCE"]

MAX_PROPOSALS_PER_PROPOSER = 2
MAX_GOVERNANCE = 8


class QualityRound:
    """Proposals, quality votes and governance requests of one height."""

    def __init__(self, ctx: HeightContext) -> None:
        self.ctx = ctx
        self.agreements: Agreements | None = None  # wired by the height once the agreements exist
        self.proposals: dict[str, Proposal] = {}
        self.by_proposer: dict[str, list[str]] = {}
        self.waiting_turn: dict[str, Proposal] = {}
        self.evaluating: set[str] = set()
        self.qvs: dict[str, dict[str, QualityVote]] = {}
        self.equivocated: dict[tuple[str, str], tuple[QualityVote, QualityVote]] = {}
        self.quorum_tick: dict[str, int] = {}
        self.my_qvs: dict[str, QualityVote] = {}
        self.my_proposal: Proposal | None = None
        self.train_asked = False
        self.passed_tick: int | None = None  # when our trainer last passed the turn (None: never)
        self.governance: dict[str, GovernanceRequest] = {}

    # --- our turn to propose ---------------------------------------------------------
    def begin(self) -> None:
        if self.ctx.my_rank == 0 and not self.train_asked:
            self.ask_training()

    def ask_training(self) -> None:
        self.train_asked = True
        self.ctx.out.append(Train(self.ctx.h, self.ctx.state.head_model_hash, dict(self.ctx.state.hyperparams)))

    def on_tick(self) -> None:
        """Ask our trainer when our turn has come (again), evaluate fallbacks whose turn has come."""
        ctx = self.ctx
        attempt = ctx.attempt()
        if 0 <= ctx.my_rank <= attempt and not self.train_asked and (
                ctx.my_rank > 0 or self.passed_tick is not None) and (
                self.passed_tick is None or ctx.tick - self.passed_tick >= ctx.params.proposal_timeout_ticks):
            self.ask_training()
        for ph in [ph for ph, p in self.waiting_turn.items() if ctx.committee.proposer_rank(p.proposer) <= attempt]:
            self._maybe_evaluate(ph)

    def on_trained(self, candidate: Candidate | None) -> None:
        ctx = self.ctx
        if candidate is None:
            # we passed our turn (data spent, or an on-demand node nobody asked yet): ask the
            # trainer again after a proposal timeout, in case it has something by then
            if self.my_proposal is None:
                self.train_asked = False
                self.passed_tick = ctx.tick
            return
        if self.my_proposal is not None or self.ctx.phase is HeightPhase.COMMITTED:
            return
        proposal = Proposal(
            proposer=ctx.me, height=ctx.h, prev_hash=ctx.state.head_hash,
            parent_model_hash=ctx.state.head_model_hash, model_hash=candidate.model_hash,
            increment_hash=candidate.increment_hash, sample_count=candidate.sample_count,
            data_ids_root=candidate.data_ids_root, reused_count=candidate.reused_count,
            reused_ids_root=candidate.reused_ids_root, vault_head=candidate.vault_head,
        ).signed_by(ctx.identity)
        self.my_proposal = proposal
        ctx.dirty = True
        ctx.send(ctx.other_validators, ProposalMsg(proposal))
        if ctx.is_validator:  # a validator proposing as a last resort: keep it (others vote; we build blocks)
            self.register_proposal(proposal, ctx.me)

    # --- proposals ----------------------------------------------------------------------
    def _proposal_problem(self, p: Proposal) -> str | None:
        ctx = self.ctx
        if p.height != ctx.h or p.prev_hash != ctx.state.head_hash:
            return "proposal for another height or parent"
        if p.parent_model_hash != ctx.state.head_model_hash:
            return "proposal not trained from the head model"
        if ctx.committee.proposer_rank(p.proposer) < 0:
            return f"{p.proposer} may not propose at height {ctx.h}"
        if not ctx.verifier.verify_record(p, ctx.state.public_key(p.proposer)):
            return "proposal signature does not verify"
        return None

    def register_proposal(self, p: Proposal, sender: str) -> str | None:
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
            self.ctx.evidence("invalid-message", sender, problem)
            return None
        mine = self.by_proposer.setdefault(p.proposer, [])
        if mine:
            self.ctx.evidence("proposal-equivocation", p.proposer, "two proposals at one height",
                              (self.proposals[mine[0]].to_dict(), p.to_dict()))
            if len(mine) >= MAX_PROPOSALS_PER_PROPOSER:
                return None
        mine.append(ph)
        self.proposals[ph] = p
        self.qvs.setdefault(ph, {})
        if self.ctx.is_validator:
            self._maybe_evaluate(ph)
        return ph

    def _maybe_evaluate(self, ph: str) -> None:
        if ph in self.evaluating or self.ctx.phase is HeightPhase.COMMITTED:
            return
        p = self.proposals[ph]
        if p.proposer == self.ctx.me:
            return  # never our own validator
        if self.ctx.committee.proposer_rank(p.proposer) > self.ctx.attempt():
            self.waiting_turn[ph] = p
            return
        self.waiting_turn.pop(ph, None)
        self.evaluating.add(ph)
        self.ctx.out.append(Evaluate(self.ctx.h, ph, p.parent_model_hash, p.model_hash))

    def on_proposal(self, sender: str, msg: ProposalMsg) -> None:
        self.register_proposal(msg.proposal, sender)

    # --- quality votes -------------------------------------------------------------------
    def on_evaluated(self, ph: str, scores: PairedScores | None) -> None:
        """Our evaluation of a candidate; None when its model is invalid (we vote reject)."""
        ctx = self.ctx
        p = self.proposals.get(ph)
        if p is None or ph in self.my_qvs or not ctx.is_validator or p.proposer == ctx.me:
            return
        if scores is None:
            accept, measured = False, {"invalid_model": 1.0}
        else:
            judgement = judge(scores, ctx.lam, max_drop=ctx.max_drop)
            accept, measured = judgement.accept, judgement.scores
        vote = QualityVote(validator=ctx.me, height=ctx.h, proposal_hash=ph, model_hash=p.model_hash,
                           accept=accept, scores=measured).signed_by(ctx.identity)
        self.my_qvs[ph] = vote
        ctx.dirty = True
        self.add_quality_vote(vote)
        ctx.send(ctx.other_validators, QualityVoteMsg(p, vote))
        self._agreements().start_block()

    def on_quality_vote(self, sender: str, msg: QualityVoteMsg) -> None:
        ctx, p, vote = self.ctx, msg.proposal, msg.vote
        if vote.validator != sender or sender not in ctx.committee.validators:
            ctx.evidence("invalid-message", sender, "quality vote not sent by a validator of its own")
            return
        ph = self.register_proposal(p, sender)
        if ph is None:
            return
        if vote.proposal_hash != ph or vote.model_hash != p.model_hash or vote.height != ctx.h:
            ctx.evidence("invalid-message", sender, "quality vote for another candidate")
            return
        if vote.validator == p.proposer:
            ctx.evidence("invalid-message", sender, "quality vote on its own candidate")
            return
        if not ctx.verifier.verify_record(vote, ctx.state.public_key(sender)):
            ctx.evidence("invalid-message", sender, "quality vote signature does not verify")
            return
        self.add_quality_vote(vote)

    def add_quality_vote(self, vote: QualityVote) -> None:
        ph = vote.proposal_hash
        book = self.qvs.setdefault(ph, {})
        held = book.get(vote.validator)
        if held is not None:
            if held.signing_bytes() != vote.signing_bytes() and (ph, vote.validator) not in self.equivocated:
                self.equivocated[(ph, vote.validator)] = (held, vote)
                self.ctx.evidence("quality-vote-equivocation", vote.validator, "two quality votes for one candidate",
                                  (held.to_dict(), vote.to_dict()))
            return
        book[vote.validator] = vote
        if len(book) >= self.ctx.committee.quorum and ph not in self.quorum_tick:
            self.quorum_tick[ph] = self.ctx.tick
        self._agreements().poke_block()

    def cross_check(self, block: Block) -> None:
        """Compare the quality votes a verified block carries with those their signers sent us."""
        for qv in block.quality_votes:
            held = self.qvs.get(qv.proposal_hash, {}).get(qv.validator)
            if held is not None and held.signing_bytes() != qv.signing_bytes():
                self.add_quality_vote(qv)  # records the evidence; the first vote stays

    # --- governance -------------------------------------------------------------------
    def on_governance(self, sender: str, request: GovernanceRequest) -> None:
        ctx = self.ctx
        if sender != request.requester:  # a request travels only from its requester: leave a trace
            ctx.evidence("invalid-message", sender, f"governance request of {request.requester} "
                                                    f"sent by {sender}: refused")
            return
        if request.request_hash in self.governance or len(self.governance) >= MAX_GOVERNANCE:
            return
        problem = request_problem(ctx.state, request, ctx.verifier.verify)
        if problem:
            ctx.evidence("invalid-message", sender, f"governance request refused: {problem}")
            return
        self.governance[request.request_hash] = request
        self._agreements().start_block()

    # --- safety snapshot and re-sends ------------------------------------------------------
    def restore(self, snap: SafetySnapshot) -> None:
        self.my_proposal = snap.proposal
        if snap.proposal is not None:
            self.train_asked = True
            self.register_proposal(snap.proposal, self.ctx.me)
        for qv in snap.quality_votes:
            self.my_qvs[qv.proposal_hash] = qv
            self.evaluating.add(qv.proposal_hash)
            self.qvs.setdefault(qv.proposal_hash, {})[self.ctx.me] = qv

    def resend_proposal(self) -> None:
        if self.my_proposal is not None:
            self.ctx.send(tuple(self.ctx.committee.generals), ProposalMsg(self.my_proposal))

    def resend_votes(self) -> None:
        for ph, qv in self.my_qvs.items():
            if ph in self.proposals:
                self.ctx.send(self.ctx.other_validators, QualityVoteMsg(self.proposals[ph], qv))

    def _agreements(self) -> Agreements:
        if self.agreements is None:
            raise RuntimeError("the quality round is not wired to its agreements")
        return self.agreements
