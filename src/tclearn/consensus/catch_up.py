"""Catching up and helping others catch up: blocks by request, recent proofs for laggards.

A member that learns of a later height (a status or an attestation from
ahead) asks one peer for blocks, at most once every `catch_up_retry_ticks`;
only an answer to a request of ours is read, and every block in it is
verified, certificate included, before it is offered to the height. A member
ahead keeps the last committed blocks of a few heights with the proof that
decided them, to show a validator still working on one of them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from tclearn.consensus.actions import Action, Send
from tclearn.consensus.certificate import make_certificate_check
from tclearn.consensus.messages import BlocksRequest, BlocksResponse, CommittedMsg
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import verify_block

__all__ = ["CatchUp", "RECENT_HEIGHTS", "HELPED_MAX"]

RECENT_HEIGHTS = 16  # committed heights whose block and proof we keep to show laggards
HELPED_MAX = 4096  # (laggard, height) pairs remembered to pace our help


class CatchUp:
    """Blocks we asked for, and what we keep to help members that lag behind."""

    def __init__(self, params: ConsensusParams, verifier: SignatureVerifier) -> None:
        self.params = params
        self.verifier = verifier
        self.cert_check = make_certificate_check(verifier)
        self.recent: OrderedDict[int, tuple[Block | None, Any, int]] = OrderedDict()  # height -> (block, proof, tick)
        self._helped: dict[tuple[str, int], int] = {}
        self._last_ask_tick = -10**9
        self._blocks_asked: dict[str, int] = {}  # peer -> tick we asked it for blocks (one answer each)

    # --- asking ------------------------------------------------------------------------
    def ask(self, peer: str, height: int, tick: int) -> Send | None:
        """A request for blocks from `height` to `peer`, unless we asked someone too recently."""
        if tick - self._last_ask_tick < self.params.catch_up_retry_ticks:
            return None
        self._last_ask_tick = tick
        return Send((peer,), BlocksRequest(height, self.params.blocks_per_response_max))

    def ask_again_now(self) -> None:
        """The last answer was full: the next ask goes out at once."""
        self._last_ask_tick = -10**9

    def note_sent(self, actions: list[Action], tick: int) -> None:
        """Remember whom we asked for blocks (their one answer will be read)."""
        for action in actions:
            if isinstance(action, Send) and isinstance(action.message, BlocksRequest):
                for peer in action.to:
                    self._blocks_asked[peer] = tick

    def answered(self, peer: str) -> bool:
        """Whether `peer`'s blocks answer a request of ours (each request is answered once)."""
        return self._blocks_asked.pop(peer, None) is not None

    def verified(self, state: ChainState, height: int, m: BlocksResponse) -> tuple[list[tuple[Block, ChainState]],
                                                                                   str | None]:
        """The blocks of `m` from `height` on that verify in a row, and why the first bad one was refused."""
        blocks = [b for b in m.blocks if b.index >= height]
        if not blocks or blocks[0].index != height:
            return [], None
        verified: list[tuple[Block, ChainState]] = []
        for block in blocks:
            try:
                after = verify_block(state, block, self.cert_check, signature_check=self.verifier.verify)
            except InvalidBlockError as exc:
                return verified, exc.reason
            verified.append((block, after))
            state = after
        return verified, None

    # --- helping --------------------------------------------------------------------------
    def remember(self, height: int, block: Block | None, proof: Any, tick: int) -> None:
        self.recent[height] = (block, proof, tick)
        while len(self.recent) > RECENT_HEIGHTS:
            self.recent.popitem(last=False)

    def help(self, sender: str, height: int, tick: int) -> CommittedMsg | None:
        """What to show a member still working on a height we committed (None: nothing, or not yet)."""
        if height not in self.recent:
            return None
        last = self._helped.get((sender, height))
        if last is not None and tick - last < self.params.catch_up_retry_ticks:
            return None
        if len(self._helped) > HELPED_MAX:
            self._helped.clear()
        self._helped[(sender, height)] = tick
        if tick - self.recent[height][2] < self.params.resend_ticks // 2:
            return None  # messages still in flight when we committed: the sender is not lagging (yet)
        return self.committed_msg(height, with_block=True)

    def committed_msg(self, height: int, with_block: bool) -> CommittedMsg:
        """What we know of a height we committed; after a restart only the proof (the block comes by catch-up)."""
        block, proof, _ = self.recent[height]
        block_hash = block.block_hash if block is not None else proof.value
        return CommittedMsg(height, block_hash, block if with_block else None, proof)
