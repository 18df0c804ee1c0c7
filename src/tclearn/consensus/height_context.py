"""What every part of a height shares: who we are, the parent state, the clock, the outbox, the phase.

A height (`height.Height`) is composed of parts that own their state — the
quality round, the certification, the agreements. They all read the same
facts (the parent state, the committee, our role), write to the same ordered
outbox (the order of actions is part of the protocol, see `actions`), and
move the same phase along the table of `phases`. This object holds exactly
that, and the small helpers built on it: evidence, sends, the memoised ids of
a block and the check of its general's signature, agreement vote signing.
"""

from __future__ import annotations

from typing import Any, Callable

from tclearn.consensus.actions import Action, RecordEvidence, Send
from tclearn.consensus.committee import Committee
from tclearn.consensus.evidence import Evidence
from tclearn.consensus.messages import agreement_vote_bytes
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import HeightEvent, HeightPhase, Role, next_phase
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState

__all__ = ["HeightContext", "MAX_CACHED", "bounded"]

MAX_CACHED = 512  # entries of each per-height verdict cache


def bounded(cache: dict[Any, Any]) -> None:
    """Forget the oldest verdicts of a per-height cache (a peer could fill it with junk)."""
    while len(cache) >= MAX_CACHED:
        del cache[next(iter(cache))]


class HeightContext:
    """The shared facts, clock, outbox and phase of one member's work on one height."""

    def __init__(self, *, identity: Identity, state: ChainState, committee: Committee, params: ConsensusParams,
                 verifier: SignatureVerifier, now_tick: int, now_ms: int, members: tuple[str, ...]) -> None:
        self.identity = identity
        self.me = identity.member_id
        self.state = state
        self.h = state.height + 1
        self.committee = committee
        self.params = params
        self.verifier = verifier
        self.members = members
        self.others = tuple(m for m in members if m != self.me)
        self.other_validators = tuple(m for m in committee.generals if m != self.me)
        self.lam = float(state.config.lam)
        self.max_drop = state.config.floor
        self.start_tick = self.tick = now_tick
        self.now_ms = now_ms
        self.phase = HeightPhase.WAITING
        self.is_validator = self.me in committee.validators
        self.role = Role.VALIDATOR if self.is_validator else Role.OBSERVER
        self.my_rank = committee.proposer_rank(self.me)
        self.out: list[Action] = []
        self.dirty = False  # our safety state changed: a snapshot goes out before the next sends
        self.evidence_count = 0
        self._ids: dict[int, tuple[Block, str]] = {}

    # --- phase and clock ---------------------------------------------------------
    def advance(self, event: HeightEvent) -> None:
        """Move the phase along `phases.HEIGHT_TRANSITIONS` (an illegal transition raises: our bug)."""
        self.phase = next_phase(self.phase, event)

    def set_clock(self, tick: int, now_ms: int) -> None:
        self.tick, self.now_ms = tick, now_ms

    def attempt(self) -> int:
        """How many proposal timeouts have passed since the height began (the proposer turn open)."""
        return (self.tick - self.start_tick) // self.params.proposal_timeout_ticks

    # --- output ------------------------------------------------------------------------
    def evidence(self, kind: str, member: str, reason: str, records: tuple[dict[str, Any], ...] = ()) -> None:
        if self.evidence_count < self.params.evidence_max:
            self.evidence_count += 1
            self.out.append(RecordEvidence(Evidence(kind, member, self.h, reason, records)))

    def send(self, to: tuple[str, ...], message: Any) -> None:
        if to:
            self.out.append(Send(to, message))

    # --- ids of blocks, memoised per object --------------------------------------------
    def _memo(self, block: Block, compute: Callable[[Block], str], tag: int) -> str:
        key = id(block) * 4 + tag
        hit = self._ids.get(key)
        if hit is not None and hit[0] is block:
            return hit[1]
        value = compute(block)
        if len(self._ids) >= MAX_CACHED:
            self._ids.clear()  # only a cache: ids are recomputed
        self._ids[key] = (block, value)
        return value

    def signing_id(self, block: Block) -> str:
        return self._memo(block, lambda b: b.signing_hash, 0)

    def sealed_id(self, block: Block) -> str:
        return self._memo(block, lambda b: b.compute_hash(), 1)

    def general_signed(self, block: Block) -> bool:
        """The block's general is a validator of this height and signed it: checked before any digest of it."""
        return self._memo(block, self._general_verdict, 2) == "signed"

    def _general_verdict(self, block: Block) -> str:
        key = self.state.public_key(block.general)
        if key is None or block.general not in self.committee.validators:
            return "not a validator"
        if not self.verifier.verify(key, block.general_signature, block.signing_bytes()):
            return "bad signature"
        return "signed"

    # --- agreement votes --------------------------------------------------------------
    def signer(self, instance: str) -> Callable[[int, str, str], bytes]:
        def sign(round_: int, phase: str, value: str) -> bytes:
            return self.identity.sign(agreement_vote_bytes(self.me, self.h, instance, round_, phase, value))
        return sign

    def checker(self, instance: str) -> Callable[[str, int, str, str, bytes], bool]:
        def check(who: str, round_: int, phase: str, value: str, signature: bytes) -> bool:
            key = self.state.public_key(who)
            return key is not None and self.verifier.verify(
                key, signature, agreement_vote_bytes(who, self.h, instance, round_, phase, value))
        return check
