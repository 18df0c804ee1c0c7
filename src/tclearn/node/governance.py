"""Governance requests an operator hands its own node: revert, hyper-parameters, membership.

Why a desk between the HTTP route and the driver: the driver belongs to the
node's core thread, and a connection thread must not wait for a training to
finish to touch it. `accept` runs on the connection thread: it bounds and
parses the operator's JSON, refuses a replayed request id, and queues the
request; the core thread calls `run_queued` under the node's lock, checks
the request against the chain as it is *now* (`request_problem` below, then
the core's own rules), and hands it to `MemberDriver.request_*`, which signs
it and sends it to the height's validators. The answer goes back through a
future; the block that records the outcome is certified like any other.

Who may ask: only the node's own certificate reaches the desk (the route
checks it), and the core refuses what the genesis does not authorise
(revert: `consensus.revert_authorized`; membership: the founder;
hyper-parameters: any member, within the genesis rules).

Refusals are recorded in the node's governance journal
(`data_dir/governance.jsonl`, one JSON line per request: accepted or refused,
with the reason) and its log; nothing of the chain changes. A request id
already in the journal is refused as a replay, across restarts.

Rules checked here on top of the core's (`tclearn.consensus.governance`):

* revert: the target must exist and must not be a `rejected` block (its model
  was never the coalition's: the head model of the block before it is);
* hyper-parameters: only the genesis keys (`HYPERPARAM_KEYS`), each within the
  genesis rules (learning rate > 0, a known optimiser, integers ≥ 1);
* membership: an added id must be new and well-formed with a 32-byte key; a
  removal must leave enough members for the genesis committee (k validators
  besides the proposer: at least k + 1 members).

What a revert does to strengths and data ids (the ledger's rule,
`ChainState.apply`): nothing. A revert moves the head model back; the samples
of the increments it outshines stay counted in their contributors' D_i (so
strengths are unchanged) and their ids stay spent: they were contributed and
certified, and claiming them as new again would count them twice. A member
may train on them again, declared as re-used.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from tclearn.consensus.governance import MEMBER_ADDITION_KEYS, addition_problem
from tclearn.errors import ConsensusError
from tclearn.ledger.genesis import OPTIMIZERS
from tclearn.ledger.state import ChainState
from tclearn.ledger.verify import HYPERPARAM_KEYS

__all__ = ["GOVERNANCE_BODY_MAX_BYTES", "GOVERNANCE_QUEUE_MAX", "GovernanceDesk", "GovernanceRefused",
           "parse_request", "request_problem"]

GOVERNANCE_BODY_MAX_BYTES = 4096  # a request is a few fields; anything longer is refused unread
GOVERNANCE_QUEUE_MAX = 16  # requests waiting for the core thread
MEMBERSHIP_CHANGES_MAX = 8  # members added or removed by one request
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_MEMBER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX_KEY = re.compile(r"[0-9a-f]{64}")


class GovernanceRefused(ConsensusError):
    """Raised when a governance request is refused; `status` is the HTTP answer it becomes."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ParsedRequest:
    """An operator's request, parsed: its id, kind and the body the driver takes."""

    request_id: str
    kind: str
    body: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The body as JSON shows it (public keys in hex)."""
        if self.kind != "membership":
            return dict(self.body)
        return {"add": [{**m, "public_key": m["public_key"].hex()} for m in self.body["add"]],
                "remove": list(self.body["remove"])}


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GovernanceRefused(f"{name} must be a number", 400)
    return float(value)


def _hyperparams(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict) or not values:
        raise GovernanceRefused("hyperparams must name at least one key", 400)
    unknown = sorted(set(values) - HYPERPARAM_KEYS)
    if unknown:
        raise GovernanceRefused(f"unknown hyper-parameter {', '.join(map(str, unknown))}: the chain sets only "
                                f"{', '.join(sorted(HYPERPARAM_KEYS))}", 400)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "learning_rate":
            lr = _number(value, key)
            if not lr > 0 or lr != lr or lr == float("inf"):
                raise GovernanceRefused(f"learning_rate {value} is outside the genesis rules (a number > 0)", 400)
            out[key] = lr
        elif key == "optimizer":
            if value not in OPTIMIZERS:
                raise GovernanceRefused(f"optimizer {value!r} is outside the genesis rules "
                                        f"(one of {', '.join(OPTIMIZERS)})", 400)
            out[key] = value
        else:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
                raise GovernanceRefused(f"{key} {value!r} is outside the genesis rules (an integer ≥ 1)", 400)
            out[key] = value
    return out


def _membership(add: Any, remove: Any) -> dict[str, Any]:
    if not isinstance(add, list) or not isinstance(remove, list) or not (add or remove):
        raise GovernanceRefused("membership must add or remove members", 400)
    if len(add) + len(remove) > MEMBERSHIP_CHANGES_MAX:
        raise GovernanceRefused(f"one request changes at most {MEMBERSHIP_CHANGES_MAX} members", 400)
    added = []
    for m in add:
        if not isinstance(m, dict) or not {"id", "public_key"} <= set(m) <= MEMBER_ADDITION_KEYS:
            raise GovernanceRefused("a member to add is {id, public_key (64 hex digits)} and, for a site joining "
                                    "the running network, cert_fingerprint and url", 400)
        if not isinstance(m["id"], str) or not _MEMBER_ID.fullmatch(m["id"]):
            raise GovernanceRefused(f"invalid member id {str(m['id'])[:70]!r}", 400)
        if not isinstance(m["public_key"], str) or not _HEX_KEY.fullmatch(m["public_key"]):
            raise GovernanceRefused(f"the public key of {m['id']} must be 64 hex digits (Ed25519)", 400)
        entry: dict[str, Any] = {"id": m["id"], "public_key": bytes.fromhex(m["public_key"])}
        if ("cert_fingerprint" in m) != ("url" in m):
            raise GovernanceRefused(f"{m['id']}: give both the certificate fingerprint and the URL, or neither", 400)
        if "url" in m:
            entry["cert_fingerprint"], entry["url"] = m["cert_fingerprint"], m["url"]
            problem = addition_problem(entry)
            if problem:
                raise GovernanceRefused(problem, 400)
        added.append(entry)
    for mid in remove:
        if not isinstance(mid, str) or not _MEMBER_ID.fullmatch(mid):
            raise GovernanceRefused(f"invalid member id {str(mid)[:70]!r}", 400)
    return {"add": added, "remove": list(remove)}


def parse_request(body: bytes) -> ParsedRequest:
    """The operator's JSON request, bounded and typed (`GovernanceRefused` with 400 otherwise)."""
    if len(body) > GOVERNANCE_BODY_MAX_BYTES:
        raise GovernanceRefused(f"a governance request is at most {GOVERNANCE_BODY_MAX_BYTES} bytes", 413)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise GovernanceRefused("a governance request is a JSON object", 400) from None
    if not isinstance(data, dict):
        raise GovernanceRefused("a governance request is a JSON object", 400)
    request_id, kind = data.get("request_id"), data.get("kind")
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise GovernanceRefused("request_id must be 32 lowercase hex digits", 400)
    fields = {"revert": {"target"}, "hyperparams": {"hyperparams"}, "membership": {"add", "remove"}}
    if kind not in fields:
        raise GovernanceRefused("kind must be revert, hyperparams or membership", 400)
    if set(data) != {"request_id", "kind", *fields[kind]}:
        raise GovernanceRefused(f"a {kind} request carries request_id, kind and {', '.join(sorted(fields[kind]))}",
                                400)
    if kind == "revert":
        target = data["target"]
        if isinstance(target, bool) or not isinstance(target, int):
            raise GovernanceRefused("target must be a block index", 400)
        return ParsedRequest(request_id, kind, {"target": target})
    if kind == "hyperparams":
        return ParsedRequest(request_id, kind, {"hyperparams": _hyperparams(data["hyperparams"])})
    return ParsedRequest(request_id, kind, _membership(data["add"], data["remove"]))


def request_problem(state: ChainState, kind_of: Callable[[int], str], request: ParsedRequest,
                    fingerprints: Mapping[str, str] | None = None) -> str | None:
    """Why the chain as it is refuses `request` (the node's rules; the core adds its own), or None.

    `fingerprints` (certificate fingerprint -> member id, from the chain): a
    joining site may not bring a certificate a member already holds.
    """
    body = request.body
    if request.kind == "revert":
        target = body["target"]
        if not 0 <= target <= state.height:
            return f"block {target} does not exist (the chain's head is block {state.height})"
        if kind_of(target) == "rejected":
            return (f"block {target} is a rejected candidate: its model was never the coalition's "
                    "(revert to an increment, revert or genesis block)")
        return None
    if request.kind == "membership":
        for m in body["add"]:
            if m["id"] in state.members:
                return f"{m['id']} is already a member"
            owner = (fingerprints or {}).get(m.get("cert_fingerprint", ""))
            if owner is not None:
                return f"the certificate of {m['id']} is member {owner}'s ({m['cert_fingerprint']})"
        for mid in body["remove"]:
            if mid not in state.members:
                return f"{mid} is not a member"
        left = len(state.members) + len(body["add"]) - len(set(body["remove"]))
        k = state.config.committee_size
        if left < k + 1:
            return (f"removing {', '.join(body['remove'])} leaves {left} member(s): the genesis committee of {k} "
                    f"validator(s) besides the proposer needs at least {k + 1}")
    return None


@dataclass
class _Job:
    request: ParsedRequest
    future: Future[dict[str, Any]]


class GovernanceDesk:
    """Queues an operator's requests for the core thread; keeps the journal that refuses replays."""

    def __init__(self, member_id: str, journal: Path, log: Callable[..., None], wake: Callable[[], None]) -> None:
        self.member_id, self.journal, self.log, self.wake = member_id, journal, log, wake
        self._lock = threading.Lock()
        self._jobs: deque[_Job] = deque()
        self._seen: set[str] = set()
        if journal.exists():
            for line in journal.read_text().splitlines():
                try:
                    self._seen.add(str(json.loads(line)["request_id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line after a crash: that request was never answered

    def _record(self, request: ParsedRequest, outcome: str, **fields: Any) -> dict[str, Any]:
        entry = {"request_id": request.request_id, "kind": request.kind, "body": request.summary(),
                 "requester": self.member_id, "outcome": outcome, **fields}
        with self._lock, open(self.journal, "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
        self.log(f"governance_{outcome}", request_id=request.request_id, kind=request.kind,
                 **{k: v for k, v in fields.items() if k in ("reason", "height")})
        return entry

    def accept(self, body: bytes) -> Future[dict[str, Any]]:
        """Connection thread: parse, refuse a replay, queue (`GovernanceRefused` when refused at once)."""
        request = parse_request(body)
        with self._lock:
            if request.request_id in self._seen:
                replay = True
            else:
                replay = False
                self._seen.add(request.request_id)
                if len(self._jobs) >= GOVERNANCE_QUEUE_MAX:
                    self._seen.discard(request.request_id)
                    raise GovernanceRefused("too many governance requests waiting; ask again later", 503)
                job = _Job(request, Future())
                self._jobs.append(job)
        if replay:
            reason = f"replayed request: {request.request_id} was already asked"
            self._record(request, "refused", reason=reason)
            raise GovernanceRefused(reason)
        self.wake()
        return job.future

    def waiting(self) -> bool:
        return bool(self._jobs)

    def run_queued(self, driver: Any, kind_of: Callable[[int], str],
                   fingerprints: Mapping[str, str] | None = None) -> None:
        """Core thread, under the node's lock: check each queued request against the chain, hand it on."""
        while True:
            with self._lock:
                if not self._jobs:
                    return
                job = self._jobs.popleft()
            request = job.request
            state: ChainState = driver.state
            problem = request_problem(state, kind_of, request, fingerprints)
            if problem is None:
                try:
                    if request.kind == "revert":
                        driver.request_revert(request.body["target"])
                    elif request.kind == "hyperparams":
                        driver.request_hyperparams(request.body["hyperparams"])
                    else:
                        driver.request_membership(request.body["add"], request.body["remove"])
                except ConsensusError as exc:
                    problem = str(exc).removeprefix(f"cannot request {request.kind}: ")
            if problem is not None:
                self._record(request, "refused", reason=problem, height=state.height + 1)
                job.future.set_exception(GovernanceRefused(problem, 403 if "authoris" in problem
                                                           or "founder" in problem else 409))
            else:
                job.future.set_result(self._record(request, "accepted", height=state.height + 1,
                                                   head=state.height))
