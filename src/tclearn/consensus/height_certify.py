"""Certification and commit: block votes, the sealed block, attestations, proofs.

Part of `HeightWork` (see `height.py`): steps 4–6 of a height.
"""

from __future__ import annotations


from tclearn.consensus.actions import AppendBlock, Committed
from tclearn.consensus.certificate import check_block_votes
from tclearn.consensus.messages import (
    BlocksRequest, BlockVoteMsg, CommittedMsg, DecidedMsg, ValueReply, ValueRequest, VoteCertificate,
)
from tclearn.consensus.phases import HeightEvent, HeightPhase, next_phase
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import verify_block
from tclearn.consensus.height_base import MAX_FULL_BLOCKS, MAX_VALUE_REPLIES_PER_PEER, HeightBase

__all__ = ["CertifyWork"]


class CertifyWork(HeightBase):
    """Block votes, the seal, the commit, attestations, decision proofs, values on demand."""

    def _proof_ok(self, block_hash: str, proof: VoteCertificate) -> bool:
        """q signed seal precommits of one round, by distinct validators of this height, for `block_hash`."""
        if proof.value != block_hash or proof.height != self.h or proof.instance != "seal":
            return False
        valid = sum(1 for vote in proof.votes() if vote.validator in self.committee.validators
                    and self.verifier.verify_record(vote, self.state.public_key(vote.validator)))
        return valid >= self.committee.quorum

    def _proof_of(self, block_hash: str) -> VoteCertificate | None:
        inst = self.seal_inst
        if inst is None or inst.decision is None or self._sealed_id(inst.decision) != block_hash:
            return None
        signers = inst.certificate(inst.decision_round, "precommit", block_hash)
        if not signers:
            return None
        return VoteCertificate(self.h, "seal", inst.decision_round, "precommit", block_hash, signers)

    # --- block votes -----------------------------------------------------------
    def _store_bv(self, bv: BlockVote) -> None:
        self.bv_of[bv.validator] = bv
        self.bvs.setdefault(bv.signing_hash, {})[bv.validator] = bv

    def on_block_vote(self, sender: str, bv: BlockVote) -> None:
        if not self.is_validator:
            return
        if bv.validator != sender or sender not in self.committee.validators or bv.index != self.h:
            self._evidence("invalid-message", sender, "block vote not sent by a validator of its own")
            return
        held = self.bv_of.get(sender)
        if held is not None:
            if held.signing_hash != bv.signing_hash and self._bv_ok(held) and self._bv_ok(bv):
                self._evidence("block-vote-equivocation", sender, "block votes for two blocks at one height",
                               (held.to_dict(), bv.to_dict()))
            return
        self._store_bv(bv)  # checked when it counts (see `_checked_bvs`)
        if len(self.bvs[bv.signing_hash]) >= self.committee.quorum and self.decided is None:
            if len(self._checked_bvs(bv.signing_hash)) >= self.committee.quorum:
                self._block_decided(bv.signing_hash)
        if self.seal_inst is not None and self.seal_inst.started:
            self.seal_inst.poke(self.tick)

    def _bv_ok(self, bv: BlockVote) -> bool:
        return self.verifier.verify_record(bv, self.state.public_key(bv.validator))

    def _checked_bvs(self, signing_hash: str) -> dict[str, BlockVote]:
        """The block votes for `signing_hash` whose signatures verify (forged ones are dropped, as evidence)."""
        book = self.bvs.get(signing_hash, {})
        for who, bv in list(book.items()):
            if who != self.me and not self._bv_ok(bv):
                del book[who]
                self.bv_of.pop(who, None)
                self._evidence("invalid-message", who, "block vote signature does not verify")
        return book

    def _block_decided(self, signing_hash: str) -> None:
        if self.decided is not None:
            if self.decided != signing_hash:
                self._evidence("block-vote-equivocation", self.me,
                               "two blocks decided at one height: more than f validators are faulty")
            return
        self.decided = signing_hash
        if self.phase is not HeightPhase.COMMITTED:
            self.phase = next_phase(self.phase, HeightEvent.BLOCK_DECIDED)
        if self.is_validator and self.my_bv is None:
            bv = BlockVote(validator=self.me, index=self.h, signing_hash=signing_hash).signed_by(self.identity)
            self.my_bv = bv
            self.dirty = True
            self._store_bv(bv)
            self._send(self.peers, BlockVoteMsg(bv))
        if self.seal_inst is not None:
            self._start_instance(self.seal_inst)
            self.seal_inst.poke(self.tick)

    # --- agreement on the sealed block -------------------------------------------
    def _build_sealed(self) -> Block | None:
        if self.decided is None:
            return None
        if len(self.bvs.get(self.decided, {})) < self.committee.quorum or self.block_inst is None:
            return None
        votes = self._checked_bvs(self.decided)
        if len(votes) < self.committee.quorum:
            return None
        value = self.block_inst.values.get(self.decided)
        if value is None:
            if self.decided not in self._fetching:  # decided by block votes alone: fetch the block
                self._fetching.add(self.decided)
                self.block_inst.expect(self.decided)
                self._send(tuple(sorted(set(votes) - {self.me})), ValueRequest(self.h, "block", self.decided))
            return None
        return value.with_votes(list(votes.values()))

    def _valid_sealed(self, block: Block) -> bool:
        return self._check_sealed(block) is not None

    def _check_sealed(self, block: Block, sender: str | None = None) -> ChainState | None:
        """The state after `block`, a sealed block of this height, or None if it is not valid.

        Nothing is computed from a block its general did not sign (that costs
        one encoding and one signature check), and such a block is held
        against the member who sent it, never against the general it names.
        A signed block that fails later checks is held against its sender
        when we know it, else against its general.
        """
        if block.index != self.h:
            return None
        if not self._general_signed(block):
            if sender is not None:
                self._evidence("invalid-message", sender, "sent a block its general did not sign")
            return None
        bid = self._sealed_id(block)
        if bid in self._sealed_ok:
            return self._sealed_ok[bid]
        result: ChainState | None = None
        if block.block_hash == bid:
            try:
                if self._unsealed_ok.get((self._signing_id(block), block.general_signature)):
                    # its unsealed form passed every other check already: only the votes are new
                    check_block_votes(self.state, block, self.committee, self.verifier, self._signing_id(block))
                    result = self.state.apply(block)
                else:
                    result = verify_block(self.state, block, self._cert_check, signature_check=self.verifier.verify)
            except InvalidBlockError as exc:
                self._evidence("invalid-block", sender or block.general, f"sealed block refused: {exc.reason}")
        self._bounded(self._sealed_ok)
        self._sealed_ok[bid] = result
        if result is not None:
            self._cross_check(block)
        if result is not None and len(self.full_blocks) < MAX_FULL_BLOCKS:
            self.full[bid], self.full_blocks[bid] = result, block
        return result

    # --- commit and attestations ---------------------------------------------------
    def _commit(self, block: Block, new_state: ChainState) -> None:
        if self.committed is not None:
            return
        self.committed = (block, new_state)
        self.phase = next_phase(self.phase, HeightEvent.COMMITTED)
        if self.block_inst is not None:
            self.rounds_used = self.block_inst.round + 1
        self.out.append(AppendBlock(block))
        if self.proof is None:
            self.proof = self._proof_of(block.block_hash) or self.proven.get(block.block_hash)
        if self.is_validator:
            # everyone hears the hash; members outside the committee also get the block from the first
            # general in order; a validator still at this height gets block and proof when it asks
            rank = self.committee.rank_of(self.me)
            outsiders = tuple(m for m in self.others if m not in self.committee.validators)
            self._send(self.peers, CommittedMsg(self.h, block.block_hash))
            self._send(outsiders, CommittedMsg(self.h, block.block_hash, block if rank == 0 else None))
        self.out.append(Committed(block))

    def on_committed(self, sender: str, msg: CommittedMsg) -> None:
        if sender not in self.committee.validators:
            self._take_committed(msg, sender)  # only a proof (and the block) can count
            return
        held = self.attest_of.get(sender)
        if held is not None and held != msg.block_hash:
            self._evidence("attest-equivocation", sender, "attested two blocks at one height")
            return
        self.attest_of[sender] = msg.block_hash
        self.attest.setdefault(msg.block_hash, set()).add(sender)
        self._take_committed(msg, sender)

    def on_proof(self, msg: CommittedMsg) -> None:
        """A committed message from anyone (a helper, a catch-up peer): only its proof and block count."""
        self._take_committed(msg)

    def _take_committed(self, msg: CommittedMsg, sender: str | None = None) -> None:
        if msg.block is not None and msg.block_hash not in self._sealed_ok:
            self._check_sealed(msg.block, sender)
        if msg.proof is not None and msg.block_hash not in self.proven and \
                len(self.attest.get(msg.block_hash, ())) < self.committee.quorum:
            if self._proof_ok(msg.block_hash, msg.proof):
                self.proven[msg.block_hash] = msg.proof
        self._check_attested()

    def offer_block(self, block: Block, new_state: ChainState, confirmed: bool) -> None:
        """A verified block for this height from catch-up; `confirmed` when a certified successor links to it."""
        bid = block.block_hash
        self._bounded(self._sealed_ok)
        self._sealed_ok[bid] = new_state
        self.full[bid], self.full_blocks[bid] = new_state, block
        if confirmed:
            self._commit(block, new_state)
        else:
            self._check_attested()

    def _check_attested(self) -> None:
        if self.committed is not None:
            return
        candidates = [(bid, senders) for bid, senders in self.attest.items() if len(senders) >= self.committee.quorum]
        candidates += [(bid, self.attest.get(bid, set())) for bid in self.proven]
        for bid, senders in candidates:
            if bid in self.full:
                self._commit(self.full_blocks[bid], self.full[bid])
                return
            holders = sorted(senders) or sorted(p.validator for p in self.proven[bid].precommits if p.validator != self.me)
            if holders and self.tick - self._asked_block_tick >= self.params.catch_up_retry_ticks:
                self._asked_block_tick = self.tick
                self._send((holders[self.tick % len(holders)],), BlocksRequest(self.h, 1))

    # --- values on demand --------------------------------------------------------------
    def on_decided(self, sender: str, msg: DecidedMsg) -> None:
        inst = self._instance(msg.instance)
        if inst is None or inst.decision is not None:
            return
        if msg.block.index != self.h or not self._general_signed(msg.block):  # before its id (a digest)
            self._evidence("invalid-message", sender, "a decision on a block its general did not sign")
            return
        value_id = self._value_of(inst, msg.block)
        if value_id != msg.proof.value:
            self._evidence("invalid-message", sender, "a decision whose proof is for another value")
            return
        self._start_instance(inst)
        inst.expect(value_id)
        inst.on_value(msg.block, self.tick)
        inst.on_certificate(msg.proof.round, "precommit", value_id, msg.proof.signers, self.tick)

    def on_value_request(self, sender: str, msg: ValueRequest) -> None:
        inst = self._instance(msg.instance)
        if inst is None or sender not in self.committee.validators:
            return
        served = self._value_replies.get(sender, 0)
        value = inst.values.get(msg.value_id)
        if value is not None and served < MAX_VALUE_REPLIES_PER_PEER:
            self._value_replies[sender] = served + 1
            self._send((sender,), ValueReply(self.h, msg.instance, value))

    def on_value_reply(self, sender: str, msg: ValueReply) -> None:
        inst = self._instance(msg.instance)
        # unasked, or not signed by its general: dropped before its id (a digest of the whole block) is computed
        if inst is not None and inst.fetching and msg.block.index == self.h and self._general_signed(msg.block):
            inst.on_value(msg.block, self.tick)
        if self.seal_inst is not None and self.seal_inst.started:
            self.seal_inst.poke(self.tick)
