"""The certificate check: a block is what the protocol could have committed.

Plugged into `tclearn.ledger.verify.verify_block` / `verify_chain`
(`certificate_check=check_certificate`), it runs after the ledger's own checks
(index, link, hash, general's signature, strengths, the kind's rules) and
recomputes, from the chain alone, what the consensus layer adds:

* the committee the protocol drew for the height (`committee_for`): the
  general is one of its validators;
* increment / rejected: the proposer is not a validator of the height (the
  proposer is never its own validator); every quality vote comes from a
  distinct validator, is signed by it and is for this proposal; validators
  shown to have signed two different quality votes (`payload["evidence"]`)
  have no vote counted; the kind is the strict-majority decision
  (`rules.decide_kind`); `payload["flagged"]` names exactly the validators
  whose G scores disagree with the majority's;
* revert / hyperparams / membership: the same committee (drawn excluding the
  height's scheduled proposer, whatever the kind, so a height has a single
  committee and a single certificate); no quality votes; the requester's
  signed request is valid and the requester is authorised
  (`governance.request_problem`);
* every block: at least ceil(2k/3) block votes from distinct validators on the
  block's signing hash, each signed by its validator.

Honest validators sign a block vote only for the block their agreement decided,
and at most one block is decided per height, so a certificate is proof of
the decision (see `tclearn.consensus.core`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from tclearn.consensus.committee import Committee, committee_for
from tclearn.consensus.governance import GOVERNANCE_KINDS, request_of_block, request_problem
from tclearn.consensus.rules import decide_kind, flagged_validators
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import ConsensusError, EncodingError, InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import Proposal, QualityVote
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import CertificateCheck

__all__ = ["check_certificate", "make_certificate_check", "check_block_content", "equivocation_evidence"]

_PAYLOAD_KEYS = {
    "increment": {"proposal", "flagged", "evidence"},
    "rejected": {"proposal", "flagged", "evidence"},
    "revert": {"target", "requester", "request_signature"},
    "hyperparams": {"hyperparams", "requester", "request_signature"},
    "membership": {"add", "remove", "requester", "request_signature"},
}


def _fail(block: Block, reason: str) -> InvalidBlockError:
    return InvalidBlockError(block.index, reason)


def equivocation_evidence(entry: Any, committee: Committee, proposal_hash: str, height: int,
                          verify: Callable[[QualityVote, bytes | None], bool], state: ChainState) -> str:
    """The validator an evidence entry convicts; raises ValueError when the entry proves nothing."""
    if not isinstance(entry, Mapping) or set(entry) != {"validator", "votes"}:
        raise ValueError("evidence entries are {validator, votes}")
    votes = entry["votes"]
    if not isinstance(votes, list) or len(votes) != 2:
        raise ValueError("evidence holds two quality votes")
    try:
        a, b = (QualityVote.from_dict(v) for v in votes)
    except EncodingError as exc:
        raise ValueError(f"bad quality vote in evidence: {exc}") from None
    who = entry["validator"]
    if who not in committee.validators or a.validator != who or b.validator != who:
        raise ValueError("evidence votes are not both by the named validator of this committee")
    if a.height != height or b.height != height or a.proposal_hash != proposal_hash or b.proposal_hash != proposal_hash:
        raise ValueError("evidence votes are not about this candidate")
    if a.signing_bytes() == b.signing_bytes():
        raise ValueError("evidence votes are the same vote")
    key = state.public_key(who)
    if not verify(a, key) or not verify(b, key):
        raise ValueError("evidence votes are not signed by the validator")
    return str(who)


def check_block_content(state: ChainState, block: Block, committee: Committee, verifier: SignatureVerifier) -> None:
    """Everything but the block votes: what a validator checks before voting for a block."""
    if block.general not in committee.validators:
        raise _fail(block, f"general {block.general} is not a validator of height {block.index}")
    allowed = _PAYLOAD_KEYS.get(block.kind)
    if allowed is None:
        raise _fail(block, f"a {block.kind} block cannot be certified")
    if set(block.payload) - allowed:
        raise _fail(block, f"unexpected payload fields {sorted(set(block.payload) - allowed)}")
    if block.kind in GOVERNANCE_KINDS:
        if block.quality_votes:
            raise _fail(block, f"a {block.kind} block carries no quality votes")
        try:
            request = request_of_block(block)
        except ConsensusError as exc:
            raise _fail(block, str(exc)) from None
        problem = request_problem(state, request, verifier.verify)
        if problem:
            raise _fail(block, problem)
        return
    try:
        proposal = Proposal.from_dict(block.payload.get("proposal"))
    except EncodingError as exc:
        raise _fail(block, f"bad proposal: {exc}") from None
    if committee.proposer_rank(proposal.proposer) < 0:
        raise _fail(block, f"{proposal.proposer} may not propose at height {block.index}")
    proposal_hash = proposal.proposal_hash
    verify: Callable[[QualityVote, bytes | None], bool] = verifier.verify_record
    convicted: set[str] = set()
    evidence = block.payload.get("evidence", [])
    if not isinstance(evidence, list):
        raise _fail(block, "evidence must be a list")
    for entry in evidence:
        try:
            convicted.add(equivocation_evidence(entry, committee, proposal_hash, block.index, verify, state))
        except ValueError as exc:
            raise _fail(block, str(exc)) from None
    seen: set[str] = set()
    for qv in block.quality_votes:
        if qv.validator not in committee.validators:
            raise _fail(block, f"quality vote by {qv.validator}, not a validator of this height")
        if qv.validator in seen:
            raise _fail(block, f"two quality votes by {qv.validator}")
        if qv.validator == proposal.proposer:
            raise _fail(block, f"quality vote by {qv.validator} on its own candidate")
        if qv.validator in convicted:
            raise _fail(block, f"quality vote by {qv.validator}, who equivocated")
        seen.add(qv.validator)
        if qv.height != block.index or qv.proposal_hash != proposal_hash or qv.model_hash != proposal.model_hash:
            raise _fail(block, f"quality vote of {qv.validator} is for another candidate")
        if not verify(qv, state.public_key(qv.validator)):
            raise _fail(block, f"quality vote signature of {qv.validator} does not verify")
    decided = decide_kind(block.quality_votes, committee.size, state.config.floor)
    if decided != block.kind:
        raise _fail(block, f"quality votes decide {decided or 'nothing yet'}, the block says {block.kind}")
    if block.payload.get("flagged", []) != flagged_validators(block.quality_votes):
        raise _fail(block, "flagged validators differ from the G scores of the votes")


def check_block_votes(state: ChainState, block: Block, committee: Committee, verifier: SignatureVerifier,
                      signing_hash: str) -> None:
    seen: set[str] = set()
    for bv in block.block_votes:
        if bv.validator not in committee.validators:
            raise _fail(block, f"block vote by {bv.validator}, not a validator of this height")
        if bv.validator in seen:
            raise _fail(block, f"two block votes by {bv.validator}")
        seen.add(bv.validator)
        if bv.index != block.index or bv.signing_hash != signing_hash:
            raise _fail(block, f"block vote of {bv.validator} is for another block")
        if not verifier.verify_record(bv, state.public_key(bv.validator)):
            raise _fail(block, f"block vote signature of {bv.validator} does not verify")
    if len(seen) < committee.quorum:
        raise _fail(block, f"{len(seen)} block votes, a certificate needs {committee.quorum} of {committee.size}")


def make_certificate_check(verifier: SignatureVerifier | None = None) -> CertificateCheck:
    """A certificate check that shares `verifier`'s memory of signatures already checked."""
    shared = verifier

    def check(state: ChainState, block: Block) -> None:
        v = shared if shared is not None else SignatureVerifier()
        committee = committee_for(state, block.index) if block.index == state.height + 1 else None
        if committee is None:
            raise _fail(block, f"index {block.index} does not follow {state.height}")
        check_block_content(state, block, committee, v)
        check_block_votes(state, block, committee, v, block.signing_hash)

    return check


def check_certificate(state: ChainState, block: Block) -> None:
    """The consensus certificate check, for `verify_chain(blocks, certificate_check=check_certificate)`."""
    make_certificate_check()(state, block)
