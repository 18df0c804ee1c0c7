"""The messages members exchange: typed, frozen, validated at construction.

Why two kinds of authentication. Records that are stored or relayed carry
their own Ed25519 signature (proposals, quality votes, blocks, block votes,
governance requests): anyone can check them, and they end up in the chain.
The agreement's own traffic (round proposals, prevotes, precommits,
attestations, status) is only ever counted for the member that sent it, so
it relies on the transport to name the sender (mutual TLS between nodes, the
simulator's network in tests) and costs no signature: the driver passes
`sender` as the transport proved it.

On the wire a message is canonical CBOR `{"type": …, "body": …}`
(`tclearn.consensus.wire`); a malformed message from a peer raises
`RemoteProtocolError`, never anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.votes import (
    INSTANCES, MAX_BLOCKS_PER_MESSAGE, MAX_MESSAGE_BYTES, MAX_VOTES_PER_MESSAGE, PHASES, AgreementVote,
    VoteCertificate, VoteEntry, _hash, _instance, _int, _type, agreement_vote_bytes,
)
from tclearn.errors import ConsensusError
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote, Proposal, QualityVote

__all__ = [
    "INSTANCES", "PHASES", "VoteEntry", "AgreementVote", "VoteCertificate", "agreement_vote_bytes", "ProposalMsg",
    "QualityVoteMsg", "RoundProposal", "RoundVotes", "BlockVoteMsg", "CommittedMsg", "DecidedMsg", "BlocksRequest",
    "BlocksResponse", "AttestRequest", "ValueRequest", "ValueReply", "StatusMsg", "GovernanceMsg", "Message",
    "height_of", "MAX_MESSAGE_BYTES", "MAX_VOTES_PER_MESSAGE", "MAX_BLOCKS_PER_MESSAGE",
]


@dataclass(frozen=True, slots=True)
class ProposalMsg:
    """Proposer → committee: a signed candidate increment."""

    TYPE: ClassVar[str] = "proposal"
    proposal: Proposal

    def __post_init__(self) -> None:
        _type(self.proposal, Proposal, "proposal")



@dataclass(frozen=True, slots=True)
class QualityVoteMsg:
    """Validator → committee: its signed quality vote, with the proposal (so any validator learns it)."""

    TYPE: ClassVar[str] = "quality-vote"
    proposal: Proposal
    vote: QualityVote

    def __post_init__(self) -> None:
        _type(self.proposal, Proposal, "proposal")
        _type(self.vote, QualityVote, "vote")
        if self.vote.height != self.proposal.height:
            raise ConsensusError("a quality vote and its proposal are for one height")



@dataclass(frozen=True, slots=True)
class RoundProposal:
    """General of `round` → committee: the value it proposes (re-proposed from `valid_round` if ≥ 0)."""

    TYPE: ClassVar[str] = "round-proposal"
    height: int
    instance: str
    round: int
    valid_round: int
    block: Block
    polka: VoteCertificate | None = None  # the prevotes at valid_round, when re-proposing

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _int(self.round, "round")
        if self.polka is not None:
            _type(self.polka, VoteCertificate, "polka")
            if (self.polka.height, self.polka.instance, self.polka.round, self.polka.phase) != (
                    self.height, self.instance, self.valid_round, "prevote"):
                raise ConsensusError("a re-proposal's polka is the prevotes of its valid round")
        if not isinstance(self.valid_round, int) or isinstance(self.valid_round, bool) or not (
                -1 <= self.valid_round < self.round or self.valid_round == -1):
            raise ConsensusError("valid_round must be −1 or an earlier round")
        _type(self.block, Block, "block")
        if self.block.index != self.height:
            raise ConsensusError("a round proposal's block is for its height")



@dataclass(frozen=True, slots=True)
class RoundVotes:
    """Sender → committee: some of its prevotes and precommits of one agreement."""

    TYPE: ClassVar[str] = "round-votes"
    height: int
    instance: str
    votes: tuple[VoteEntry, ...]

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _type(self.votes, tuple, "votes")
        if not self.votes or len(self.votes) > MAX_VOTES_PER_MESSAGE:
            raise ConsensusError(f"a vote message carries 1 to {MAX_VOTES_PER_MESSAGE} votes")
        for v in self.votes:
            _type(v, VoteEntry, "vote")



@dataclass(frozen=True, slots=True)
class BlockVoteMsg:
    """Validator → committee: its signed block vote on the decided block."""

    TYPE: ClassVar[str] = "block-vote"
    vote: BlockVote

    def __post_init__(self) -> None:
        _type(self.vote, BlockVote, "vote")



@dataclass(frozen=True, slots=True)
class CommittedMsg:
    """Committee member → members: "I committed `block_hash` at `height`" (with the block, for some)."""

    TYPE: ClassVar[str] = "committed"
    height: int
    block_hash: str
    block: Block | None = None
    proof: VoteCertificate | None = None  # a quorum of seal precommits for the block

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _hash(self.block_hash, "block_hash")
        if self.block is not None:
            _type(self.block, Block, "block")
            if self.block.index != self.height or self.block.block_hash != self.block_hash:
                raise ConsensusError("a committed message's block is the one it names")
        if self.proof is not None:
            _type(self.proof, VoteCertificate, "proof")
            if (self.proof.height, self.proof.instance, self.proof.phase, self.proof.value) != (
                    self.height, "seal", "precommit", self.block_hash):
                raise ConsensusError("a committed message's proof is the seal precommits for its block")



@dataclass(frozen=True, slots=True)
class DecidedMsg:
    """Validator → a validator that missed it: the value an agreement decided, and the precommits that did."""

    TYPE: ClassVar[str] = "decided"
    height: int
    instance: str
    block: Block
    proof: VoteCertificate

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _type(self.block, Block, "block")
        _type(self.proof, VoteCertificate, "proof")
        if (self.proof.height, self.proof.instance, self.proof.phase) != (self.height, self.instance, "precommit"):
            raise ConsensusError("a decision's proof is the precommits of its agreement")


@dataclass(frozen=True, slots=True)
class BlocksRequest:
    """Lagging member → peer: blocks from `from_index` on."""

    TYPE: ClassVar[str] = "blocks-request"
    from_index: int
    max_count: int

    def __post_init__(self) -> None:
        _int(self.from_index, "from_index", 1)
        _int(self.max_count, "max_count", 1)
        if self.max_count > MAX_BLOCKS_PER_MESSAGE:
            raise ConsensusError(f"at most {MAX_BLOCKS_PER_MESSAGE} blocks a request")


@dataclass(frozen=True, slots=True)
class BlocksResponse:
    """Peer → lagging member: consecutive blocks of its chain."""

    TYPE: ClassVar[str] = "blocks-response"
    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        _type(self.blocks, tuple, "blocks")
        if not self.blocks or len(self.blocks) > MAX_BLOCKS_PER_MESSAGE:
            raise ConsensusError(f"a response carries 1 to {MAX_BLOCKS_PER_MESSAGE} blocks")
        for i, b in enumerate(self.blocks):
            _type(b, Block, "block")
            if b.index != self.blocks[0].index + i:
                raise ConsensusError("a response's blocks are consecutive")


@dataclass(frozen=True, slots=True)
class AttestRequest:
    """Lagging member → committee of `height`: which block did you commit there?"""

    TYPE: ClassVar[str] = "attest-request"
    height: int

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)


@dataclass(frozen=True, slots=True)
class ValueRequest:
    """Member → peers that voted for a value it lacks: send me the value with this id."""

    TYPE: ClassVar[str] = "value-request"
    height: int
    instance: str
    value_id: str

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _hash(self.value_id, "value_id")



@dataclass(frozen=True, slots=True)
class ValueReply:
    """Peer → member: a value of an agreement (self-authenticating: its id is its hash)."""

    TYPE: ClassVar[str] = "value-reply"
    height: int
    instance: str
    block: Block

    def __post_init__(self) -> None:
        _int(self.height, "height", 1)
        _instance(self.instance)
        _type(self.block, Block, "block")



@dataclass(frozen=True, slots=True)
class StatusMsg:
    """Member → members, now and then: the height and hash of my chain's head."""

    TYPE: ClassVar[str] = "status"
    height: int
    head_hash: str

    def __post_init__(self) -> None:
        _int(self.height, "height")
        _hash(self.head_hash, "head_hash")


@dataclass(frozen=True, slots=True)
class GovernanceMsg:
    """Requester → committee: a signed governance request for one height."""

    TYPE: ClassVar[str] = "governance"
    request: GovernanceRequest

    def __post_init__(self) -> None:
        _type(self.request, GovernanceRequest, "request")



def height_of(message: "Message") -> int | None:
    """The height a message is about (None for catch-up traffic, which is not tied to one)."""
    if isinstance(message, (ProposalMsg, QualityVoteMsg)):
        return message.proposal.height
    if isinstance(message, BlockVoteMsg):
        return message.vote.index
    if isinstance(message, GovernanceMsg):
        return message.request.height
    if isinstance(message, (RoundProposal, RoundVotes, ValueRequest, ValueReply, CommittedMsg, AttestRequest,
                            DecidedMsg)):
        return message.height
    return None


Message = Union[
    ProposalMsg, QualityVoteMsg, RoundProposal, RoundVotes, BlockVoteMsg, CommittedMsg, DecidedMsg, BlocksRequest,
    BlocksResponse, AttestRequest, ValueRequest, ValueReply, StatusMsg, GovernanceMsg,
]


# --- wire ---------------------------------------------------------------------
