"""The simulator's invariants, checked as they happen.

A `Monitor` watches every commit of an honest member and checks: no two
honest members commit different blocks at one height, nor does any agreement
of theirs decide differently, nor do two blocks of one height both gather a
certificate (every block vote sent is watched); every committed block
verifies (`verify_block` with `check_certificate`, with a verifier of its
own); no committed increment was rejected by an honest majority of its
committee (the simulator knows what each honest validator would vote).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from tclearn.consensus.certificate import check_certificate
from tclearn.consensus.committee import committee_for
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote, Proposal
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import verify_block, verify_genesis

__all__ = ["Monitor", "QualityOracle"]

# (parent model hash, candidate model hash, validator) -> would that honest validator accept?
QualityOracle = Callable[[str, str, str], bool]


@dataclass
class Monitor:
    """The invariants, checked at every commit of an honest member."""

    genesis: Block
    honest: set[str]
    oracle: QualityOracle | None = None
    canonical: dict[int, Block] = field(default_factory=dict)
    states: dict[int, ChainState] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    height_of: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    honest_majority_overruled: int = 0  # increments an honest majority accepted but the block rejected (not a fault)
    block_votes: dict[int, dict[str, set[str]]] = field(default_factory=dict)  # height -> signing hash -> voters
    decided: dict[tuple[int, str], str] = field(default_factory=dict)  # (height, agreement) -> value id

    def on_block_vote(self, vote: BlockVote) -> None:
        by_hash = self.block_votes.setdefault(vote.index, {})
        if len(by_hash) < 64:
            by_hash.setdefault(vote.signing_hash, set()).add(vote.validator)

    def on_decision(self, member: str, height: int, agreement: str, value_id: str) -> None:
        """An honest member's agreement decided: no other honest member may decide otherwise."""
        if member not in self.honest:
            return
        known = self.decided.setdefault((height, agreement), value_id)
        if known != value_id and (height, agreement, member) not in self.decided:
            self.decided[(height, agreement, member)] = value_id  # type: ignore[index]  # report once
            self.violations.append(f"height {height}: honest members' {agreement} agreements decided "
                                   f"{known[:12]}… and {value_id[:12]}… ({member})")

    def _check_certificates(self, parent: ChainState, block: Block) -> None:
        """Two different blocks must never both gather a 2/3 certificate at one height."""
        committee = committee_for(parent)
        for signing_hash, voters in self.block_votes.get(block.index, {}).items():
            if signing_hash != block.signing_hash and len(voters & committee.validators) >= committee.quorum:
                self.violations.append(f"height {block.index}: a second block gathered "
                                       f"{len(voters)} block votes")

    def __post_init__(self) -> None:
        self.canonical[0] = self.genesis
        self.states[0] = verify_genesis(self.genesis)

    def on_commit(self, member: str, block: Block) -> None:
        if member not in self.honest:
            return
        self.commits += 1
        h = block.index
        previous = self.height_of.get(member, 0)
        if h != previous + 1:
            self.violations.append(f"{member} committed height {h} after {previous}")
        self.height_of[member] = max(previous, h)
        known = self.canonical.get(h)
        if known is not None:
            if known.block_hash != block.block_hash:
                self.violations.append(f"height {h}: honest members committed different blocks "
                                       f"({known.block_hash[:12]}… and {block.block_hash[:12]}… by {member})")
            return
        parent = self.states.get(h - 1)
        if parent is None:
            self.violations.append(f"height {h} committed by {member} before any honest member committed {h - 1}")
            return
        try:
            state = verify_block(parent, block, check_certificate)
        except InvalidBlockError as exc:
            self.violations.append(f"height {h}: committed block does not verify: {exc.reason}")
            return
        self._check_quality(parent, block)
        self._check_certificates(parent, block)
        self.canonical[h] = block
        self.states[h] = state

    def _check_quality(self, parent: ChainState, block: Block) -> None:
        if self.oracle is None or block.kind not in ("increment", "rejected"):
            return
        proposal = Proposal.from_dict(block.payload["proposal"])
        committee = committee_for(parent)
        verdicts = {v: self.oracle(parent.head_model_hash, proposal.model_hash, v)
                    for v in committee.validators if v in self.honest}
        rejecting = sum(1 for ok in verdicts.values() if not ok)
        accepting = len(verdicts) - rejecting
        if block.kind == "increment" and 2 * rejecting > committee.size:
            self.violations.append(f"height {block.index}: increment committed although {rejecting} honest "
                                   f"validators of {committee.size} rejected it")
        if block.kind == "rejected" and 2 * accepting > committee.size:
            self.honest_majority_overruled += 1

    @property
    def height(self) -> int:
        return max(self.canonical)
