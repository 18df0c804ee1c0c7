"""A member's protocol core: sans-IO, one instance per member.

Theory of operation. The core is a state machine in the style of etcd's raft
and h11: messages (with the sender the transport proved), timer ticks,
evaluation and training results come in; a list of `actions` comes out —
messages to send, blocks to append, a safety snapshot to persist, models to
evaluate or train, blocks to serve, commits to announce, evidence to keep. It
never touches a socket, a clock, a file or a random generator: the driver
(`tclearn.member.driver`) does, and the simulator hands the driver simulated
ones. It imports neither torch nor the network.

Per height the work is done by a `Height` (see `height.py` for the steps and
its parts); our own governance requests are renewed by `requests.PendingRequests`,
and catching up (and helping others catch up) is `catch_up.CatchUp`'s job.
Why the design is safe with f < k/3 faulty validators, whatever the network
does (drops, duplicates, delays, reorders, partitions):

0. *Who said what.* The transport names the sender of each message (mutual
   TLS between nodes); records that end up in the chain or are shown to
   others are signed (proposals, quality votes, blocks, block votes, and
   agreement votes for a value, so that a polka or a decision can be shown).
1. *One block per height.* The block is chosen by a Tendermint agreement
   (`agreement.py`): at most one value is ever decided at a height.
2. *One certificate per height.* An honest validator signs a single block
   vote per height, and only for the decided block (it remembers it across
   crashes). A certificate is q = ceil(2k/3) block votes; two certificates for
   different blocks would share 2q − k > f validators, one of them honest,
   who would have voted twice. So a certificate found in any chain proves the
   decision — which is why a lagging member can check blocks fetched from
   any single peer.
3. *One sealed block.* The stored block includes its votes, so its hash
   depends on which votes it carries; a second agreement (the "seal") picks
   one sealed form, and honest validators only attest that one. A member
   that did not take part waits for a quorum of matching attestations, or a
   quorum of signed seal precommits (the decision itself), or the next
   certified block, whose parent hash names the seal (an honest validator of
   the next height only accepts a block whose parent is its own head).
4. *Honest quality majority.* An increment needs accepting votes from a
   strict majority of the committee (2A > k): if a strict majority of the
   committee is honest and rejects, no increment can be certified.

Liveness, with more than 2/3 of the committee honest and connected: rounds
grow their timeouts until an honest general's round succeeds (a general
re-proposing its locked block shows the polka that locked it); every member
re-sends its votes of the height now and then; a validator that decided
shows the decision (signed precommits) to one still working on the height;
missing values, blocks and attestations are fetched; a member that falls
behind catches up block by block, checking each certificate before
appending.

Beyond the bound (f ≥ k/3) the agreement may stall, and quorum intersection
no longer holds; members outside the committee still need a quorum of
matching attestations, so up to q − 1 lying validators cannot make them
append a block the honest validators did not.

Limits: messages for the next height wait in a bounded buffer, later ones are
dropped (catch-up recovers them); rounds, proposals, votes, evidence and
fetches are all bounded. A local misuse raises `ConsensusError`; a peer's
invalid message becomes evidence and never raises.

Hostile peers: a message reaches the core only through the strict wire
format (`ledger.cbor_scan`: no tags, bounded items, depth and strings), so
anything computed from it is linear in its bytes. Blocks are read from a
`BlocksResponse` only when we asked that peer (one answer per ask); a pushed
block is authenticated — its general a validator of the height, its
signature valid — before it is hashed or checked further. Evidence blames
the signer of a checked record or the member the transport names as sender,
never a member a message merely names.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tclearn.consensus.actions import Action, RecordEvidence, Send, ServeBlocks, ServeHead
from tclearn.consensus.candidate import Candidate
from tclearn.consensus.catch_up import CatchUp
from tclearn.consensus.committee import Committee, committee_for
from tclearn.consensus.evidence import Evidence
from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.height import Height, HeightStatus
from tclearn.consensus.messages import (
    AttestRequest, BlocksRequest, BlocksResponse, CommittedMsg, GovernanceMsg, Message, StatusMsg, ValueReply,
    height_of,
)
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.requests import PendingRequests
from tclearn.consensus.snapshot import SafetySnapshot
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import ConsensusError, EncodingError, InvalidBlockError, RemoteProtocolError
from tclearn.identity import Identity
from tclearn.ledger.state import ChainState
from tclearn.quality import PairedScores

__all__ = ["MemberCore"]


class MemberCore:
    """One member's protocol state machine (see the module docstring)."""

    def __init__(self, identity: Identity, state: ChainState, *, params: ConsensusParams | None = None,
                 verifier: SignatureVerifier | None = None, snapshot: SafetySnapshot | None = None,
                 now_ms: int = 0) -> None:
        if identity.member_id not in state.members:
            raise ConsensusError(f"{identity.member_id} is not a member of this coalition")
        if state.public_key(identity.member_id) != identity.public_key:
            raise ConsensusError(f"the key of {identity.member_id} is not the one the chain holds")
        self.identity = identity
        self.me = identity.member_id
        self.params = params or ConsensusParams()
        self.verifier = verifier or SignatureVerifier()
        self.state = state
        self.tick = 0
        self.now_ms = now_ms
        self.future: deque[tuple[str, Message]] = deque(maxlen=self.params.future_buffer_max)
        self.requests = PendingRequests(identity, self.params, self.verifier)
        self.catch_up = CatchUp(self.params, self.verifier)
        self.out: list[Action] = []
        self.rounds_of: dict[int, int] = {}  # height -> rounds of the block agreement it took (validators)
        self._status_tick = 0
        self.work = self._new_work(snapshot)
        proof = self.work.head_proof
        if proof is not None and proof.height == state.height and proof.value == state.head_hash:
            # restarted: we can still prove the head block to members that lag at its height
            self.catch_up.remember(state.height, None, proof, -10**9)

    # --- queries -----------------------------------------------------------------
    @property
    def height(self) -> int:
        """Index of the last committed block."""
        return self.state.height

    @property
    def committee(self) -> Committee:
        return self.work.committee

    def status(self) -> HeightStatus:
        """The height we work on, its phase, and what our agreements decided there."""
        return self.work.status()

    # --- inputs ------------------------------------------------------------------
    def start(self, now_ms: int) -> list[Action]:
        """First call after construction (and after a restart): proposer duty, re-sends."""
        self._clock(now_ms)
        self.work.begin()
        return self._drain()

    def on_message(self, sender: str, message: Message, now_ms: int) -> list[Action]:
        self._clock(now_ms)
        try:
            self._dispatch(sender, message)
        except (RemoteProtocolError, EncodingError, InvalidBlockError) as exc:
            self._evidence("invalid-message", sender, str(exc))
        return self._drain()

    def on_tick(self, now_ms: int) -> list[Action]:
        self.tick += 1
        self._clock(now_ms)
        self.work.on_tick(self.tick, now_ms)
        if self.tick - self._status_tick >= self.params.status_ticks:
            self._status_tick = self.tick
            self.out.append(Send(self.work.others, StatusMsg(self.state.height, self.state.head_hash)))
        return self._drain()

    def on_evaluated(self, height: int, proposal_hash: str, scores: PairedScores | None,
                     now_ms: int) -> list[Action]:
        """The scores asked for by an `Evaluate` action (None: the candidate's model is invalid)."""
        self._clock(now_ms)
        if height == self.work.h:
            self.work.on_evaluated(proposal_hash, scores)
        return self._drain()

    def on_trained(self, height: int, candidate: Candidate | None, now_ms: int) -> list[Action]:
        self._clock(now_ms)
        if height == self.work.h:
            self.work.on_trained(candidate)
        return self._drain()

    # --- governance requests -----------------------------------------------------------
    def request_revert(self, target: int, now_ms: int) -> list[Action]:
        """Ask for a revert to the model of block `target` (authorised members only)."""
        return self._request("revert", {"target": target}, now_ms)

    def request_hyperparams(self, hyperparams: dict[str, Any], now_ms: int) -> list[Action]:
        """Ask for new hyper-parameters (learning rate, optimiser, epochs, minimum batch size)."""
        return self._request("hyperparams", {"hyperparams": dict(hyperparams)}, now_ms)

    def request_membership(self, add: list[dict[str, Any]], remove: list[str], now_ms: int) -> list[Action]:
        """Ask to add ({id, public_key}) or remove members (the founder only)."""
        return self._request("membership", {"add": list(add), "remove": list(remove)}, now_ms)

    def _request(self, kind: str, body: dict[str, Any], now_ms: int) -> list[Action]:
        self._clock(now_ms)
        self._issue(self.requests.make(self.state, self.work.h, kind, body))
        return self._drain()

    def _issue(self, request: GovernanceRequest) -> None:
        validators = tuple(m for m in self.work.committee.generals if m != self.me)
        self.out.append(Send(validators, GovernanceMsg(request)))
        if self.work.is_validator:
            self.work.on_governance(self.me, request)

    # --- dispatch -----------------------------------------------------------------
    def _dispatch(self, sender: str, m: Message) -> None:
        if sender == self.me or sender not in self.state.members:
            return
        if isinstance(m, BlocksRequest):
            self.out.append(ServeBlocks(sender, m.from_index, min(m.max_count, self.params.blocks_per_response_max)))
            return
        if isinstance(m, BlocksResponse):
            if self.catch_up.answered(sender):
                self._on_blocks(sender, m)
            return  # unsolicited blocks are dropped before anything is computed from them
        if isinstance(m, AttestRequest):
            if m.height in self.catch_up.recent:
                self.out.append(Send((sender,), self.catch_up.committed_msg(m.height, with_block=False)))
            elif m.height <= self.state.height:
                self.out.append(ServeHead(sender, m.height))
            return
        if isinstance(m, StatusMsg):
            if m.height >= self.work.h:
                self._catch_up(sender)
            return
        h = height_of(m)
        if h is None:
            return
        if h < self.work.h:
            if not isinstance(m, (CommittedMsg, ValueReply)):
                self._help_laggard(sender, h)
            return
        if h > self.work.h:
            if isinstance(m, CommittedMsg):
                self._catch_up(sender)
            if h == self.work.h + 1:
                self.future.append((sender, m))
            return
        self.work.on_message(sender, m)
        self._after_commit()

    # --- heights ------------------------------------------------------------------
    def _new_work(self, snapshot: SafetySnapshot | None = None) -> Height:
        committee = committee_for(self.state)
        return Height(identity=self.identity, state=self.state, committee=committee, params=self.params,
                      verifier=self.verifier, now_tick=self.tick, now_ms=self.now_ms,
                      members=tuple(self.state.members), snapshot=snapshot)

    def _help_laggard(self, sender: str, height: int) -> None:
        """A member still works on a height we committed: show it the block and how we know."""
        msg = self.catch_up.help(sender, height, self.tick)
        if msg is not None:
            self.out.append(Send((sender,), msg))

    def _after_commit(self) -> None:
        """Move on while the current height is committed (buffered messages may commit the next one too)."""
        while self.work.committed is not None:
            block, new_state = self.work.committed
            if self.work.rounds_used:
                self.rounds_of[block.index] = self.work.rounds_used
            self.out.extend(self.work.drain())
            proof = self.work.proof
            self.catch_up.remember(block.index, block, proof, self.tick)
            self.state = new_state
            self.work = self._new_work()
            if proof is not None:  # keep the head's seal proof across a restart
                self.work.head_proof = proof
                self.work.mark_dirty()
            self.requests.renew(block, self.state, self.work.h, self._issue)
            self.work.begin()
            buffered, self.future = list(self.future), deque(maxlen=self.params.future_buffer_max)
            for sender, m in buffered:
                h = height_of(m)
                if h == self.work.h:
                    self.work.on_message(sender, m)
                elif h is not None and h == self.work.h + 1:
                    self.future.append((sender, m))

    def _clock(self, now_ms: int) -> None:
        if now_ms < self.now_ms:
            now_ms = self.now_ms  # a clock that steps back is treated as standing still
        self.now_ms = now_ms
        self.work.set_clock(self.tick, now_ms)

    def _drain(self) -> list[Action]:
        out: list[Action] = []
        while True:
            self._after_commit()
            out += self.out
            self.out = []
            out += self.work.drain()
            if self.work.committed is None:
                self.catch_up.note_sent(out, self.tick)
                return out

    def _evidence(self, kind: str, member: str, reason: str) -> None:
        self.out.append(RecordEvidence(Evidence(kind, member, self.work.h, reason)))

    # --- catch-up -----------------------------------------------------------------
    def _catch_up(self, peer: str) -> None:
        ask = self.catch_up.ask(peer, self.work.h, self.tick)
        if ask is not None:
            self.out.append(ask)

    def _on_blocks(self, sender: str, m: BlocksResponse) -> None:
        verified, refused = self.catch_up.verified(self.state, self.work.h, m)
        if refused is not None:
            self._evidence("invalid-block", sender, f"catch-up block refused: {refused}")
        for i, (block, after) in enumerate(verified):
            if block.index != self.work.h:
                break
            self.work.offer_block(block, after, confirmed=i + 1 < len(verified))
            self.out.extend(self.work.drain())
            if self.work.committed is None:
                validators = tuple(v for v in self.work.committee.generals if v != self.me)
                self.out.append(Send(validators, AttestRequest(block.index)))
                break
            self._after_commit()
        if verified and len(m.blocks) >= self.params.blocks_per_response_max:
            self.catch_up.ask_again_now()
            self._catch_up(sender)
