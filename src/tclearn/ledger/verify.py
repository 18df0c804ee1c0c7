"""Full verification of a chain, block by block.

`verify_block(state, block)` checks one block against the state its parent
left: index, link, hash, timestamp, the general's membership and signature,
strengths recomputed from the chain, the kind's own rules (an increment's
model is its proposal's candidate, a rejected block leaves the head model
unchanged, a revert goes back to an earlier model and was asked for by an
authorised member…), and the certificate. The certificate check is pluggable:
the consensus layer passes one that also recomputes the committee the protocol
would have drawn (`tclearn.consensus.certificate.check_certificate`); the
ledger's default checks the signatures alone.

The first failure raises `InvalidBlockError` naming the block and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Iterable

from tclearn.errors import EncodingError, InvalidBlockError, SignatureError
from tclearn.identity import MEMBER_ID_RE, verify_signature
from tclearn.ledger.block import ZERO_HASH, Block
from tclearn.ledger.encoding import canonical_bytes, sha256_hex
from tclearn.ledger.hyperparams import HYPERPARAM_KEYS, hyperparams_problem
from tclearn.ledger.records import Proposal
from tclearn.ledger.state import ChainState

__all__ = ["verify_block", "verify_chain", "check_signatures_only", "CertificateCheck", "SignatureCheck",
           "revert_request_bytes", "HYPERPARAM_KEYS"]

CertificateCheck = Callable[[ChainState, Block], None]
SignatureCheck = Callable[[bytes, bytes, bytes], bool]  # (public key, signature, message) -> verifies


def _fail(block: Block, reason: str) -> InvalidBlockError:
    return InvalidBlockError(block.index, reason)


def check_signatures_only(state: ChainState, block: Block) -> None:
    """Every quality and block vote is by a member, once, and signed by it."""
    _check_vote_signatures(state, block, block.signing_hash)


def _check_vote_signatures(state: ChainState, block: Block, signing_hash: str) -> None:
    seen: set[str] = set()
    for qv in block.quality_votes:
        key = state.public_key(qv.validator)
        if key is None:
            raise _fail(block, f"quality vote by non-member {qv.validator}")
        if qv.validator in seen:
            raise _fail(block, f"two quality votes by {qv.validator}")
        seen.add(qv.validator)
        try:
            qv.verify(key)
        except SignatureError as exc:
            raise _fail(block, str(exc)) from None
    seen = set()
    for bv in block.block_votes:
        key = state.public_key(bv.validator)
        if key is None:
            raise _fail(block, f"block vote by non-member {bv.validator}")
        if bv.validator in seen:
            raise _fail(block, f"two block votes by {bv.validator}")
        seen.add(bv.validator)
        if bv.index != block.index or bv.signing_hash != signing_hash:
            raise _fail(block, f"block vote of {bv.validator} is for another block")
        try:
            bv.verify(key)
        except SignatureError as exc:
            raise _fail(block, str(exc)) from None


def revert_request_bytes(requester: str, target: int, height: int) -> bytes:
    return canonical_bytes({"type": "revert-request", "body": {"requester": requester, "target": target,
                                                                "height": height}})


def _proposal_of(state: ChainState, block: Block) -> Proposal:
    try:
        proposal = Proposal.from_dict(block.payload.get("proposal"))
    except EncodingError as exc:
        raise _fail(block, f"bad proposal: {exc}") from None
    if block.contributor != proposal.proposer:
        raise _fail(block, "contributor is not the proposer")
    key = state.public_key(proposal.proposer)
    if key is None:
        raise _fail(block, f"proposal by non-member {proposal.proposer}")
    try:
        proposal.verify(key)
    except SignatureError as exc:
        raise _fail(block, str(exc)) from None
    if proposal.height != block.index or proposal.prev_hash != block.prev_hash:
        raise _fail(block, "proposal is for another height or parent")
    if proposal.parent_model_hash != state.head_model_hash:
        raise _fail(block, "proposal was not trained from the head model")
    if block.data_ids_root != proposal.data_ids_root:
        raise _fail(block, "data_ids_root differs from the proposal's")
    proposal_hash = proposal.proposal_hash
    for qv in block.quality_votes:
        if qv.proposal_hash != proposal_hash or qv.model_hash != proposal.model_hash or qv.height != block.index:
            raise _fail(block, f"quality vote of {qv.validator} is for another candidate")
    return proposal


def _check_kind(state: ChainState, block: Block) -> None:
    kind = block.kind
    if kind == "genesis":
        raise _fail(block, "only block 0 may be a genesis block")
    if kind in ("increment", "rejected"):
        proposal = _proposal_of(state, block)
        expected = proposal.model_hash if kind == "increment" else state.head_model_hash
        if block.model_hash != expected:
            raise _fail(block, f"model_hash of a{'n' if kind == 'increment' else ''} {kind} block must be "
                               f"{'the candidate' if kind == 'increment' else 'the head model'}")
        return
    if block.contributor is not None and block.contributor not in state.members:
        raise _fail(block, f"contributor {block.contributor} is not a member")
    if kind == "revert":
        target = block.payload.get("target")
        requester = block.payload.get("requester")
        sig = block.payload.get("request_signature")
        if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < block.index:
            raise _fail(block, "revert target must be an earlier block index")
        if requester not in state.config.revert_authorized:
            raise _fail(block, f"{requester!r} is not authorised to revert")
        key = state.public_key(requester)
        if key is None or not isinstance(sig, bytes):
            raise _fail(block, "revert request is not signed by a member")
        try:
            verify_signature(key, sig, revert_request_bytes(requester, target, block.index))
        except SignatureError:
            raise _fail(block, "revert request signature does not verify") from None
        if block.model_hash != state.model_by_index[target]:
            raise _fail(block, f"revert must restore the model of block {target}")
        return
    if block.model_hash != state.head_model_hash:
        raise _fail(block, f"a {kind} block must leave the head model unchanged")
    if kind == "hyperparams":
        problem = hyperparams_problem(block.payload.get("hyperparams"), prefix="hyperparams.")
        if problem:
            raise _fail(block, problem)
    elif kind == "membership":
        add, remove = block.payload.get("add", []), block.payload.get("remove", [])
        if not isinstance(add, list) or not isinstance(remove, list) or not (add or remove):
            raise _fail(block, "membership must add or remove members")
        added: set[str] = set()
        for m in add:
            if not isinstance(m, Mapping) or not isinstance(m.get("public_key"), bytes) or len(m["public_key"]) != 32:
                raise _fail(block, "membership additions need an id and a 32-byte public key")
            mid = m.get("id")
            if not isinstance(mid, str) or not MEMBER_ID_RE.match(mid):
                raise _fail(block, f"membership addition has an invalid member id {mid!r}")
            if mid in state.members or mid in added:
                raise _fail(block, f"{mid} is already a member")
            added.add(mid)
        for mid in remove:
            if not isinstance(mid, str) or mid not in state.members:
                raise _fail(block, f"{mid!r} is not a member")


def verify_block(state: ChainState, block: Block, certificate_check: CertificateCheck | None = None, *,
                 signature_check: SignatureCheck | None = None) -> ChainState:
    """Check `block` as the successor of `state`; return the new state.

    Authentication first: after the fields compared as they are (index,
    parent), the general must be a member and its signature must verify
    before the block is hashed or checked any further, so a block nobody
    signed costs one encoding and one signature check. `signature_check(key,
    signature, message) -> bool` replaces the plain Ed25519 check (the
    consensus layer passes its memoised `SignatureVerifier.verify`).
    """
    if block.index != state.height + 1:
        raise _fail(block, f"index {block.index} does not follow {state.height}")
    if block.prev_hash != state.head_hash:
        raise _fail(block, "prev_hash does not link to the previous block")
    key = state.public_key(block.general)
    if key is None:
        raise _fail(block, f"general {block.general} is not a member")
    try:
        hashed, signing = block.hash_and_signing_bytes()  # encode once, check twice
    except EncodingError as exc:
        raise _fail(block, f"cannot be encoded: {exc}") from None
    if not _signed(key, block.general_signature, signing, signature_check):
        # refused; for the operator, say whether the contents changed or only the signature
        if block.block_hash != sha256_hex(hashed):
            raise _fail(block, "block_hash does not match its contents")
        raise _fail(block, f"signature of general {block.general} does not verify")
    if block.block_hash != sha256_hex(hashed):
        raise _fail(block, "block_hash does not match its contents")
    if block.timestamp < state.head_timestamp:
        raise _fail(block, "timestamp goes backwards")
    if block.strengths != state.strengths():
        raise _fail(block, "strengths differ from those recomputed from the chain")
    _check_kind(state, block)
    if certificate_check is None:
        _check_vote_signatures(state, block, sha256_hex(signing))
    else:
        certificate_check(state, block)
    return state.apply(block)


def _signed(key: bytes, signature: bytes, message: bytes, check: SignatureCheck | None) -> bool:
    if check is not None:
        return check(key, signature, message)
    try:
        verify_signature(key, signature, message)
    except SignatureError:
        return False
    return True


def verify_genesis(block: Block, expected_hash: str | None = None) -> ChainState:
    if block.index != 0 or block.kind != "genesis":
        raise _fail(block, "the first block must be a genesis block")
    if block.prev_hash != ZERO_HASH:
        raise _fail(block, "genesis prev_hash must be all zeros")
    if block.block_hash != block.compute_hash():
        raise _fail(block, "block_hash does not match its contents")
    if expected_hash is not None and block.block_hash != expected_hash:
        raise _fail(block, "genesis is not the coalition's genesis")
    try:
        state = ChainState.from_genesis(block)
    except Exception as exc:  # a malformed payload is an invalid block, whatever the cause
        raise _fail(block, f"genesis payload invalid: {exc}") from None
    key = state.public_key(block.general)
    if key is None or block.general != state.config.founder_id:
        raise _fail(block, "genesis must be signed by the founder")
    block.check_general_signature(key)
    if block.strengths != state.strengths():
        raise _fail(block, "genesis strengths must be 1/N each")
    return state


def verify_chain(
    blocks: Iterable[Block],
    certificate_check: CertificateCheck | None = None,
    genesis_hash: str | None = None,
) -> ChainState:
    """Verify a whole chain from genesis; return the final state.

    The error names the block by its position in the chain, which is its
    index in a valid chain: a block that lies about its own index is still
    named by where it stands.
    """
    it = iter(blocks)
    position = 0
    try:
        try:
            first = next(it)
        except StopIteration:
            raise InvalidBlockError(None, "the chain is empty") from None
        state = verify_genesis(first, genesis_hash)
        while True:
            position += 1
            try:
                block = next(it)
            except StopIteration:
                return state
            state = verify_block(state, block, certificate_check)
    except InvalidBlockError as exc:
        if exc.index is None or exc.index == position:
            raise
        raise InvalidBlockError(position, exc.reason) from None
