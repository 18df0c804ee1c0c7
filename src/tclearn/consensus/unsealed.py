"""The unsealed block of a height: built by a round's general from the quality round, checked by the others.

The block agreement (`agreements.Agreements`) asks this part for a value to
propose when we are a round's general (`build`: a governance block from a
signed request, or the block the quality votes decide, see
`rules.decide_kind`), and whether a value proposed by another general is
acceptable (`valid`: every check of the ledger and of the certificate but the
block votes, which come later). Verdicts are cached per height, bounded.
"""

from __future__ import annotations

from typing import Any

from tclearn.consensus.certificate import check_block_content
from tclearn.consensus.governance import build_governance_block
from tclearn.consensus.height_context import HeightContext, bounded
from tclearn.consensus.quality_round import QualityRound
from tclearn.consensus.rules import decide_kind, flagged_validators
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import QualityVote
from tclearn.ledger.verify import verify_block

__all__ = ["UnsealedBlocks"]


class UnsealedBlocks:
    """Builds our unsealed block and judges others' (values of the block agreement)."""

    def __init__(self, ctx: HeightContext, quality: QualityRound) -> None:
        self.ctx = ctx
        self.quality = quality
        self._unsealed_ok: dict[tuple[str, bytes], bool] = {}

    def build(self) -> Block | None:
        ctx, q = self.ctx, self.quality
        if q.governance:
            request = q.governance[min(q.governance)]
            return build_governance_block(ctx.state, request, ctx.me, ctx.now_ms).signed_by(ctx.identity)
        k = ctx.committee.size
        order = sorted(q.proposals, key=lambda ph: (ctx.committee.proposer_rank(q.proposals[ph].proposer), ph))
        for ph in order:
            votes = [v for who, v in sorted(q.qvs.get(ph, {}).items()) if (ph, who) not in q.equivocated]
            kind = decide_kind(votes, k, ctx.max_drop)
            if kind is None:
                continue
            rejects = sum(1 for v in votes if not v.accept)
            if kind == "rejected" and len(votes) < k and 2 * rejects < k:
                if ctx.tick - q.quorum_tick.get(ph, ctx.tick) < ctx.params.quality_grace_ticks:
                    continue  # a few more votes might still make an accepting majority
            return self._candidate_block(ph, kind, tuple(votes))
        return None

    def _candidate_block(self, ph: str, kind: str, votes: tuple[QualityVote, ...]) -> Block:
        ctx, p = self.ctx, self.quality.proposals[ph]
        payload: dict[str, Any] = {"proposal": p.to_dict(), "flagged": flagged_validators(votes)}
        evidence = [{"validator": who, "votes": [a.to_dict(), b.to_dict()]}
                    for (eph, who), (a, b) in sorted(self.quality.equivocated.items()) if eph == ph]
        if evidence:
            payload["evidence"] = evidence
        return Block(
            index=ctx.h, timestamp=max(ctx.now_ms, ctx.state.head_timestamp), kind=kind,
            prev_hash=ctx.state.head_hash,
            model_hash=p.model_hash if kind == "increment" else ctx.state.head_model_hash,
            contributor=p.proposer, strengths=ctx.state.strengths(), data_ids_root=p.data_ids_root,
            quality_votes=votes, block_votes=(), general=ctx.me, payload=payload,
        ).signed_by(ctx.identity)

    def valid(self, block: Block) -> bool:
        ctx = self.ctx
        key = (ctx.signing_id(block), block.general_signature)
        known = self._unsealed_ok.get(key)
        if known is not None:
            return known
        if block.timestamp > ctx.now_ms + ctx.params.max_clock_skew_ms:
            return False  # not cached: the clock will catch up
        ok = True
        if block.block_votes or block.index != ctx.h or not ctx.general_signed(block):
            ok = False  # a block its general did not sign is nobody's evidence: not the general's
        else:
            try:
                verify_block(ctx.state, block.sealed(), lambda st, b: check_block_content(
                    st, b, ctx.committee, ctx.verifier), signature_check=ctx.verifier.verify)
            except InvalidBlockError as exc:
                ok = False
                ctx.evidence("invalid-block", block.general, f"proposed block refused: {exc.reason}")
        bounded(self._unsealed_ok)
        self._unsealed_ok[key] = ok
        if ok:
            self.quality.cross_check(block)  # an unsealed block carries no block votes: quality votes only
        return ok

    def passed_checks(self, block: Block) -> bool:
        """Whether the unsealed form of `block` was found valid already (only its votes are left to check)."""
        return bool(self._unsealed_ok.get((self.ctx.signing_id(block), block.general_signature)))
