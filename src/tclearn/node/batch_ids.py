"""A node's data-id lists and spent-id registry: duplicates refused before a candidate is evaluated.

Why: a proposal carries only the Merkle roots of its batch's ids (new
contributions and re-used samples); the lists travel off-chain (DESIGN.md §3:
every node's store at level A). Each node keeps, next to its chain:

* `batch_ids/<candidate model hash>.json`: the lists of its own proposals and
  of every committed increment it has seen, each checked against the roots its
  block's proposal records; served to members by `GET /v1/batches/{hash}`;
* `SpentIds`: the new ids of every committed increment. It is a function of the
  chain and those lists, so a restarted node rebuilds it (`rebuild`) equal to
  the one it had; lists it lacks are fetched from the peers (`fetch_for`).

A validator, before it evaluates a candidate, fetches the candidate's lists
from its proposer (nobody else's word counts for them), and checks them
against the proposal's roots and counts and against the registry
(`data.accounting.check_batch_ids`): a sample claimed as new that was already contributed, one of G, an id listed
twice, a count or root that does not match, or no lists at all: the batch is
refused, the sample's id named in the node's log (`batch_refused`), and the
validator votes reject (`IdCheckingEvaluator` raises `InvalidModelError`,
as the one-process demo's `DuplicateCheckingEvaluator` does).

Bounds: a list holds at most `BATCH_IDS_MAX` ids; an answer is read up to
`BATCH_IDS_MAX_BYTES` within `BATCH_FETCH_DEADLINE_S`; the proposals noted for
lookup are the last `PROPOSALS_KEPT`.

A candidate's lists are asked for again while the proposer's answer fails in
transit (a timeout, a dropped connection, a 5xx), for `BATCH_CLAIM_BUDGET_S` in
all: a validator slowed by load must not vote reject an honest batch for one
late answer. A definite answer (200, or a 4xx such as "no lists") ends it at
once. A proposer whose lists did not come gets half the budget for its next
candidate, down to one attempt (lists that come reset it), so a proposer
that stalls costs a validator little more than the one deadline. A validator
whose pause finds its own node stopping (at shutdown the proposer's server
often closes first) gives up without a verdict: no strike against the
proposer, and the unchecked batch is logged `batch_check_abandoned`, not
refused; lists that did come are still judged.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tclearn.consensus.messages import Message, ProposalMsg, QualityVoteMsg
from tclearn.data.accounting import BatchIds, BatchRefused, SpentIds, check_batch_ids
from tclearn.data.ids import check_data_id, merkle_root
from tclearn.errors import DataError
from tclearn.ledger.block import Block
from tclearn.ledger.records import Proposal
from tclearn.learning.errors import InvalidModelError

__all__ = ["BATCH_CLAIM_BUDGET_S", "BATCH_FETCH_DEADLINE_S", "BATCH_IDS_MAX", "BATCH_IDS_MAX_BYTES", "BatchIdRegistry",
           "IdCheckingEvaluator", "ids_from_wire", "ids_to_wire"]

BATCH_IDS_MAX = 4096  # ids per list (new or re-used)
BATCH_IDS_MAX_BYTES = 2 * BATCH_IDS_MAX * 70 + 1024  # CBOR of two lists of 64-character ids
BATCH_FETCH_DEADLINE_S = 3.0  # one request for a batch's lists
BATCH_CLAIM_BUDGET_S = 12.0  # a candidate's lists: attempts at its proposer, in all (halved per failure in a row)
BATCH_RETRY_PAUSE_S = 0.25  # between those attempts, doubling
PROPOSALS_KEPT = 256
MISSING_RETRY_S = 10.0  # a committed increment's lists no peer served are asked for again after this long
_HASH_CHARS = frozenset("0123456789abcdef")


def ids_to_wire(ids: BatchIds) -> dict[str, list[str]]:
    return {"new": list(ids.new), "reused": list(ids.reused)}


def ids_from_wire(value: Any) -> BatchIds:
    """A peer's (or our file's) lists, bounded and typed (`DataError` otherwise)."""
    if not isinstance(value, Mapping) or set(value) != {"new", "reused"}:
        raise DataError("batch ids are {new, reused}")
    lists = []
    for name in ("new", "reused"):
        lst = value[name]
        if not isinstance(lst, list) or len(lst) > BATCH_IDS_MAX:
            raise DataError(f"batch ids: {name} must be a list of at most {BATCH_IDS_MAX} ids")
        lists.append(tuple(check_data_id(i) for i in lst))
    return BatchIds(lists[0], lists[1])


def _matches(ids: BatchIds, proposal: Proposal) -> bool:
    return (len(ids.new) == proposal.sample_count and len(ids.reused) == proposal.reused_count
            and merkle_root(ids.new) == proposal.data_ids_root and merkle_root(ids.reused) == proposal.reused_ids_root)


def _ask(client: Any, h: str, deadline_s: float) -> Any:
    """One `GET /v1/batches/{h}` of a peer, read up to `BATCH_IDS_MAX_BYTES` within `deadline_s`."""
    return client.request("GET", f"/v1/batches/{h}", max_bytes=BATCH_IDS_MAX_BYTES, deadline_s=deadline_s)


def _proposal_of(block: Block) -> Proposal | None:
    try:
        return Proposal.from_dict(block.payload["proposal"])
    except Exception:  # a verified increment always carries one; anything else is not ours to count
        return None


class CheckAbandoned(Exception):
    """A candidate's lists were not fetched because this node is stopping: the batch is neither passed nor refused."""


class BatchIdRegistry:
    """The id lists this node holds, and the ids counted by committed increments (see the module docstring)."""

    def __init__(self, directory: Path, log: Callable[..., None], test_ids: Iterable[str] = (),
                 wait: Callable[[float], bool] = threading.Event().wait,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`wait(s)` pauses between attempts and returns True when the node stops (`threading.Event.wait`)."""
        self.directory, self.log, self.wait, self.clock = directory, log, wait, clock
        directory.mkdir(parents=True, exist_ok=True)
        self.spent = SpentIds()
        self.test_ids = frozenset(test_ids)
        self._lock = threading.RLock()
        self._missing: dict[str, Proposal] = {}  # committed increments whose lists we lack, by model hash
        self._proposals: OrderedDict[str, Proposal] = OrderedDict()  # noted proposals, by candidate model hash
        self._claims: OrderedDict[str, BatchIds] = OrderedDict()  # candidates' lists fetched for evaluation
        self._tried: dict[str, float] = {}  # missing lists: when we last asked the peers
        self._strikes: dict[str, int] = {}  # proposer -> candidates whose lists did not come, in a row
        self._counted: set[str] = set()  # the same ids as `spent`, readable as a set
        self._sum = 0  # their sum mod 2^256: a digest that does not depend on the order they were counted in
        self.refusals = 0
        self.stopping = False  # set when a pause found the node stopping: what is unchecked then is not refused

    # --- files ---------------------------------------------------------------------
    def _path(self, model_hash: str) -> Path:
        if len(model_hash) != 64 or not set(model_hash) <= _HASH_CHARS:
            raise DataError("a model hash is 64 lowercase hex digits")
        return self.directory / f"{model_hash}.json"

    def put(self, model_hash: str, ids: BatchIds) -> None:
        """Keep `ids` as the lists of candidate `model_hash` (own proposals, committed increments)."""
        path = self._path(model_hash)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ids_to_wire(ids)))
        os.replace(tmp, path)

    def get(self, model_hash: str) -> BatchIds | None:
        try:
            return ids_from_wire(json.loads(self._path(model_hash).read_text()))
        except (OSError, ValueError, DataError):
            return None

    # --- the chain -----------------------------------------------------------------
    def rebuild(self, blocks: Iterable[Block]) -> None:
        """Replay the chain (at start): every committed increment's new ids, from the lists held."""
        for block in blocks:
            self.on_commit(block)

    def on_commit(self, block: Block) -> None:
        """A committed block: an increment's new ids become spent (its lists are fetched if we lack them)."""
        if block.kind != "increment":
            return
        proposal = _proposal_of(block)
        if proposal is None:
            return
        with self._lock:
            ids = self.get(block.model_hash)
            if ids is None or not _matches(ids, proposal):
                claim = self._claims.get(block.model_hash)
                ids = claim if claim is not None and _matches(claim, proposal) else None
                if ids is not None:
                    self.put(block.model_hash, ids)
            if ids is None:
                self._missing[block.model_hash] = proposal
                return
            self._count(ids)

    def _count(self, ids: BatchIds) -> None:
        self.spent.accept(ids.new)
        for i in ids.new:
            if i not in self._counted:
                self._counted.add(i)
                self._sum = (self._sum + int(i, 16)) % (1 << 256)

    def summary(self) -> dict[str, Any]:
        """What `GET /v1/status` shows: spent ids, an order-free digest of them, refusals, lists missing."""
        with self._lock:
            return {"spent": len(self._counted), "digest": f"{self._sum:064x}", "refusals": self.refusals,
                    "missing": len(self._missing)}

    def missing(self) -> list[str]:
        with self._lock:
            return list(self._missing)

    def snapshot(self) -> frozenset[str]:
        """The spent ids as a set (tests compare a rebuilt registry with this one)."""
        with self._lock:
            return frozenset(self._counted)

    # --- proposals and claims ------------------------------------------------------------
    def note(self, message: Message) -> None:
        """Core thread: remember the proposal a message carries (the core checks its signature)."""
        if isinstance(message, (ProposalMsg, QualityVoteMsg)):
            p = message.proposal
            with self._lock:
                self._proposals[p.model_hash] = p
                self._proposals.move_to_end(p.model_hash)
                while len(self._proposals) > PROPOSALS_KEPT:
                    self._proposals.popitem(last=False)

    def lacks(self, candidate_model_hash: str | None) -> bool:
        """Whether evaluating this candidate needs lists we do not hold yet."""
        with self._lock:
            if self._missing:
                return True
            return candidate_model_hash is not None and candidate_model_hash not in self._claims

    def fetch_for(self, candidate_model_hash: str | None, clients: Mapping[str, Any]) -> None:
        """Fetcher thread: fetch the candidate's lists (its proposer first) and the committed ones we lack."""
        now = self.clock()
        with self._lock:
            wanted = {h: p for h, p in self._missing.items() if now - self._tried.get(h, -1e9) >= MISSING_RETRY_S}
            self._tried.update({h: now for h in wanted})
            proposal = self._proposals.get(candidate_model_hash) if candidate_model_hash else None
        for h, committed in wanted.items():
            ids = self._fetch(h, committed, clients, prefer=committed.proposer)
            if ids is not None:
                with self._lock:
                    if self._missing.pop(h, None) is not None:
                        self.put(h, ids)
                        self._count(ids)
        if candidate_model_hash is not None and proposal is not None:
            ids = self._fetch_claim(candidate_model_hash, proposal.proposer, clients)
            if ids is not None:
                with self._lock:
                    self._claims[candidate_model_hash] = ids
                    while len(self._claims) > PROPOSALS_KEPT:
                        self._claims.popitem(last=False)

    def _fetch(self, h: str, committed: Proposal, clients: Mapping[str, Any], prefer: str) -> BatchIds | None:
        """Lists of committed increment `h` from the peers (`prefer` first): only lists matching its roots."""
        for member, client in sorted(clients.items(), key=lambda kv: kv[0] != prefer):
            try:
                response = _ask(client, h, BATCH_FETCH_DEADLINE_S)
                if response.status != 200:
                    continue
                ids = ids_from_wire(response.cbor())
            except Exception as exc:
                self.log("batch_ids_fetch_failed", model=h, peer=member, reason=str(exc)[:200])
                continue
            if _matches(ids, committed):
                return ids
        return None

    def _fetch_claim(self, h: str, proposer: str, clients: Mapping[str, Any]) -> BatchIds | None:
        """Candidate `h`'s lists, from its proposer only: asked again while the answer fails in transit."""
        client = clients.get(proposer)
        if client is None:
            return None
        with self._lock:
            strikes = self._strikes.get(proposer, 0)
        deadline = self.clock() + max(BATCH_FETCH_DEADLINE_S, BATCH_CLAIM_BUDGET_S / 2 ** min(strikes, 16))
        pause, attempt = BATCH_RETRY_PAUSE_S, 0
        while True:
            attempt += 1
            try:
                response = _ask(client, h, max(0.001, min(BATCH_FETCH_DEADLINE_S, deadline - self.clock())))
            except Exception as exc:  # in transit: timed out, cut, refused
                reason = str(exc)
            else:
                if response.status < 500:  # a definite answer: the proposer's word, whatever it is
                    return self._claim_from(response, h, proposer, attempt)
                reason = f"status {response.status}"
            self.log("batch_ids_fetch_failed", model=h, peer=proposer, attempt=attempt, reason=reason[:200])
            if self.clock() + pause >= deadline:
                break
            if self.wait(pause):  # this node is stopping (its peers often are too): no strike, no verdict
                self.stopping = True
                return None
            pause *= 2
        with self._lock:
            self._strikes[proposer] = strikes + 1
        return None

    def _claim_from(self, response: Any, h: str, proposer: str, attempt: int) -> BatchIds | None:
        """The lists a proposer's definite answer holds; None for "none" or malformed lists (the batch is refused)."""
        try:
            if response.status != 200:
                raise DataError(f"status {response.status}")
            ids = ids_from_wire(response.cbor())
        except Exception as exc:
            self.log("batch_ids_fetch_failed", model=h, peer=proposer, attempt=attempt, reason=str(exc)[:200])
            return None
        with self._lock:  # only lists that came reset the budget: a quick "none" earns nothing
            self._strikes.pop(proposer, None)
        return ids

    # --- the check ------------------------------------------------------------------------
    def check(self, candidate_model_hash: str) -> None:
        """Raise `BatchRefused` (naming the id) unless the candidate's lists are an honest account.

        `CheckAbandoned` instead when the lists are missing because this node
        stopped asking for them (`stopping`): nothing was judged.
        """
        with self._lock:
            proposal = self._proposals.get(candidate_model_hash)
            ids = self._claims.get(candidate_model_hash)
            missing = len(self._missing)
            if proposal is None:
                raise BatchRefused(f"no proposal is known for candidate {candidate_model_hash[:12]}…")
            if ids is None:
                if self.stopping:
                    raise CheckAbandoned(f"the node is stopping: proposer {proposal.proposer}'s lists not fetched")
                raise BatchRefused(f"proposer {proposal.proposer} served no id lists for its batch")
            if missing:  # the registry lags the chain (a peer did not serve some lists): say so, check what we know
                self.log("batch_ids_incomplete", committed_without_lists=missing)
            check_batch_ids(ids, sample_count=proposal.sample_count, data_ids_root=proposal.data_ids_root,
                            reused_count=proposal.reused_count, reused_ids_root=proposal.reused_ids_root,
                            spent=self.spent, test_ids=self.test_ids)

    def proposer_of(self, candidate_model_hash: str) -> str | None:
        with self._lock:
            p = self._proposals.get(candidate_model_hash)
        return None if p is None else p.proposer


class IdCheckingEvaluator:
    """Wraps a node's evaluator: a candidate whose id lists break the accounting rules is invalid (vote reject)."""

    def __init__(self, inner: Any, registry: BatchIdRegistry, log: Callable[..., None]) -> None:
        self.inner, self.registry, self.log = inner, registry, log

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> Any:
        try:
            self.registry.check(candidate_model_hash)
        except CheckAbandoned as exc:  # no verdict on the batch: not a refusal
            self.log("batch_check_abandoned", candidate=candidate_model_hash, reason=str(exc)[:300])
            raise InvalidModelError(f"batch not checked: {exc}") from None
        except BatchRefused as exc:
            self.registry.refusals += 1
            self.log("batch_refused", candidate=candidate_model_hash,
                     proposer=self.registry.proposer_of(candidate_model_hash), data_id=exc.data_id,
                     reason=str(exc)[:300])
            raise InvalidModelError(f"batch refused: {exc}") from None
        return self.inner.evaluate(parent_model_hash, candidate_model_hash)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
