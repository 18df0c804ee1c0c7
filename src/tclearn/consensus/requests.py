"""Our own governance requests, renewed height after height until a block carries them.

A member asks for a revert, new hyper-parameters or a membership change by
sending a signed `GovernanceRequest` to the validators of the height it works
on. A request names its height, so when a height is committed without it
(another block won), the request is signed again for the next height and
re-sent — at most `ConsensusParams.request_heights_max` times; it is dropped
once a block of its kind by us carries the same body, or once the chain no
longer allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tclearn.consensus.governance import GovernanceRequest, request_of_block, request_problem
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import ConsensusError
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState

__all__ = ["PendingRequests"]


@dataclass
class _Pending:
    kind: str
    body: dict[str, Any]
    heights_left: int


class PendingRequests:
    """The governance requests we made that no block has carried yet."""

    def __init__(self, identity: Identity, params: ConsensusParams, verifier: SignatureVerifier) -> None:
        self.identity = identity
        self.me = identity.member_id
        self.params = params
        self.verifier = verifier
        self.pending: list[_Pending] = []

    def make(self, state: ChainState, height: int, kind: str, body: dict[str, Any]) -> GovernanceRequest:
        """A new signed request for `height`, kept for renewal (raises `ConsensusError` if the chain refuses it)."""
        request = GovernanceRequest(kind, self.me, height, body).signed_by(self.identity)
        problem = request_problem(state, request, self.verifier.verify)
        if problem:
            raise ConsensusError(f"cannot request {kind}: {problem}")
        self.pending.append(_Pending(kind, body, self.params.request_heights_max))
        return request

    def renew(self, block: Block, state: ChainState, height: int, issue: Callable[[GovernanceRequest], None]) -> None:
        """`block` was committed: drop what it carried, `issue` the rest again for `height`."""
        keep = []
        for p in self.pending:
            if block.kind == p.kind and block.contributor == self.me:
                try:
                    if request_of_block(block).body == p.body:
                        continue
                except ConsensusError:
                    pass
            p.heights_left -= 1
            if p.heights_left <= 0:
                continue
            request = GovernanceRequest(p.kind, self.me, height, p.body).signed_by(self.identity)
            if request_problem(state, request) is None:
                keep.append(p)
                issue(request)
        self.pending = keep
