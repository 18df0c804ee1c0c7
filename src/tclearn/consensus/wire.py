"""Messages on the wire: canonical CBOR `{"type": …, "body": …}`, and back.

`encode_message` is deterministic; `decode_message` accepts only what a
constructor accepts and turns every problem into `RemoteProtocolError` (a
peer's bad bytes are the peer's fault, never a crash of ours).
"""

from __future__ import annotations

from typing import Any, Mapping

import cbor2

from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.messages import (
    MAX_MESSAGE_BYTES, AttestRequest, BlocksRequest, BlocksResponse, BlockVoteMsg, CommittedMsg, DecidedMsg,
    GovernanceMsg, Message, ProposalMsg, QualityVoteMsg, RoundProposal, RoundVotes, StatusMsg, ValueReply,
    ValueRequest,
)
from tclearn.consensus.votes import VoteCertificate, VoteEntry
from tclearn.errors import ConsensusError, EncodingError, InvalidBlockError, RemoteProtocolError
from tclearn.ledger.block import Block
from tclearn.ledger.cbor_scan import scan
from tclearn.ledger.encoding import canonical_bytes
from tclearn.ledger.records import BlockVote, Proposal, QualityVote

__all__ = ["encode_message", "decode_message"]


def _body(m: Message) -> dict[str, Any]:
    if isinstance(m, ProposalMsg):
        return {"proposal": m.proposal.to_dict()}
    if isinstance(m, QualityVoteMsg):
        return {"proposal": m.proposal.to_dict(), "vote": m.vote.to_dict()}
    if isinstance(m, RoundProposal):
        return {"height": m.height, "instance": m.instance, "round": m.round, "valid_round": m.valid_round,
                "block": m.block.to_dict(), "polka": None if m.polka is None else m.polka.to_wire()}
    if isinstance(m, RoundVotes):
        return {"height": m.height, "instance": m.instance,
                "votes": [[v.round, v.phase, v.value, v.signature] for v in m.votes]}
    if isinstance(m, BlockVoteMsg):
        return {"vote": m.vote.to_dict()}
    if isinstance(m, CommittedMsg):
        return {"height": m.height, "block_hash": m.block_hash,
                "block": None if m.block is None else m.block.to_dict(),
                "proof": None if m.proof is None else m.proof.to_wire()}
    if isinstance(m, DecidedMsg):
        return {"height": m.height, "instance": m.instance, "block": m.block.to_dict(), "proof": m.proof.to_wire()}
    if isinstance(m, BlocksRequest):
        return {"from_index": m.from_index, "max_count": m.max_count}
    if isinstance(m, BlocksResponse):
        return {"blocks": [b.to_dict() for b in m.blocks]}
    if isinstance(m, AttestRequest):
        return {"height": m.height}
    if isinstance(m, ValueRequest):
        return {"height": m.height, "instance": m.instance, "value_id": m.value_id}
    if isinstance(m, ValueReply):
        return {"height": m.height, "instance": m.instance, "block": m.block.to_dict()}
    if isinstance(m, StatusMsg):
        return {"height": m.height, "head_hash": m.head_hash}
    if isinstance(m, GovernanceMsg):
        return {"request": m.request.to_dict()}
    raise ConsensusError(f"not a message: {type(m).__name__}")


def encode_message(message: Message) -> bytes:
    """Canonical CBOR of a message: {"type": …, "body": …}."""
    return canonical_bytes({"type": message.TYPE, "body": _body(message)})


def _block(data: Any) -> Block:
    return Block.from_dict(data)


def _from_body(kind: str, b: Mapping[str, Any]) -> Message:
    if kind == "proposal":
        return ProposalMsg(Proposal.from_dict(b["proposal"]))
    if kind == "quality-vote":
        return QualityVoteMsg(Proposal.from_dict(b["proposal"]), QualityVote.from_dict(b["vote"]))
    if kind == "round-proposal":
        polka = None if b["polka"] is None else VoteCertificate.from_wire(b["polka"])
        return RoundProposal(b["height"], b["instance"], b["round"], b["valid_round"], _block(b["block"]), polka)
    if kind == "round-votes":
        votes = b["votes"]
        if not isinstance(votes, list):
            raise ConsensusError("votes must be a list")
        return RoundVotes(b["height"], b["instance"], tuple(VoteEntry(*v) for v in votes))
    if kind == "block-vote":
        return BlockVoteMsg(BlockVote.from_dict(b["vote"]))
    if kind == "committed":
        proof = None if b["proof"] is None else VoteCertificate.from_wire(b["proof"])
        return CommittedMsg(b["height"], b["block_hash"], None if b["block"] is None else _block(b["block"]), proof)
    if kind == "decided":
        return DecidedMsg(b["height"], b["instance"], _block(b["block"]), VoteCertificate.from_wire(b["proof"]))
    if kind == "blocks-request":
        return BlocksRequest(b["from_index"], b["max_count"])
    if kind == "blocks-response":
        blocks = b["blocks"]
        if not isinstance(blocks, list):
            raise ConsensusError("blocks must be a list")
        return BlocksResponse(tuple(_block(x) for x in blocks))
    if kind == "attest-request":
        return AttestRequest(b["height"])
    if kind == "value-request":
        return ValueRequest(b["height"], b["instance"], b["value_id"])
    if kind == "value-reply":
        return ValueReply(b["height"], b["instance"], _block(b["block"]))
    if kind == "status":
        return StatusMsg(b["height"], b["head_hash"])
    if kind == "governance":
        return GovernanceMsg(GovernanceRequest.from_dict(b["request"]))
    raise ConsensusError(f"unknown message type {kind!r}")


def decode_message(data: bytes) -> Message:
    """The message encoded in `data`; RemoteProtocolError if it is not one.

    Decoding does not insist on the canonical form (re-encoding every message
    to compare would double its cost): what matters is canonical — a signed
    record's signature, a block's hash — is recomputed from the decoded
    fields by the record itself, so a non-canonical message cannot smuggle in
    anything a canonical one could not. Records validate every field.

    Cost: `cbor_scan.scan` refuses tags (cbor2 resolves shared references,
    sets, big numbers itself, never asking a tag hook), indefinite lengths,
    more than `MAX_ITEMS` items, nesting past `MAX_DEPTH` and lengths past the
    end before cbor2 runs, so what is decoded is a tree linear in `data`, and
    so is every later walk over it (records re-encode their fields to check
    signatures and hashes).
    """
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_MESSAGE_BYTES:
        raise RemoteProtocolError(f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        scan(data)
        value = cbor2.loads(bytes(data))
        if not isinstance(value, dict) or set(value) != {"type", "body"} or not isinstance(value["body"], dict):
            raise ConsensusError("a message is {type, body}")
        return _from_body(value["type"], value["body"])
    except (ConsensusError, EncodingError, InvalidBlockError, KeyError, TypeError, ValueError, IndexError,
            AttributeError, RecursionError, cbor2.CBORDecodeError) as exc:
        raise RemoteProtocolError(f"invalid message: {exc}") from None
