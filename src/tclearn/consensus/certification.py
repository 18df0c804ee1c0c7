"""Certification of a height: block votes, the sealed block, the commit, attestations, proofs.

Steps 4–6 of a height (see `height.py`). Once the block is decided — by the
block agreement, or by seeing q block votes for one signing hash, which
proves it — a validator signs its single block vote of the height for that
block. The seal agreement (`agreements.Agreements`) then picks one sealed
form (the decided block with ≥ q block votes); this part builds and checks
those forms. The decided sealed block is appended and attested to every
member; a member outside the committee (or a lagging validator) commits a
verified block once a quorum of validators attest it, or on a proof (q signed
seal precommits), or when catch-up shows a certified successor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tclearn.consensus.actions import AppendBlock, Committed
from tclearn.consensus.certificate import check_block_votes, make_certificate_check
from tclearn.consensus.height_context import HeightContext, bounded
from tclearn.consensus.messages import BlocksRequest, BlockVoteMsg, CommittedMsg, VoteCertificate
from tclearn.consensus.phases import HeightEvent, HeightPhase
from tclearn.consensus.quality_round import QualityRound
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.consensus.unsealed import UnsealedBlocks
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import verify_block

if TYPE_CHECKING:
    from tclearn.consensus.agreements import Agreements

__all__ = ["Certification", "MAX_FULL_BLOCKS"]

MAX_FULL_BLOCKS = 4


class Certification:
    """Block votes, the decided block, sealed blocks, the commit and the attestations of one height."""

    def __init__(self, ctx: HeightContext, quality: QualityRound, unsealed: UnsealedBlocks) -> None:
        self.ctx = ctx
        self.quality = quality
        self.unsealed = unsealed
        self.agreements: Agreements | None = None  # wired by the height once the agreements exist
        self.bvs: dict[str, dict[str, BlockVote]] = {}
        self.bv_of: dict[str, BlockVote] = {}
        self.decided: str | None = None
        self.my_bv: BlockVote | None = None
        self.attest: dict[str, set[str]] = {}
        self.attest_of: dict[str, str] = {}
        self.full: dict[str, ChainState] = {}  # verified sealed blocks of this height -> state after them
        self.full_blocks: dict[str, Block] = {}
        self.committed: tuple[Block, ChainState] | None = None
        self.proof: VoteCertificate | None = None  # how we know our committed block was decided, if we do
        self.proven: dict[str, VoteCertificate] = {}
        self.rounds_used = 0
        self._asked_block_tick = -10**9
        self._sealed_ok: dict[str, ChainState | None] = {}
        self._cert_check = make_certificate_check(ctx.verifier)

    def _agreements(self) -> Agreements:
        if self.agreements is None:
            raise RuntimeError("the certification is not wired to its agreements")
        return self.agreements

    # --- proofs ---------------------------------------------------------------------------
    def _proof_ok(self, block_hash: str, proof: VoteCertificate) -> bool:
        """q signed seal precommits of one round, by distinct validators of this height, for `block_hash`."""
        ctx = self.ctx
        if proof.value != block_hash or proof.height != ctx.h or proof.instance != "seal":
            return False
        valid = sum(1 for vote in proof.votes() if vote.validator in ctx.committee.validators
                    and ctx.verifier.verify_record(vote, ctx.state.public_key(vote.validator)))
        return valid >= ctx.committee.quorum

    # --- block votes ------------------------------------------------------------------------
    def _store_bv(self, bv: BlockVote) -> None:
        self.bv_of[bv.validator] = bv
        self.bvs.setdefault(bv.signing_hash, {})[bv.validator] = bv

    def on_block_vote(self, sender: str, msg: BlockVoteMsg) -> None:
        ctx, bv = self.ctx, msg.vote
        if bv.validator != sender or sender not in ctx.committee.validators or bv.index != ctx.h:
            ctx.evidence("invalid-message", sender, "block vote not sent by a validator of its own")
            return
        held = self.bv_of.get(sender)
        if held is not None:
            if held.signing_hash != bv.signing_hash and self._bv_ok(held) and self._bv_ok(bv):
                ctx.evidence("block-vote-equivocation", sender, "block votes for two blocks at one height",
                             (held.to_dict(), bv.to_dict()))
            return
        self._store_bv(bv)  # checked when it counts (see `_checked_bvs`)
        if len(self.bvs[bv.signing_hash]) >= ctx.committee.quorum and self.decided is None:
            if len(self._checked_bvs(bv.signing_hash)) >= ctx.committee.quorum:
                self.block_decided(bv.signing_hash)
        self._agreements().poke_seal()

    def _bv_ok(self, bv: BlockVote) -> bool:
        return self.ctx.verifier.verify_record(bv, self.ctx.state.public_key(bv.validator))

    def _checked_bvs(self, signing_hash: str) -> dict[str, BlockVote]:
        """The block votes for `signing_hash` whose signatures verify (forged ones are dropped, as evidence)."""
        book = self.bvs.get(signing_hash, {})
        for who, bv in list(book.items()):
            if who != self.ctx.me and not self._bv_ok(bv):
                del book[who]
                self.bv_of.pop(who, None)
                self.ctx.evidence("invalid-message", who, "block vote signature does not verify")
        return book

    def block_decided(self, signing_hash: str) -> None:
        ctx = self.ctx
        if self.decided is not None:
            if self.decided != signing_hash:
                ctx.evidence("block-vote-equivocation", ctx.me,
                             "two blocks decided at one height: more than f validators are faulty")
            return
        self.decided = signing_hash
        if ctx.phase is not HeightPhase.COMMITTED:
            ctx.advance(HeightEvent.BLOCK_DECIDED)
        if ctx.is_validator and self.my_bv is None:
            bv = BlockVote(validator=ctx.me, index=ctx.h, signing_hash=signing_hash).signed_by(ctx.identity)
            self.my_bv = bv
            ctx.dirty = True
            self._store_bv(bv)
            ctx.send(ctx.other_validators, BlockVoteMsg(bv))
        self._agreements().start_seal()

    def cross_check(self, block: Block) -> None:
        """Compare the votes a verified block carries with those their signers sent us: equivocation shows."""
        self.quality.cross_check(block)
        ctx = self.ctx
        for bv in block.block_votes:
            held_bv = self.bv_of.get(bv.validator)  # stored unchecked: evidence needs its signature too
            if held_bv is not None and held_bv.signing_hash != bv.signing_hash and ctx.verifier.verify_record(
                    held_bv, ctx.state.public_key(held_bv.validator)):
                ctx.evidence("block-vote-equivocation", bv.validator, "block votes for two blocks at one height",
                             (held_bv.to_dict(), bv.to_dict()))

    # --- the sealed block ---------------------------------------------------------------------
    def build_sealed(self) -> Block | None:
        ctx = self.ctx
        if self.decided is None:
            return None
        agreements = self._agreements()
        if len(self.bvs.get(self.decided, {})) < ctx.committee.quorum or not agreements.validating:
            return None
        votes = self._checked_bvs(self.decided)
        if len(votes) < ctx.committee.quorum:
            return None
        value = agreements.decided_block_value(self.decided, tuple(sorted(set(votes) - {ctx.me})))
        if value is None:
            return None
        return value.with_votes(list(votes.values()))

    def valid_sealed(self, block: Block) -> bool:
        return self.check_sealed(block) is not None

    def check_sealed(self, block: Block, sender: str | None = None) -> ChainState | None:
        """The state after `block`, a sealed block of this height, or None if it is not valid.

        Nothing is computed from a block its general did not sign (that costs
        one encoding and one signature check), and such a block is held
        against the member who sent it, never against the general it names.
        A signed block that fails later checks is held against its sender
        when we know it, else against its general.
        """
        ctx = self.ctx
        if block.index != ctx.h:
            return None
        if not ctx.general_signed(block):
            if sender is not None:
                ctx.evidence("invalid-message", sender, "sent a block its general did not sign")
            return None
        bid = ctx.sealed_id(block)
        if bid in self._sealed_ok:
            return self._sealed_ok[bid]
        result: ChainState | None = None
        if block.block_hash == bid:
            try:
                if self.unsealed.passed_checks(block):
                    # its unsealed form passed every other check already: only the votes are new
                    check_block_votes(ctx.state, block, ctx.committee, ctx.verifier, ctx.signing_id(block))
                    result = ctx.state.apply(block)
                else:
                    result = verify_block(ctx.state, block, self._cert_check, signature_check=ctx.verifier.verify)
            except InvalidBlockError as exc:
                ctx.evidence("invalid-block", sender or block.general, f"sealed block refused: {exc.reason}")
        bounded(self._sealed_ok)
        self._sealed_ok[bid] = result
        if result is not None:
            self.cross_check(block)
        if result is not None and len(self.full_blocks) < MAX_FULL_BLOCKS:
            self.full[bid], self.full_blocks[bid] = result, block
        return result

    # --- commit and attestations -------------------------------------------------------------
    def commit(self, block: Block, new_state: ChainState) -> None:
        ctx = self.ctx
        if self.committed is not None:
            return
        self.committed = (block, new_state)
        ctx.advance(HeightEvent.COMMITTED)
        agreements = self._agreements()
        if agreements.validating:
            self.rounds_used = agreements.block_rounds()
        ctx.out.append(AppendBlock(block))
        if self.proof is None:
            self.proof = agreements.seal_proof(block.block_hash) or self.proven.get(block.block_hash)
        if ctx.is_validator:
            # everyone hears the hash; members outside the committee also get the block from the first
            # general in order; a validator still at this height gets block and proof when it asks
            rank = ctx.committee.rank_of(ctx.me)
            outsiders = tuple(m for m in ctx.others if m not in ctx.committee.validators)
            ctx.send(ctx.other_validators, CommittedMsg(ctx.h, block.block_hash))
            ctx.send(outsiders, CommittedMsg(ctx.h, block.block_hash, block if rank == 0 else None))
        ctx.out.append(Committed(block))

    def on_committed(self, sender: str, msg: CommittedMsg) -> None:
        if sender not in self.ctx.committee.validators:
            self._take_committed(msg, sender)  # only a proof (and the block) can count
            return
        held = self.attest_of.get(sender)
        if held is not None and held != msg.block_hash:
            self.ctx.evidence("attest-equivocation", sender, "attested two blocks at one height")
            return
        self.attest_of[sender] = msg.block_hash
        self.attest.setdefault(msg.block_hash, set()).add(sender)
        self._take_committed(msg, sender)

    def _take_committed(self, msg: CommittedMsg, sender: str) -> None:
        if msg.block is not None and msg.block_hash not in self._sealed_ok:
            self.check_sealed(msg.block, sender)
        if msg.proof is not None and msg.block_hash not in self.proven and \
                len(self.attest.get(msg.block_hash, ())) < self.ctx.committee.quorum:
            if self._proof_ok(msg.block_hash, msg.proof):
                self.proven[msg.block_hash] = msg.proof
        self.check_attested()

    def offer_block(self, block: Block, new_state: ChainState, confirmed: bool) -> None:
        """A verified block for this height from catch-up; `confirmed` when a certified successor links to it."""
        bid = block.block_hash
        bounded(self._sealed_ok)
        self._sealed_ok[bid] = new_state
        self.full[bid], self.full_blocks[bid] = new_state, block
        if confirmed:
            self.commit(block, new_state)
        else:
            self.check_attested()

    def check_attested(self) -> None:
        ctx = self.ctx
        if self.committed is not None:
            return
        candidates = [(bid, senders) for bid, senders in self.attest.items() if len(senders) >= ctx.committee.quorum]
        candidates += [(bid, self.attest.get(bid, set())) for bid in self.proven]
        for bid, senders in candidates:
            if bid in self.full:
                self.commit(self.full_blocks[bid], self.full[bid])
                return
            holders = sorted(senders) or sorted(v for v, _ in self.proven[bid].signers if v != ctx.me)
            if holders and ctx.tick - self._asked_block_tick >= ctx.params.catch_up_retry_ticks:
                self._asked_block_tick = ctx.tick
                ctx.send((holders[ctx.tick % len(holders)],), BlocksRequest(ctx.h, 1))

    # --- safety snapshot and re-sends ----------------------------------------------------------
    def restore(self, snap: SafetySnapshot) -> None:
        if snap.block_vote is not None:
            self.my_bv = snap.block_vote
            self.decided = snap.block_vote.signing_hash
            self._store_bv(snap.block_vote)
            self.ctx.advance(HeightEvent.BLOCK_DECIDED)

    def resend_block_vote(self) -> None:
        if self.my_bv is not None:
            self.ctx.send(self.ctx.other_validators, BlockVoteMsg(self.my_bv))

    def lagging_validators(self) -> tuple[str, ...]:
        """The other validators whose block vote for the decided block we have not seen."""
        if self.decided is None:
            return ()
        return tuple(p for p in self.ctx.other_validators if p not in self.bvs.get(self.decided, {}))
