"""The state of one member's work on a height, shared by the parts of `HeightWork`.

`HeightWork` is assembled from parts by concern — candidates and quality votes
(`height_candidates`), certification and commit (`height_certify`), and the
agreements, time and effects (`height`) — that all work on the state set up
here. See `height.py` for the theory of operation.
"""

from __future__ import annotations

from typing import Any, Callable

from tclearn.consensus.actions import Action, RecordEvidence, Send
from tclearn.consensus.agreement import Agreement
from tclearn.consensus.certificate import make_certificate_check
from tclearn.consensus.committee import Committee
from tclearn.consensus.evidence import Evidence
from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.messages import VoteCertificate, agreement_vote_bytes
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import HeightPhase
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote, Proposal, QualityVote
from tclearn.ledger.state import ChainState

__all__ = ["HeightBase", "MAX_CACHED", "MAX_PROPOSALS_PER_PROPOSER", "MAX_GOVERNANCE", "MAX_FULL_BLOCKS",
           "MAX_VALUE_REPLIES_PER_PEER"]

MAX_PROPOSALS_PER_PROPOSER = 2
MAX_GOVERNANCE = 8
MAX_FULL_BLOCKS = 4
MAX_VALUE_REPLIES_PER_PEER = 8
MAX_CACHED = 512  # entries of each per-height verdict cache


class HeightBase:
    """The state of one member's work on one height, and the small helpers every part uses."""

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
        self.peers = tuple(m for m in committee.generals if m != self.me)  # the other validators
        self.lam = float(state.config.lam)
        self.max_drop = state.config.floor
        self.start_tick = self.tick = now_tick
        self.now_ms = now_ms
        self.phase = HeightPhase.WAITING
        self.is_validator = self.me in committee.validators
        self.my_rank = committee.proposer_rank(self.me)
        self.out: list[Action] = []
        self.dirty = False
        self.head_proof: Any = None  # seal proof of the parent block, kept in the safety snapshot
        self.evidence_count = 0
        self._cert_check = make_certificate_check(verifier)
        # proposals and quality votes
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
        # block votes, decision, attestations
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
        self._value_replies: dict[str, int] = {}
        self._fetching: set[str] = set()
        self._ids: dict[int, tuple[Block, str]] = {}
        self._unsealed_ok: dict[tuple[str, bytes], bool] = {}
        self._sealed_ok: dict[str, ChainState | None] = {}
        self.block_inst: Agreement | None = None
        self.seal_inst: Agreement | None = None

    # --- small helpers -------------------------------------------------------
    def _evidence(self, kind: str, member: str, reason: str, records: tuple[dict[str, Any], ...] = ()) -> None:
        if self.evidence_count < self.params.evidence_max:
            self.evidence_count += 1
            self.out.append(RecordEvidence(Evidence(kind, member, self.h, reason, records)))

    def _send(self, to: tuple[str, ...], message: Any) -> None:
        if to:
            self.out.append(Send(to, message))

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

    @staticmethod
    def _bounded(cache: dict[Any, Any]) -> None:
        """Forget the oldest verdicts of a per-height cache (a peer could fill it with junk)."""
        while len(cache) >= MAX_CACHED:
            del cache[next(iter(cache))]

    def _signing_id(self, block: Block) -> str:
        return self._memo(block, lambda b: b.signing_hash, 0)

    def _sealed_id(self, block: Block) -> str:
        return self._memo(block, lambda b: b.compute_hash(), 1)

    def _general_signed(self, block: Block) -> bool:
        """The block's general is a validator of this height and signed it: checked before any digest of it."""
        return self._memo(block, self._general_verdict, 2) == "signed"

    def _general_verdict(self, block: Block) -> str:
        key = self.state.public_key(block.general)
        if key is None or block.general not in self.committee.validators:
            return "not a validator"
        if not self.verifier.verify(key, block.general_signature, block.signing_bytes()):
            return "bad signature"
        return "signed"

    def _signer(self, instance: str) -> Callable[[int, str, str], bytes]:
        def sign(round_: int, phase: str, value: str) -> bytes:
            return self.identity.sign(agreement_vote_bytes(self.me, self.h, instance, round_, phase, value))
        return sign

    def _checker(self, instance: str) -> Callable[[str, int, str, str, bytes], bool]:
        def check(who: str, round_: int, phase: str, value: str, signature: bytes) -> bool:
            key = self.state.public_key(who)
            return key is not None and self.verifier.verify(
                key, signature, agreement_vote_bytes(who, self.h, instance, round_, phase, value))
        return check

    def _instance(self, name: str) -> Agreement | None:
        return self.block_inst if name == "block" else self.seal_inst

    def _start_instance(self, inst: Agreement) -> None:
        if inst is self.block_inst:
            self._start_block()
        elif not inst.started:
            inst.start(self.tick)
