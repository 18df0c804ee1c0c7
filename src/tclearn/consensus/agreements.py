"""The two agreements of a height, and how their effects become messages and decisions.

A validator runs two Tendermint agreements (`agreement.Agreement`) per
height: "block" on the unsealed block (values built and checked by
`unsealed.UnsealedBlocks`), then "seal" on the sealed block (the decided block with its
block votes, built and checked by the certification). This part owns both
instances, the values peers ask us for, and turns what the agreements emit
(`tally` effects) into round messages, a decided block or a commit.
An observer (not in the committee) has no agreement: `validating` is False.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tclearn.consensus.agreement import Agreement
from tclearn.consensus.height_context import HeightContext
from tclearn.consensus.messages import (
    DecidedMsg, RoundProposal, RoundVotes, ValueReply, ValueRequest, VoteCertificate, VoteEntry,
)
from tclearn.consensus.phases import HeightEvent, HeightPhase
from tclearn.consensus.snapshot import InstanceSnapshot, SafetySnapshot
from tclearn.consensus.unsealed import UnsealedBlocks
from tclearn.consensus.tally import DecidedOut, Effect, MisbehaviourOut, NeedValueOut, ProposeOut, VoteOut
from tclearn.ledger.block import Block

if TYPE_CHECKING:
    from tclearn.consensus.certification import Certification

__all__ = ["Agreements", "MAX_VALUE_REPLIES_PER_PEER"]

MAX_VALUE_REPLIES_PER_PEER = 8


class Agreements:
    """The block and seal agreements of one height (both None for an observer)."""

    def __init__(self, ctx: HeightContext, unsealed: UnsealedBlocks, certification: Certification) -> None:
        self.ctx = ctx
        self.certification = certification
        self.block: Agreement | None = None
        self.seal: Agreement | None = None
        self._value_replies: dict[str, int] = {}
        self._fetching: set[str] = set()
        if ctx.is_validator:
            self.block = Agreement("block", ctx.committee, ctx.me, ctx.params, value_id=ctx.signing_id,
                                   validate=unsealed.valid, build=unsealed.build,
                                   sign=ctx.signer("block"), check=ctx.checker("block"))
            self.seal = Agreement("seal", ctx.committee, ctx.me, ctx.params, value_id=ctx.sealed_id,
                                  validate=certification.valid_sealed, build=certification.build_sealed,
                                  sign=ctx.signer("seal"), check=ctx.checker("seal"), provable_decisions=True)

    @property
    def validating(self) -> bool:
        return self.block is not None

    def instances(self) -> tuple[Agreement, ...]:
        return tuple(i for i in (self.block, self.seal) if i is not None)

    def _instance(self, name: str) -> Agreement | None:
        return self.block if name == "block" else self.seal

    # --- starting and waking -------------------------------------------------------------
    def start_block(self) -> None:
        inst = self.block
        if inst is not None and not inst.started:
            inst.start(self.ctx.tick)
            if self.ctx.phase is HeightPhase.WAITING:
                self.ctx.advance(HeightEvent.AGREEMENT_STARTED)
        elif inst is not None:
            inst.poke(self.ctx.tick)

    def poke_block(self) -> None:
        if self.block is not None and self.block.started:
            self.block.poke(self.ctx.tick)

    def start_seal(self) -> None:
        if self.seal is not None:
            self._start(self.seal)
            self.seal.poke(self.ctx.tick)

    def poke_seal(self) -> None:
        if self.seal is not None and self.seal.started:
            self.seal.poke(self.ctx.tick)

    def _start(self, inst: Agreement) -> None:
        if inst is self.block:
            self.start_block()
        elif not inst.started:
            inst.start(self.ctx.tick)

    def on_tick(self, tick: int) -> None:
        for inst in self.instances():
            if inst.started:
                inst.on_tick(tick)

    # --- what the certification asks --------------------------------------------------------
    def decided_block_value(self, value_id: str, holders: tuple[str, ...]) -> Block | None:
        """The decided unsealed block, if we hold it; else ask `holders` for it (once) and return None."""
        assert self.block is not None
        value = self.block.values.get(value_id)
        if value is None and value_id not in self._fetching:  # decided by block votes alone: fetch the block
            self._fetching.add(value_id)
            self.block.expect(value_id)
            self.ctx.send(holders, ValueRequest(self.ctx.h, "block", value_id))
        return value

    def block_rounds(self) -> int:
        """Rounds the block agreement took so far (validators)."""
        return self.block.round + 1 if self.block is not None else 0

    def seal_proof(self, block_hash: str) -> VoteCertificate | None:
        """The signed seal precommits that decided `block_hash`, if our seal agreement decided it."""
        inst = self.seal
        if inst is None or inst.decision is None or self.ctx.sealed_id(inst.decision) != block_hash:
            return None
        signers = inst.certificate(inst.decision_round, "precommit", block_hash)
        if not signers:
            return None
        return VoteCertificate(self.ctx.h, "seal", inst.decision_round, "precommit", block_hash, signers)

    # --- messages -------------------------------------------------------------------------------
    def on_round_proposal(self, sender: str, msg: RoundProposal) -> None:
        ctx, inst = self.ctx, self._instance(msg.instance)
        if inst is None or sender not in ctx.committee.validators:
            return
        if msg.block.index != ctx.h or not ctx.general_signed(msg.block):  # before its id (a digest)
            ctx.evidence("invalid-message", sender, f"{msg.instance} proposal of a block its general did not sign")
            return
        self._start(inst)
        if msg.polka is not None:
            inst.on_certificate(msg.polka.round, "prevote", msg.polka.value, msg.polka.signers, ctx.tick)
        inst.on_proposal(sender, msg.round, msg.valid_round, msg.block, ctx.tick)

    def on_round_votes(self, sender: str, msg: RoundVotes) -> None:
        inst = self._instance(msg.instance)
        if inst is None or sender not in self.ctx.committee.validators:
            return
        self._start(inst)
        inst.on_votes(sender, [(v.round, v.phase, v.value, v.signature) for v in msg.votes], self.ctx.tick)

    def on_decided(self, sender: str, msg: DecidedMsg) -> None:
        ctx, inst = self.ctx, self._instance(msg.instance)
        if inst is None or sender not in ctx.committee.validators or inst.decision is not None:
            return
        if msg.block.index != ctx.h or not ctx.general_signed(msg.block):  # before its id (a digest)
            ctx.evidence("invalid-message", sender, "a decision on a block its general did not sign")
            return
        value_id = self._value_of(inst, msg.block)
        if value_id != msg.proof.value:
            ctx.evidence("invalid-message", sender, "a decision whose proof is for another value")
            return
        self._start(inst)
        inst.expect(value_id)
        inst.on_value(msg.block, ctx.tick)
        inst.on_certificate(msg.proof.round, "precommit", value_id, msg.proof.signers, ctx.tick)

    def on_value_request(self, sender: str, msg: ValueRequest) -> None:
        inst = self._instance(msg.instance)
        if inst is None or sender not in self.ctx.committee.validators:
            return
        served = self._value_replies.get(sender, 0)
        value = inst.values.get(msg.value_id)
        if value is not None and served < MAX_VALUE_REPLIES_PER_PEER:
            self._value_replies[sender] = served + 1
            self.ctx.send((sender,), ValueReply(self.ctx.h, msg.instance, value))

    def on_value_reply(self, sender: str, msg: ValueReply) -> None:
        ctx, inst = self.ctx, self._instance(msg.instance)
        # unasked, or not signed by its general: dropped before its id (a digest of the whole block) is computed
        if inst is not None and inst.fetching and msg.block.index == ctx.h and ctx.general_signed(msg.block):
            inst.on_value(msg.block, ctx.tick)
        self.poke_seal()

    # --- effects ------------------------------------------------------------------------------
    def pump(self) -> None:
        """Turn every effect the agreements emitted into messages, a decided block or a commit."""
        for inst in self.instances():
            while inst.out:
                for effect in inst.drain():
                    self._apply(inst, effect)

    def _apply(self, inst: Agreement, effect: Effect) -> None:
        ctx = self.ctx
        if isinstance(effect, VoteOut):
            entry = VoteEntry(effect.round, effect.phase, effect.value, effect.signature)
            ctx.send(ctx.other_validators, RoundVotes(ctx.h, inst.name, (entry,)))
        elif isinstance(effect, ProposeOut):
            ctx.send(ctx.other_validators, self._round_proposal(inst, effect))
        elif isinstance(effect, DecidedOut):
            if inst is self.block:
                self.certification.block_decided(ctx.signing_id(effect.value))
            else:
                new_state = self.certification.check_sealed(effect.value)
                if new_state is not None:
                    self.certification.commit(effect.value, new_state)
        elif isinstance(effect, NeedValueOut):
            if effect.holders:
                ctx.send(effect.holders, ValueRequest(ctx.h, inst.name, effect.value_id))
        elif isinstance(effect, MisbehaviourOut):
            ctx.evidence(effect.kind, effect.member, effect.reason)

    def _round_proposal(self, inst: Agreement, p: ProposeOut) -> RoundProposal:
        polka = None
        if p.polka:
            polka = VoteCertificate(self.ctx.h, inst.name, p.valid_round, "prevote", self._value_of(inst, p.value),
                                    p.polka)
        return RoundProposal(self.ctx.h, inst.name, p.round, p.valid_round, p.value, polka)

    def _value_of(self, inst: Agreement, value: Block) -> str:
        return self.ctx.signing_id(value) if inst is self.block else self.ctx.sealed_id(value)

    # --- safety snapshot and re-sends ------------------------------------------------------------
    def dirty(self) -> bool:
        """Whether an agreement's safety state changed since the last snapshot."""
        return any(i.dirty for i in self.instances())

    def clear_dirty(self) -> None:
        for inst in self.instances():
            inst.dirty = False

    def snapshots(self) -> dict[str, InstanceSnapshot]:
        return {i.name: i.snapshot() for i in self.instances() if i.started}

    def restore(self, snap: SafetySnapshot) -> None:
        for inst in self.instances():
            if inst.name in snap.instances:
                inst.restore(snap.instances[inst.name], self.ctx.tick)
                if inst.name == "block" and self.ctx.phase is HeightPhase.WAITING:
                    self.ctx.advance(HeightEvent.AGREEMENT_STARTED)

    def resend(self) -> None:
        """Our votes and current proposals: laggards need them until the height is committed."""
        ctx = self.ctx
        for inst in self.instances():
            if not inst.started:
                continue
            votes = inst.resend_votes()
            if votes:
                ctx.send(ctx.other_validators, RoundVotes(ctx.h, inst.name, tuple(VoteEntry(*v) for v in votes)))
            current = inst.current_proposal()
            if current is not None:
                ctx.send(ctx.other_validators, self._round_proposal(inst, current))

    def resend_decision(self, decided: str | None, lagging: tuple[str, ...]) -> None:
        """Show validators that have not voted for the decided block the precommits that decided it."""
        inst = self.block
        if inst is not None and inst.decision is not None and decided is not None:
            round_, signers = inst.decision_certificate() if lagging else (-1, ())
            if signers:  # they have not voted for the block yet: maybe they missed its decision
                proof = VoteCertificate(self.ctx.h, "block", round_, "precommit", decided, signers)
                self.ctx.send(lagging, DecidedMsg(self.ctx.h, "block", inst.decision, proof))
