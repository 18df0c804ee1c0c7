"""One driver runs one member: the same code in the simulator and in a node.

Why a driver: the protocol core (`tclearn.consensus.MemberCore`) only returns
actions. The driver carries them out with what it was handed — a chain store,
a safety store, an evaluator, a trainer, a transport and a clock — and feeds
the results back to the core. The simulator hands it simulated transport and
clock; a node hands it HTTP and the wall clock. So the blocks committed in
tests are committed by the code that commits them in deployment.

Durability: on construction the driver rebuilds the chain state from its
store (optionally re-verifying every certificate) and hands the core the last
safety snapshot, so a restarted member neither forgets a vote nor casts a
contradicting one. Actions run in the order the core gives them: the snapshot
is saved before the votes it records are sent, a block is appended before it
is attested.

Evaluation and training run synchronously after each batch of actions by
default. A node that would rather run them in a worker passes
`defer_work=True` and calls `run_pending_work()` from there (under the same
lock it uses for `receive` and `tick`).

The seam is typed: the core's `Train` action carries the chain's
hyper-parameters, and `compute_work` returns a `WorkResult` — `Scored`,
`Trained` or `RetryLater` (an evaluator that raises `NotYetError`: the model
is not here yet). Hosts read `status()`, never the core's insides; timings
and the message trace go to the `meter` the driver is handed.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, TypeVar

from tclearn.consensus.actions import (
    Action, AppendBlock, Committed, Evaluate, PersistSafety, RecordEvidence, Send, ServeBlocks, ServeHead, Train,
)
from tclearn.consensus.certificate import make_certificate_check
from tclearn.consensus.core import MemberCore
from tclearn.consensus.evidence import Evidence
from tclearn.consensus.messages import BlocksResponse, CommittedMsg, Message
from tclearn.consensus.wire import decode_message
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.verifier import SignatureVerifier
from tclearn.errors import ConfigError, LearningError, NotYetError, RemoteProtocolError
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.state import ChainState
from tclearn.ledger.store import ChainStore
from tclearn.ledger.verify import verify_chain, verify_genesis
from tclearn.member.interfaces import Clock, Evaluator, Trainer, Transport
from tclearn.member.safety_store import MemorySafetyStore, SafetyStore
from tclearn.member.work import MemberStatus, PendingWork, RetryLater, Scored, Trained, WorkResult
from tclearn.meter import Meter

__all__ = ["MemberDriver", "MemberStatus", "PendingWork", "Scored", "Trained", "RetryLater", "WorkResult"]

T = TypeVar("T")

EVALUATION_RETRY_TICKS = 20
# An evaluation that keeps failing with "not yet" (a model no peer serves) is retried this many
# times, then counts as failed (the member votes reject); it is dropped as soon as its height is
# committed. Before, one bogus proposal became a fetch every 2 s for good.
EVALUATION_RETRIES_MAX = 3


def _rebuild(store: ChainStore, genesis: Block | None, verify: bool, verifier: SignatureVerifier) -> ChainState:
    if store.height() < 0:
        if genesis is None:
            raise ConfigError("an empty chain store needs the genesis block")
        verify_genesis(genesis)
        store.append(genesis)
    first = store.get(0)
    if genesis is not None and first.block_hash != genesis.block_hash:
        raise ConfigError("the stored chain is not this coalition's (genesis differs)")
    if verify:
        return verify_chain(iter(store), certificate_check=make_certificate_check(verifier))
    state = ChainState.from_genesis(first)
    for index in range(1, store.height() + 1):
        state = state.apply(store.get(index))
    return state


class MemberDriver:
    """Runs one member's core against its stores, evaluator, trainer, transport and clock."""

    def __init__(
        self,
        identity: Identity,
        store: ChainStore,
        *,
        transport: Transport,
        clock: Clock,
        evaluator: Evaluator | None = None,
        trainer: Trainer | None = None,
        genesis: Block | None = None,
        safety: SafetyStore | None = None,
        params: ConsensusParams | None = None,
        verifier: SignatureVerifier | None = None,
        verify_on_start: bool = False,
        on_commit: Callable[[Block], None] | None = None,
        on_evidence: Callable[[Evidence], None] | None = None,
        defer_work: bool = False,
        evidence_max: int = 10_000,
        meter: Meter | None = None,
    ) -> None:
        self.identity = identity
        self.member_id = identity.member_id
        self.store = store
        self.transport = transport
        self.clock = clock
        self.evaluator = evaluator
        self.trainer = trainer
        self.safety = safety if safety is not None else MemorySafetyStore()
        self.verifier = verifier if verifier is not None else SignatureVerifier()
        self.on_commit = on_commit
        self.on_evidence = on_evidence
        self.meter = meter
        self.defer_work = defer_work
        self.evidence: deque[Evidence] = deque(maxlen=evidence_max)
        self.commits = 0
        self.messages_sent = 0
        self._work: deque[Action] = deque()
        self._retry: list[tuple[int, Evaluate]] = []
        self._attempts: dict[tuple[int, str], int] = {}  # (height, proposal hash) -> failed evaluations
        state = _rebuild(store, genesis, verify_on_start, self.verifier)
        self.core = MemberCore(identity, state, params=params, verifier=self.verifier,
                               snapshot=self.safety.load(), now_ms=clock.now_ms())
        self._started = False

    # --- queries -------------------------------------------------------------
    @property
    def state(self) -> ChainState:
        return self.core.state

    @property
    def height(self) -> int:
        return self.core.height

    def head(self) -> Block | None:
        return self.store.head()

    def rounds_by_height(self) -> dict[int, int]:
        """Rounds the block agreement took at each height this member validated (since it started)."""
        return dict(self.core.rounds_of)

    def status(self) -> MemberStatus:
        """The member's head and the height it works on: what hosts show (never the core's insides)."""
        state = self.core.state
        return MemberStatus(self.member_id, state.height, state.head_hash, self.core.status(), self.commits,
                            len(self.evidence), self.messages_sent, len(self._work))

    # --- inputs --------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._started = True
            self._run(self.core.start(self.clock.now_ms()))

    def receive(self, sender: str, message: Message) -> None:
        """A message from `sender`, as the transport authenticated it."""
        self._run(self.core.on_message(sender, message, self.clock.now_ms()))

    def receive_bytes(self, sender: str, data: bytes) -> None:
        """A message still in its wire form; an undecodable one becomes evidence against `sender`."""
        try:
            message = decode_message(data)
        except RemoteProtocolError as exc:
            self._keep(Evidence("invalid-message", sender, self.core.height + 1, str(exc)))
            return
        self.receive(sender, message)

    def tick(self) -> None:
        """One timer tick (the caller decides how long a tick is)."""
        self._run(self.core.on_tick(self.clock.now_ms()))
        if self._retry:
            live = [(t, e) for t, e in self._retry if e.height > self.core.height]  # work expires with its height
            due = [e for t, e in live if t <= self.core.tick]
            self._retry = [(t, e) for t, e in live if t > self.core.tick]
            self._work.extend(due)
            self._drain_work()

    def request_revert(self, target: int) -> None:
        self._run(self.core.request_revert(target, self.clock.now_ms()))

    def request_hyperparams(self, hyperparams: dict[str, Any]) -> None:
        self._run(self.core.request_hyperparams(hyperparams, self.clock.now_ms()))

    def request_membership(self, add: list[dict[str, Any]], remove: list[str]) -> None:
        self._run(self.core.request_membership(add, remove, self.clock.now_ms()))

    def pending_work(self) -> int:
        return len(self._work)

    def run_pending_work(self) -> None:
        """Evaluate and train what the core asked for (call it yourself when `defer_work`)."""
        while self._work:
            work = self.take_work()
            if work is not None:
                self.finish_work(work, self.compute_work(work))

    # A node runs the three steps apart: `take_work` and `finish_work` under the lock that guards
    # the core, `compute_work` (the training or evaluation itself) without it, in a worker thread,
    # so that the core keeps answering votes while a model trains or is scored.
    def take_work(self) -> "PendingWork | None":
        """The next evaluation or training the core asked for (None: nothing to do)."""
        while self._work:
            action = self._work.popleft()
            if isinstance(action, (Evaluate, Train)) and action.height <= self.core.height:
                continue  # its height is committed: the work expired
            if isinstance(action, Evaluate) and self.evaluator is not None:
                return PendingWork(action)
            if isinstance(action, Train) and self.trainer is not None:
                return PendingWork(action)
        return None

    def compute_work(self, work: PendingWork) -> WorkResult:
        """Run the evaluation or training (touches only the evaluator or trainer, never the core)."""
        action = work.action
        if isinstance(action, Evaluate):
            evaluator = self.evaluator
            assert evaluator is not None
            try:
                return Scored(evaluator.evaluate(action.parent_model_hash, action.candidate_model_hash))
            except NotYetError:
                return RetryLater()
            except LearningError:
                return Scored(None)  # the candidate's model is invalid: vote reject
        trainer = self.trainer
        assert trainer is not None
        # the chain's current values (hyperparams blocks change them), as the core saw them
        return Trained(trainer.train(action.parent_model_hash, action.height, hyperparams=dict(action.hyperparams)))

    def finish_work(self, work: PendingWork, outcome: WorkResult) -> None:
        """Hand the result of `compute_work` to the core and carry out what it answers."""
        action = work.action
        if action.height <= self.core.height:  # committed meanwhile: nobody waits for this result
            return
        if isinstance(outcome, RetryLater):
            assert isinstance(action, Evaluate)
            key = (action.height, action.proposal_hash)
            self._attempts = {k: n for k, n in self._attempts.items() if k[0] > self.core.height}
            self._attempts[key] = self._attempts.get(key, 0) + 1
            if self._attempts[key] <= EVALUATION_RETRIES_MAX:
                self._retry.append((self.core.tick + EVALUATION_RETRY_TICKS, action))
                return
            outcome = Scored(None)  # still not found after the retries: the evaluation failed, vote reject
        if isinstance(action, Evaluate):
            scores = outcome.scores if isinstance(outcome, Scored) else None
            self._execute(self.core.on_evaluated(action.height, action.proposal_hash, scores, self.clock.now_ms()))
        else:
            candidate = outcome.candidate if isinstance(outcome, Trained) else None
            self._execute(self.core.on_trained(action.height, candidate, self.clock.now_ms()))

    def _timed(self, phase: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self.meter is None:
            return fn(*args, **kwargs)
        return self.meter.timed(phase, fn, *args, **kwargs)

    # --- carrying out actions ------------------------------------------------------
    def _run(self, actions: list[Action]) -> None:
        self._execute(actions)
        self._drain_work()

    def _drain_work(self) -> None:
        if not self.defer_work:
            self.run_pending_work()

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                for to in action.to:
                    self.messages_sent += 1
                    if self.meter is not None:
                        self.meter.sent(self.member_id, to, action.message)
                    self.transport.send(to, action.message)
            elif isinstance(action, PersistSafety):
                self.safety.save(action.snapshot)
            elif isinstance(action, AppendBlock):
                self._timed("chain_storage", self.store.append, action.block)
            elif isinstance(action, (Evaluate, Train)):
                self._work.append(action)
            elif isinstance(action, ServeBlocks):
                blocks = self.store.blocks_range(action.from_index, action.max_count)
                if blocks:
                    self.transport.send(action.to, BlocksResponse(tuple(blocks)))
            elif isinstance(action, ServeHead):
                if 0 < action.height <= self.store.height():
                    block = self.store.get(action.height)
                    self.transport.send(action.to, CommittedMsg(action.height, block.block_hash, None))
            elif isinstance(action, Committed):
                self.commits += 1
                if self.on_commit is not None:
                    self.on_commit(action.block)
            elif isinstance(action, RecordEvidence):
                self._keep(action.evidence)

    def _keep(self, evidence: Evidence) -> None:
        self.evidence.append(evidence)
        if self.on_evidence is not None:
            self.on_evidence(evidence)
