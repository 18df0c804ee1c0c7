"""One member's running process: its driver wired to SQLite, the wall clock and HTTPS.

Threads: the HTTPS server's connection threads only validate and queue
(`POST /v1/messages` decodes the wire message first: a malformed body is
refused with 400 and never reaches the core); one *core thread* owns the
driver — it drains the inbox, ticks every `tick_ms`, and runs the deferred
evaluation and training (measured: a message waits up to ~100 ms behind an
evaluation, p90; moving the work to a thread of its own made blocks slower
on 2 cores — the two threads fight over the GIL — so it stays here); one
sender thread per peer posts the outgoing messages over a kept-alive mutual-TLS connection (`PeerLink`; bounded
queues, fire and forget, the backlog to a dead peer is dropped — the protocol
re-sends). `GET /v1/status` answers from a snapshot the core thread refreshes,
so it never waits for training.

Models (level A): the node serves its content-addressed store at
`GET /v1/models/{hash}`. An evaluation (or training) whose models are not
all here is handed to a *fetcher thread*, so the core thread keeps handling
messages; each fetch from a peer is capped at the size the genesis
architecture implies (plus `MODEL_SIZE_SLACK_BYTES`) and has a total deadline
(`MODEL_FETCH_BASE_S` plus the time the cap takes at `MODEL_FETCH_MIN_RATE_BPS`;
halved for a peer after each failed transfer in a row, down to `MODEL_FETCH_FLOOR_S`),
the hash and format checked on receipt. The work then comes back to the core
thread; a model that no peer delivered in time counts as invalid for
`FETCH_FAILURE_MEMORY_S`, so the validator votes reject once instead of
waiting: a slow or lying server costs it one deadline, then its vote.

Recovery: the chain (SQLite), the safety snapshot (`FileSafetyStore`), the
model directory and `trained.json` (ids already used, local test ids) are all
a restarted node needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import queue
import re
import ssl
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import numpy as np
import torch

from tclearn.consensus.height_candidates import Candidate
from tclearn.consensus.messages import MAX_MESSAGE_BYTES, Message
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.wire import decode_message, encode_message
from tclearn.data import DataPool
from tclearn.errors import ConfigError, RemoteProtocolError
from tclearn.identity import load_identity
from tclearn.ledger.block import Block
from tclearn.consensus.progress import Progress
from tclearn.ledger.genesis import GenesisConfig
from tclearn.levels import require_runnable_level
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.learning import (
    DirectoryModelStore, Evaluator, HyperParams, ModelNotFoundError, backtrack_to_floor, get_task, train_increment,
)
from tclearn.learning.errors import HashMismatchError, InvalidModelError
from tclearn.learning.train import batch_params, fit
from tclearn.member import FileSafetyStore, MemberDriver
from tclearn.node.config import NodeConfig
from tclearn.transport import (
    HTTPStatusError, MemberAllowList, NodeServer, PeerClient, PeerNotAllowedError, RequestError, Router, ServerLimits,
    cbor_response, client_context, json_response, safetensors_response, server_context,
)

__all__ = ["Node", "NodeTrainer", "data_key", "partner_data"]

OUTBOX_MAX = 1024
MODEL_SIZE_SLACK_BYTES = 64 * 1024  # over the genesis model's own safetensors size
MODEL_FETCH_BASE_S = 2.0  # a model fetch's deadline: this, plus the size cap at the minimum rate below
MODEL_FETCH_MIN_RATE_BPS = 1 << 20
FETCH_FAILURE_MEMORY_S = 60.0  # a model no peer delivered in time stays "unavailable" this long
# A peer whose transfer failed (too slow, too big, not the model it named; a 404 does not count) gets half
# the deadline next time, down to this floor (plus the cap at the minimum rate); a success resets it.
MODEL_FETCH_FLOOR_S = 0.25
_WAKE = ("", None)  # put in the inbox to wake the core thread (fetched work is ready)
BLOCKS_PER_ANSWER = 32  # GET /v1/blocks?from=i answers blocks i..i+31 at most


def data_key(seed: int) -> bytes:
    return hashlib.sha256(f"tclearn-node-data-key/{seed}".encode()).digest()


def partner_data(task_name: str, partners: int, seed: int, index: int) -> tuple[Any, Any]:
    """(this partner's pool data, G): derived from the coalition seed, the same on every node."""
    data = get_task(task_name).coalition_data(partners, seed=seed)
    return data.partners[index], data.test


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class NodeTrainer:
    """Trains the head model on a fresh batch of this partner's pool; remembers what it used.

    `wanted` (None: always) says whether to train when the turn comes: a node
    in `propose = "on-demand"` mode passes its turn until `tclearn node
    propose` asked for an increment. `self_check_floor` (the chain's max_drop;
    None: off): score the candidate on G first and shorten an increment the
    floor would refuse (`tclearn.learning.backtrack_to_floor`).
    """

    def __init__(self, task: Any, pool: DataPool, evaluator: Evaluator, store: DirectoryModelStore, hp: HyperParams,
                 seed: int, record: Path, fetch: Callable[[str], bool] | None = None,
                 wanted: Callable[[], bool] | None = None, proposed: Callable[[], None] | None = None,
                 log: Callable[..., None] | None = None, self_check_floor: float | None = None,
                 converged: Callable[[], bool] | None = None) -> None:
        self.task, self.pool, self.evaluator, self.store, self.hp = task, pool, evaluator, store, hp
        self.converged = converged
        self.self_check_floor = self_check_floor
        self.seed, self.record, self.fetch = seed, record, fetch
        self.wanted, self.proposed, self.log = wanted, proposed, log
        self.used: list[str] = []
        self.local: list[str] = []
        if record.exists():  # recovery: what we trained on before a crash
            saved = json.loads(record.read_text())
            self.used, self.local = list(saved["used"]), list(saved["local"])
            self.pool.mark_contributed(self.used)
            self.pool.hold_out(self.local)
            if self.local:
                index = {i: n for n, i in enumerate(pool.ids)}
                self.evaluator.add_local_test(pool.data.subset([index[i] for i in self.local]))

    def train(self, parent_model_hash: str, height: int, hyperparams: dict[str, Any] | None = None) -> Candidate | None:
        if self.wanted is not None and not self.wanted():
            if self.log is not None:
                self.log("turn_passed", height=height, reason="on-demand: no `tclearn node propose` request")
            return None  # on-demand: nobody asked for an increment, pass the turn
        if self.converged is not None and self.converged():
            if self.log is not None:
                self.log("turn_passed", height=height, reason="converged: the genesis stopping rule says so")
            return None
        hp = self.hp.updated(hyperparams) if hyperparams else self.hp
        # ids count contributions, they do not ration training: samples proposed before are trained
        # again (declared as re-used); only the local-test share is never trained on
        fitted = batch_params(self.pool, hp)
        if fitted is None:
            return None  # too few samples for the coalition's minimum batch: pass the turn
        hp = fitted
        if not self.store.has(parent_model_hash):  # a head we never evaluated (not on its committee)
            if self.fetch is None or not self.fetch(parent_model_hash):
                return None  # cannot train on a model we cannot get: pass the turn
        head = self.store.get_state(parent_model_hash)
        seed = int(np.random.default_rng([self.seed, height, len(self.used)]).integers(2**31))
        t0 = time.perf_counter()
        res = train_increment(self.task, head, self.pool, hp, seed=seed, threads=1)
        step = 1.0
        if self.self_check_floor is not None:
            res, check = backtrack_to_floor(self.task, head, res, self.evaluator.global_test, self.self_check_floor,
                                            g_old=self.evaluator.global_score(parent_model_hash))
            step = check.factor
        if self.log is not None:
            self.log("trained", height=height, model=res.model_hash, train_s=round(time.perf_counter() - t0, 6),
                     step=step)
        h = self.store.put_state(res.candidate)
        self.evaluator.add_local_test(res.local_test)
        self.pool.hold_out(res.local_test_ids)
        self.pool.mark_contributed(res.new_ids)  # never claimed as new twice, even if this one is rejected
        self.used += list(res.new_ids)
        self.local += list(res.local_test_ids)
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"used": self.used, "local": self.local}))
        os.replace(tmp, self.record)
        if self.proposed is not None:
            self.proposed()
        return Candidate(model_hash=h, increment_hash=res.increment_hash, sample_count=res.sample_count,
                         data_ids_root=res.data_ids_root, reused_count=res.reused_count,
                         reused_ids_root=res.reused_ids_root)


class PeerLink:
    """A kept-alive mutual-TLS connection to one peer for `POST /v1/messages` (one TLS handshake, many messages).

    The server's certificate must be the peer's (allow-list and member id); a stale connection is
    re-opened once per message (a duplicate is harmless: the protocol ignores repeated messages).
    """

    def __init__(self, url: str, context: ssl.SSLContext, allowlist: MemberAllowList, member: str,
                 timeout_s: float = 5.0) -> None:
        split = urlsplit(url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 443
        self.context, self.allowlist, self.member, self.timeout_s = context, allowlist, member, timeout_s
        self.conn: http.client.HTTPSConnection | None = None

    def _open(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout_s)
        conn.connect()
        sock = conn.sock
        who = self.allowlist.identify(sock.getpeercert(binary_form=True)) if isinstance(sock, ssl.SSLSocket) else None
        if who != self.member:
            conn.close()
            raise PeerNotAllowedError(f"{self.host}:{self.port} is {who!r}, expected {self.member!r}")
        return conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def post(self, path: str, body: bytes) -> int:
        for attempt in range(2):
            fresh = self.conn is None
            if self.conn is None:
                self.conn = self._open()
            try:
                self.conn.request("POST", path, body=body,
                                  headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))})
                response = self.conn.getresponse()
                response.read(1 << 16)
                if response.will_close:
                    self.close()
                return response.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt or fresh:
                    raise
        raise ConnectionError("unreachable")  # pragma: no cover


class FetchingEvaluator:
    """The learning evaluator, fetching a missing model from the peers first."""

    def __init__(self, inner: Evaluator, store: DirectoryModelStore, node: "Node") -> None:
        self.inner, self.store, self.node = inner, store, node

    def evaluate(self, parent: str, candidate: str) -> Any:
        """Score the pair; the fetcher thread has already fetched what was missing (or failed to)."""
        t0 = time.perf_counter()
        for h in (parent, candidate):
            if not self.store.has(h):
                if h == candidate and self.node.fetch_failed_recently(h):  # one deadline spent: vote reject
                    raise InvalidModelError(f"candidate {h[:12]}… could not be fetched from any peer in time")
                raise ModelNotFoundError(f"model {h[:12]}… not found at any peer yet")  # the driver retries
        t1 = time.perf_counter()
        try:
            return self.inner.evaluate(parent, candidate)
        finally:  # the timeline of a round, for bench/network.py and operators
            self.node.log("evaluated", candidate=candidate, fetch_s=round(t1 - t0, 6),
                          eval_s=round(time.perf_counter() - t1, 6))


class Node:
    """One member as a process (see the module docstring): `start()`, `stop()`, `status()`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = cfg = config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(cfg.data_dir / "node.log", "a", buffering=1)
        self._log_lock = threading.Lock()
        # one log line per message sent, received and handled (bench/network.py's hop latencies)
        self.trace = os.environ.get("TCLEARN_TRACE_MESSAGES") == "1"
        self.identity = load_identity(cfg.identity_key, cfg.member_id)
        self.genesis = Block.from_bytes(cfg.genesis.read_bytes())
        self.task = get_task(cfg.task)
        self.models = DirectoryModelStore(cfg.data_dir / "models")
        payload = self.genesis.payload["config"]
        require_runnable_level(str(payload.get("level", "A")), f"node {cfg.member_id}")  # B/C: not as A
        init = self.task.initial_state(int(payload["model"]["seed"]))
        if self.models.put_state(init) != self.genesis.model_hash:
            raise ConfigError(f"the genesis model hash does not match the initial weights of task {cfg.task!r}")
        # every model of this chain has the genesis architecture: its size bounds what a peer may send
        self.model_max_bytes = len(self.models.get(self.genesis.model_hash)) + MODEL_SIZE_SLACK_BYTES
        self.model_fetch_deadline_s = MODEL_FETCH_BASE_S + self.model_max_bytes / MODEL_FETCH_MIN_RATE_BPS
        self._fetch_failed: dict[str, float] = {}
        self._fetch_strikes: dict[str, int] = {}  # peer -> transfers failed in a row
        self._fetch_lock = threading.Lock()
        pool_data, test = partner_data(cfg.task, cfg.partners, cfg.seed, cfg.index)
        self.pool = DataPool(pool_data, data_key(cfg.seed))
        self.evaluator = Evaluator(self.task, self.models, test)
        hp = self.task.default_hyperparams.updated(payload["hyperparams"])
        # `tclearn node propose` requests (on-demand mode) and what came of our proposals
        self.propose_pending = 0
        self.proposals_made = 0
        on_demand = cfg.propose == "on-demand"
        self.trainer = NodeTrainer(self.task, self.pool, self.evaluator, self.models, hp, cfg.seed * 1000 + cfg.index,
                                   # the fetcher thread fetched the parent before the training (or failed to)
                                   cfg.data_dir / "trained.json", fetch=None,
                                   wanted=(lambda: self.propose_pending > 0) if on_demand else None,
                                   proposed=self._proposed, log=self.log,
                                   self_check_floor=GenesisConfig.from_payload(payload).floor if cfg.self_check
                                   else None, converged=self.converged) if cfg.trains else None
        self.store = SQLiteChainStore(cfg.data_dir / "chain.sqlite")
        # the genesis stopping rule, read off the chain (every node reaches the same answer)
        self.stopping = GenesisConfig.from_payload(payload).stopping
        self.progress = Progress()
        for b in self.store:
            self.progress.observe(b)
        self.own_blocks = [{"index": b.index, "kind": b.kind, "hash": b.block_hash} for b in self.store
                           if b.contributor == cfg.member_id and b.kind in ("increment", "rejected")]
        self.lock = threading.RLock()
        self.inbox: queue.Queue[tuple[str, Message]] = queue.Queue(maxsize=4096)
        self.prefetch: queue.Queue[tuple[str, str | None]] = queue.Queue(maxsize=64)
        self.to_fetch: queue.Queue[tuple[Any, list[str]]] = queue.Queue()  # (work, missing models): fetcher
        self.fetched: queue.Queue[Any] = queue.Queue()  # work whose models the fetcher is done with: core
        self._stop = threading.Event()
        # who may talk to us: the certificate fingerprints genesis records (the config may not widen them)
        members = {m["id"]: m.get("cert_fingerprint", "") for m in payload["members"]}
        for peer in cfg.peers:
            if peer.member_id not in members:
                raise ConfigError(f"peer {peer.member_id!r} is not a member of this coalition's genesis")
            if peer.fingerprint and members[peer.member_id] and peer.fingerprint != members[peer.member_id]:
                raise ConfigError(f"peer {peer.member_id!r}: certificate fingerprint differs from genesis")
        fps = {fp: m for m, fp in members.items() if fp}
        if not fps:  # a genesis without fingerprints: trust the config's
            fps = {p.fingerprint: p.member_id for p in cfg.peers if p.fingerprint}
        self.allowlist = MemberAllowList(fps)
        self.client_ctx = client_context(cfg.ca_cert, cfg.tls_cert, cfg.tls_key)
        self.peers = {p.member_id: PeerClient.from_context(p.url, self.client_ctx, self.allowlist,
                                                           expected_member=p.member_id, timeout_s=5.0, retries=0)
                      for p in cfg.peers if p.member_id != cfg.member_id}
        self.model_clients = {m: PeerClient.from_context(c.base_url, self.client_ctx, self.allowlist,
                                                         expected_member=m, timeout_s=10.0, retries=0)
                              for m, c in self.peers.items()}
        self.outboxes: dict[str, queue.Queue[bytes]] = {m: queue.Queue(maxsize=OUTBOX_MAX) for m in self.peers}
        params = ConsensusParams(proposal_timeout_ticks=cfg.proposal_timeout_ticks)
        self.driver = MemberDriver(
            self.identity, self.store, transport=self, clock=WallClock(),
            evaluator=FetchingEvaluator(self.evaluator, self.models, self), trainer=self.trainer,
            genesis=self.genesis, safety=FileSafetyStore(cfg.data_dir / "safety.json"), params=params,
            verify_on_start=True, defer_work=True,
            on_commit=self._on_commit,
            on_evidence=lambda e: self.log("evidence", detail=str(e)[:300]),
        )
        router = Router()
        router.route("POST", "/v1/messages", self._on_message, max_body_bytes=MAX_MESSAGE_BYTES)
        router.route("GET", "/v1/models/{model_hash}", self._on_model)
        router.route("GET", "/v1/blocks", self._on_blocks)
        router.route("GET", "/v1/status", lambda caller, body, query: json_response(self.status()))
        router.route("POST", "/v1/propose", self._on_propose, max_body_bytes=1024)
        self.server = NodeServer(router, server_context(cfg.ca_cert, cfg.tls_cert, cfg.tls_key), self.allowlist,
                                 host=cfg.host, port=cfg.port, member_id=cfg.member_id,
                                 limits=ServerLimits(max_body_bytes=MAX_MESSAGE_BYTES),
                                 log=lambda rec: self._write(rec))
        self.threads: list[threading.Thread] = []
        self._status: dict[str, Any] = {"member": cfg.member_id, "height": self.store.height(), "head": None}
        self.ready = False  # False until the warm-up is done and the core runs
        self._snapshot()

    def _proposed(self) -> None:
        """The trainer produced a candidate (core thread)."""
        with self.lock:
            self.proposals_made += 1
            if self.propose_pending > 0:
                self.propose_pending -= 1
        self.log("proposed", pending=self.propose_pending)

    def _on_propose(self, caller: str, body: bytes, query: Any) -> Any:
        """`tclearn node propose`: only the node's own operator (its own certificate) may ask."""
        if caller != self.config.member_id:
            self.log("propose_refused", caller=caller)
            raise RequestError(403, "only this node's own certificate may ask it to propose")
        if self.config.propose == "never":
            raise RequestError(409, "this node does not propose (node.propose = \"never\")")
        with self.lock:
            if self.config.propose == "on-demand":
                self.propose_pending += 1
            answer = {"member": self.config.member_id, "mode": self.config.propose, "pending": self.propose_pending,
                      "proposals_made": self.proposals_made, "own_blocks": len(self.own_blocks),
                      "height": self.store.height()}
        self.log("propose_requested", pending=answer["pending"])
        return json_response(answer, 202)

    def converged(self) -> bool:
        """Whether the genesis stopping rule says the coalition has converged (never, without one)."""
        return self.stopping is not None and self.progress.converged(self.stopping)

    def _on_commit(self, block: Block) -> None:
        self.log("commit", index=block.index, kind=block.kind, hash=block.block_hash, contributor=block.contributor)
        self.progress.observe(block)
        if block.contributor == self.config.member_id and block.kind in ("increment", "rejected"):
            self.own_blocks.append({"index": block.index, "kind": block.kind, "hash": block.block_hash})
        if not self.models.has(block.model_hash):  # fetch the new head in the background (we may train on it)
            try:
                self.prefetch.put_nowait((block.model_hash, block.contributor))
            except queue.Full:
                pass

    def _prefetcher(self) -> None:
        while not self._stop.is_set():
            try:
                h, contributor = self.prefetch.get(timeout=0.2)
            except queue.Empty:
                continue
            if not self.models.has(h):
                self.fetch_model(h, prefer=contributor)

    # --- logging -------------------------------------------------------------------
    def _write(self, record: dict[str, Any]) -> None:
        with self._log_lock:
            if not self._log_file.closed:
                self._log_file.write(json.dumps(record, sort_keys=True, default=str) + "\n")

    def log(self, event: str, **fields: Any) -> None:
        self._write({"ts": round(time.time(), 6), "event": event, "member": self.config.member_id, **fields})

    # --- transport seam (called by the driver, on the core thread) ------------------------------------
    def send(self, to: str, message: Message) -> None:
        box = self.outboxes.get(to)
        if box is None:
            return
        data = encode_message(message)
        if self.trace:
            self.log("msg_out", to=to, kind=type(message).__name__, id=hashlib.sha256(data).hexdigest()[:12])
        try:
            box.put_nowait(data)
        except queue.Full:  # drop the oldest: the protocol re-sends what matters
            try:
                box.get_nowait()
                box.put_nowait(data)
            except (queue.Empty, queue.Full):
                pass

    def _sender(self, member: str) -> None:
        box = self.outboxes[member]
        link = PeerLink(self.peers[member].base_url, self.client_ctx, self.allowlist, member)
        failures = 0
        while not self._stop.is_set():
            try:
                data = box.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                status = link.post("/v1/messages", data)
                if status >= 400:
                    self.log("send_refused", to=member, status=status)
                failures = 0
            except Exception as exc:  # peer down: drop what is queued for it (the protocol re-sends), back off
                failures += 1
                dropped = 0
                while True:
                    try:
                        box.get_nowait()
                        dropped += 1
                    except queue.Empty:
                        break
                if failures in (1, 10) or failures % 100 == 0:
                    self.log("send_failed", to=member, reason=str(exc)[:200], failures=failures, dropped=dropped)
                self._stop.wait(min(1.0, 0.05 * failures))
        link.close()

    # --- HTTP handlers (connection threads) ----------------------------------------------------------
    def _on_message(self, caller: str, body: bytes, query: Any) -> Any:
        try:
            message = decode_message(body)
        except RemoteProtocolError as exc:
            self.log("message_refused", sender=caller, reason=str(exc)[:200])
            raise RequestError(400, "invalid message") from None
        if self.trace:
            self.log("msg_in", sender=caller, kind=type(message).__name__, id=hashlib.sha256(body).hexdigest()[:12])
        try:
            self.inbox.put_nowait((caller, message))
        except queue.Full:
            raise RequestError(503, "inbox full") from None
        return json_response({"accepted": True}, 202)

    def _on_model(self, caller: str, body: bytes, query: Any) -> Any:
        h = query.get("model_hash", "")
        if not re.fullmatch(r"[0-9a-f]{64}", h):
            raise RequestError(400, "a model hash is 64 lowercase hex digits")
        try:
            if not self.models.has(h):
                raise RequestError(404, "no such model")
            return safetensors_response(self.models.get(h))
        except (ValueError, OSError, InvalidModelError, HashMismatchError):
            raise RequestError(404, "no such model") from None

    def _on_blocks(self, caller: str, body: bytes, query: Any) -> Any:
        try:
            start = int(query.get("from", "0"))
        except ValueError:
            raise RequestError(400, "from must be an integer") from None
        # a ranged read of at most BLOCKS_PER_ANSWER blocks, outside the core lock (the store has its own)
        blocks = self.store.blocks_range(max(0, start), BLOCKS_PER_ANSWER)
        return cbor_response({"blocks": [b.to_bytes() for b in blocks]})

    def fetch_model(self, h: str, prefer: str | None = None) -> bool:
        """Fetch model `h` from a peer (`prefer` first; hash and format checked); True if we have it now.

        Each peer gets the size cap and the deadline of one model; all together at most two deadlines.
        """
        order = sorted(self.model_clients.items(), key=lambda kv: kv[0] != prefer)
        deadline = time.monotonic() + 2 * self.model_fetch_deadline_s
        for member, client in order:
            if self.models.has(h):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                data = client.get_model(f"/v1/models/{h}", max_bytes=self.model_max_bytes,
                                        deadline_s=min(left, self._fetch_deadline_for(member)))
                self.models.put(data, expected_hash=h)
                self.log("model_fetched", model=h, peer=member, bytes=len(data))
                with self._fetch_lock:
                    self._fetch_failed.pop(h, None)
                    self._fetch_strikes.pop(member, None)
                return True
            except Exception as exc:
                if not isinstance(exc, HTTPStatusError):  # "I do not have it" is no fault
                    with self._fetch_lock:
                        self._fetch_strikes[member] = self._fetch_strikes.get(member, 0) + 1
                self.log("model_fetch_failed", model=h, peer=member, reason=str(exc)[:200])
        if self.models.has(h):
            return True
        with self._fetch_lock:
            now = time.monotonic()
            self._fetch_failed = {k: t for k, t in self._fetch_failed.items() if now - t < FETCH_FAILURE_MEMORY_S}
            self._fetch_failed[h] = now
        return False

    def _fetch_deadline_for(self, member: str) -> float:
        """The deadline of a transfer from `member`: halved for each of its failures in a row, down to a floor."""
        with self._fetch_lock:
            strikes = self._fetch_strikes.get(member, 0)
        floor = MODEL_FETCH_FLOOR_S + self.model_max_bytes / MODEL_FETCH_MIN_RATE_BPS
        return max(floor, self.model_fetch_deadline_s / 2 ** min(strikes, 16))

    def fetch_failed_recently(self, h: str) -> bool:
        with self._fetch_lock:
            t = self._fetch_failed.get(h)
        return t is not None and time.monotonic() - t < FETCH_FAILURE_MEMORY_S

    def _missing_models(self, work: Any) -> list[str]:
        """Models the work needs and we lack: the parent always, a candidate unless it failed a moment ago."""
        action = work.action
        missing = [action.parent_model_hash] if not self.models.has(action.parent_model_hash) else []
        candidate = getattr(action, "candidate_model_hash", None)
        if candidate is not None and not self.models.has(candidate) and not self.fetch_failed_recently(candidate):
            missing.append(candidate)
        return missing

    def _fetcher(self) -> None:
        """Fetch the models of work the core thread handed over, then hand the work back (off the core)."""
        while not self._stop.is_set():
            try:
                work, missing = self.to_fetch.get(timeout=0.2)
            except queue.Empty:
                continue
            for h in missing:
                if not self.models.has(h):
                    self.fetch_model(h)
            self.fetched.put(work)
            try:
                self.inbox.put_nowait(_WAKE)  # type: ignore[arg-type]
            except queue.Full:
                pass  # the core is busy anyway: it picks the work up after this batch

    def _run_work(self) -> None:
        """Core thread: run the evaluations and trainings whose models are here; hand the others to the fetcher."""
        while True:
            try:
                work = self.fetched.get_nowait()
            except queue.Empty:
                with self.lock:
                    work = self.driver.take_work()
                if work is None:
                    return
                missing = self._missing_models(work)
                if missing:
                    self.to_fetch.put((work, missing))
                    continue
            with self.lock:
                self.driver.finish_work(work, self.driver.compute_work(work))

    # --- the core thread -------------------------------------------------------------------------
    def _warm_up(self) -> None:
        """Pay torch's first-call costs (kernels, allocator, thread pools) before the first round.

        Measured on 2 cores: a node's first evaluation took 2–2.5 s and its first
        training 1.6–2 s, against 0.1 s afterwards; with 16 fresh nodes almost
        every early block waited on one. Scoring the genesis model on G is work
        a validator needs anyway (the parent's scores are cached); the training
        step on two samples is thrown away.
        """
        t0 = time.perf_counter()
        try:
            self.evaluator.global_score(self.genesis.model_hash)
            if self.trainer is not None and len(self.pool.data) >= 2:
                model = self.task.model_from_state(self.models.get_state(self.genesis.model_hash))
                hp = dataclasses.replace(self.trainer.hp, epochs=1, distill=0.0)
                fit(self.task, model, self.pool.data.subset(range(2)), hp, torch.Generator().manual_seed(0))
            self.log("warmed_up", seconds=round(time.perf_counter() - t0, 3))
        except Exception as exc:  # a failed warm-up only costs time later
            self.log("error", where="warm_up", reason=repr(exc)[:300])

    def _core(self) -> None:
        self._warm_up()
        self.ready = True
        tick_s = self.config.tick_ms / 1000.0
        next_tick = time.monotonic()
        with self.lock:
            self.driver.start()
            self._snapshot()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                batch = [self.inbox.get(timeout=timeout)]
                while len(batch) < 64:  # drain a burst (a round's votes arrive together): one snapshot after
                    try:
                        batch.append(self.inbox.get_nowait())
                    except queue.Empty:
                        break
            except queue.Empty:
                batch = []
            for sender, message in batch:
                if message is None:  # _WAKE
                    continue
                try:
                    with self.lock:
                        if self.trace:
                            self.log("msg_core", sender=sender, kind=type(message).__name__)
                        self.driver.receive(sender, message)
                except Exception as exc:
                    self.log("error", where="receive", reason=repr(exc)[:300])
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_s
                try:
                    with self.lock:
                        self.driver.tick()
                except Exception as exc:
                    self.log("error", where="tick", reason=repr(exc)[:300])
            if self.driver.pending_work() or not self.fetched.empty():
                try:
                    self._run_work()
                except Exception as exc:
                    self.log("error", where="work", reason=repr(exc)[:300])
            with self.lock:
                self._snapshot()

    # --- life cycle ----------------------------------------------------------------------------------
    def start(self) -> "Node":
        self.server.start()
        self.log("node_started", url=self.server.url, height=self.store.height())
        self.threads = [threading.Thread(target=self._core, name="tclearn-core", daemon=True),
                        threading.Thread(target=self._prefetcher, name="tclearn-prefetch", daemon=True),
                        threading.Thread(target=self._fetcher, name="tclearn-fetch", daemon=True)]
        self.threads += [threading.Thread(target=self._sender, args=(m,), name=f"tclearn-send-{m}", daemon=True)
                         for m in self.peers]
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        deadline = time.monotonic() + 3.0
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self.log("node_stopped")
        with self.lock:
            self.store.close()
        with self._log_lock:
            self._log_file.close()

    def _snapshot(self) -> None:
        """Refresh the status answer (core thread, under the lock): readers never wait for training."""
        head = self.store.head()
        self._status = {"member": self.config.member_id, "height": self.store.height(), "ready": self.ready,
                        "head": {"index": head.index, "hash": head.block_hash, "kind": head.kind,
                                 "model_hash": head.model_hash} if head else None,
                        "round": {"height": self.driver.core.work.h}, "commits": self.driver.commits,
                        "evidence": len(self.driver.evidence), "inbox": self.inbox.qsize(),
                        "converged": self.converged(),
                        "pending_work": self.driver.pending_work(), "fetching": self.to_fetch.qsize(),
                        "propose": {"mode": self.config.propose, "pending": self.propose_pending,
                                    "proposals_made": self.proposals_made, "own_blocks": len(self.own_blocks),
                                    "last_own_block": self.own_blocks[-1] if self.own_blocks else None}}

    def status(self) -> dict[str, Any]:
        return dict(self._status)


def serve(config_path: Path | str, max_seconds: float | None = None) -> None:
    """Run a node until SIGTERM/SIGINT (or `max_seconds`)."""
    import signal

    node = Node(NodeConfig.load(config_path)).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(json.dumps({"member": node.config.member_id, "url": node.server.url}), flush=True)
    done.wait(max_seconds)
    node.stop()
