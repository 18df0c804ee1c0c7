"""One member's running process: its driver wired to SQLite, the wall clock and HTTPS.

This module is the wiring; each other question has its module:

* `api`: the HTTP handlers (connection threads only validate and queue).
* `fetching`: models fetched from the peers off the core thread, capped in size and time.
* `peers`: one bounded outbox and one sender thread per peer (`PeerLink`, kept-alive mutual TLS).
* `trainer`: `NodeTrainer`, the increment this partner proposes.
* `data_source`: this partner's pool and G.
* `layout`: the files under `data_dir`.

Threads: the HTTPS server's connection threads; one *core thread* owns the
driver — it drains the inbox, ticks every `tick_ms`, and runs the deferred
evaluation and training (measured: a message waits up to ~100 ms behind an
evaluation, p90; moving the work to a thread of its own made blocks slower
on 2 cores — the two threads fight over the GIL — so it stays here); the
fetcher and prefetcher threads; one sender thread per peer.

Recovery: the chain (SQLite), the safety snapshot (`FileSafetyStore`), the
model directory and `trained.json` (ids already used, local test ids) are all
a restarted node needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from tclearn.consensus.messages import MAX_MESSAGE_BYTES, Message
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.progress import Progress
from tclearn.consensus.actions import Evaluate
from tclearn.data import DataPool
from tclearn.data.accounting import BatchIds
from tclearn.errors import ConfigError
from tclearn.identity import load_identity
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.learning import DirectoryModelStore, Evaluator
from tclearn.learning.train import fit
from tclearn.levels import require_node_level
from tclearn.member import FileSafetyStore, MemberDriver
from tclearn.node.api import build_router
from tclearn.node.config import NodeConfig
from tclearn.node.data_source import ZERO_TEST_SET_HASH, data_key, member_data, partner_data, task_from_genesis
from tclearn.node.batch_ids import BatchIdRegistry, IdCheckingEvaluator
from tclearn.node.fetching import FetchingEvaluator, ModelFetcher
from tclearn.node.governance import GovernanceDesk
from tclearn.node.learning_rate import LearningRateAsker
from tclearn.node.chain_members import ChainMember, allowlist_table, apply_membership, members_of_chain, removal_of
from tclearn.node.chain_members import peer_urls as current_peer_urls
from tclearn.node.joining import catch_up_to_membership
from tclearn.node.layout import NodeLayout
from tclearn.node.peers import Outboxes, source_host_for
from tclearn.node.trainer import NodeTrainer
from tclearn.node.vault_link import VaultFetchClient, VaultLink, VaultModelCache
from tclearn.transport import MemberAllowList, NodeServer, PeerClient, ServerLimits, client_context, server_context

# NodeTrainer, data_key and partner_data are re-exported: bench/ and older callers import them from here
__all__ = ["Node", "NodeTrainer", "data_key", "partner_data", "serve"]

_WAKE = ("", None)  # put in the inbox to wake the core thread (fetched work is ready)


class WallClock:
    def now_ms(self) -> int:
        return int(time.time() * 1000)


class Node:
    """One member as a process (see the module docstring): `start()`, `stop()`, `status()`."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = cfg = config
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        self.layout = layout = NodeLayout(cfg.data_dir)
        self._log_file = open(layout.log, "a", buffering=1)
        self._log_lock = threading.Lock()
        # one log line per message sent, received and handled (bench/network.py's hop latencies)
        self.trace = os.environ.get("TCLEARN_TRACE_MESSAGES") == "1"
        self.identity = load_identity(cfg.identity_key, cfg.member_id)
        self.genesis = Block.from_bytes(cfg.genesis.read_bytes())
        payload = self.genesis.payload["config"]
        listed = {str(m["id"]): bytes(m["public_key"]) for m in payload["members"]}
        # a member genesis does not list may be joining a running coalition: its key is checked against the
        # membership block that adds it (node/joining.py), below
        if cfg.member_id in listed and listed[cfg.member_id] != self.identity.public_key:
            raise ConfigError(f"the genesis of coalition {payload['coalition_id']!r} does not list this node's "
                              f"identity key as {cfg.member_id!r}: a kit or key for another coalition")
        if str(payload["model"]["task"]) != cfg.task:
            raise ConfigError(f"node.task is {cfg.task!r}, but genesis fixes task {payload['model']['task']!r}")
        self.task = task_from_genesis(payload)
        # this member's own data (D_i) and G, checked against the task and genesis's test_set.hash
        # before anything is stored
        pool_data, test = member_data(cfg.data, cfg.test_set, self.task,
                                      recorded_test_hash=str(payload.get("test_set_hash", ZERO_TEST_SET_HASH)),
                                      seed=cfg.seed, partners=cfg.partners, index=cfg.index)
        # level B: models only in memory, fetched from and published to the supervisor's vault (node/vault_link.py)
        self.vault = VaultLink(cfg.vault, cfg.ca_cert, cfg.tls_cert, cfg.tls_key) if cfg.vault is not None else None
        self.models = VaultModelCache(self.vault) if self.vault is not None else DirectoryModelStore(layout.models)
        require_node_level(str(payload.get("level", "A")), f"node {cfg.member_id}", self.vault is not None)
        init = self.task.initial_state(int(payload["model"]["seed"]))
        if self.models.put_state(init) != self.genesis.model_hash:
            raise ConfigError(f"the genesis model hash does not match the initial weights of task {cfg.task!r}")
        self.pool = DataPool(pool_data, data_key(cfg.seed))
        self.evaluator = Evaluator(self.task, self.models, test)
        # the batches' id lists and the spent-id registry (rebuilt from the chain below); G's ids are never new
        self._stop = threading.Event()
        self.batch_ids = BatchIdRegistry(cfg.data_dir / "batch_ids", self.log,
                                         test_ids=DataPool(test, data_key(cfg.seed)).ids, wait=self._stop.wait)
        hp = self.task.default_hyperparams.updated(payload["hyperparams"])
        # `tclearn node propose` requests (on-demand mode) and what came of our proposals
        self.propose_pending = 0
        self.proposals_made = 0
        on_demand = cfg.propose == "on-demand"
        self.trainer = NodeTrainer(self.task, self.pool, self.evaluator, self.models, hp, cfg.seed * 1000 + cfg.index,
                                   # the fetcher thread fetched the parent before the training (or failed to)
                                   layout.trained, fetch=None,
                                   wanted=(lambda: self.propose_pending > 0) if on_demand else None,
                                   proposed=self._proposed, log=self.log,
                                   self_check_floor=GenesisConfig.from_payload(payload).floor if cfg.self_check
                                   else None, converged=self.converged, on_batch=self._own_batch,
                                   spent=self.batch_ids.spent) if cfg.trains else None
        self.store = SQLiteChainStore(layout.chain)
        # the current members (keys, certificate fingerprints, URLs): genesis and the membership blocks
        self.members = members_of_chain(payload, self.store)
        self.configured_urls = {p.member_id: p.url for p in cfg.peers}
        removed = removal_of(cfg.member_id, self.store) if cfg.member_id not in self.members else None
        if removed is not None:
            raise ConfigError(f"{cfg.member_id} was removed from the coalition by membership block {removed} of "
                              "this node's chain: its connections are refused; ask the founder to add it again")
        if cfg.member_id not in self.members:  # joining a running coalition: catch up until a block lists us
            self.members = catch_up_to_membership(self.store, self.genesis, cfg.member_id, self.identity.public_key,
                                                  self._join_clients, self.log)
        elif self.members[cfg.member_id].public_key != self.identity.public_key:
            raise ConfigError(f"the chain records another identity key for {cfg.member_id!r} than this node's")
        # the genesis stopping rule, read off the chain (every node reaches the same answer)
        self.stopping = GenesisConfig.from_payload(payload).stopping
        self.progress = Progress()
        # the genesis adaptive learning-rate policy: the next height's proposer asks for the lower rate
        lr_policy = GenesisConfig.from_payload(payload).adaptive_lr
        self.lr_asker = LearningRateAsker(cfg.member_id, lr_policy, self.log) if lr_policy is not None else None
        for b in self.store:
            self.progress.observe(b)
        if self.store.height() < 0:  # a first start: the driver appends genesis later; the policies need its rate
            self.progress.observe(self.genesis)
        self.batch_ids.rebuild(self.store)
        for b in self.store:  # our samples count as contributed from the chain's accepted increments only
            self._own_contribution(b)
        self.own_blocks = [{"index": b.index, "kind": b.kind, "hash": b.block_hash} for b in self.store
                           if b.contributor == cfg.member_id and b.kind in ("increment", "rejected")]
        self.lock = threading.RLock()
        self.inbox: queue.Queue[tuple[str, Message]] = queue.Queue(maxsize=4096)
        # `serve` stops the node once this is set: by SIGTERM/SIGINT, or by a committed membership block that
        # removes this member (`removed_at`; the peers refuse its connections from that block on, so serving or
        # proposing further would only burn resources)
        self.ended = threading.Event()
        self.removed_at: int | None = None
        # `tclearn revert|hyperparams|membership`: the operator's requests, handed to the driver on the core thread
        self.governance = GovernanceDesk(cfg.member_id, cfg.data_dir / "governance.jsonl", self.log, self._wake)
        # who may talk to us: the certificate fingerprints the chain records (genesis, then membership blocks);
        # the config may not widen them, and a removed member's entry is ignored
        members = {m: c.fingerprint for m, c in self.members.items()}
        ever = {str(m["id"]) for m in payload["members"]} | set(members)
        for peer in cfg.peers:
            if peer.member_id not in ever:
                raise ConfigError(f"peer {peer.member_id!r} is not a member of this coalition's genesis or chain")
            if peer.fingerprint and members.get(peer.member_id) and peer.fingerprint != members[peer.member_id]:
                raise ConfigError(f"peer {peer.member_id!r}: certificate fingerprint differs from the chain's")
        fps = self._allowed_fingerprints()
        self.allowlist = MemberAllowList(fps)
        self.client_ctx = client_context(cfg.ca_cert, cfg.tls_cert, cfg.tls_key)
        peer_urls = current_peer_urls(self.members, self.configured_urls, cfg.member_id)
        source_host = source_host_for(cfg.host)  # on loopback, connections leave from this member's own address
        model_clients = {m: PeerClient.from_context(url, self.client_ctx, self.allowlist, expected_member=m,
                                                    timeout_s=10.0, retries=0, source_host=source_host)
                         for m, url in peer_urls.items()}
        self.peer_clients = dict(model_clients)  # id lists come from the peers, at every level
        if cfg.vault is not None and self.vault is not None:  # level B: models from the vault, never from peers
            model_clients = {cfg.vault.member_id: VaultFetchClient(self.vault)}  # type: ignore[dict-item]
        self.fetcher = ModelFetcher(self.models, model_clients, len(self.models.get(self.genesis.model_hash)),
                                    log=self.log, stop=self._stop, wake=self._wake)
        self.fetcher.prepare = lambda work: self.batch_ids.fetch_for(
            getattr(work.action, "candidate_model_hash", None), self.peer_clients)
        self.outboxes = Outboxes(peer_urls, self.client_ctx, self.allowlist, log=self.log, stop=self._stop,
                                 trace=self.trace, source_host=source_host)
        params = ConsensusParams(proposal_timeout_ticks=cfg.proposal_timeout_ticks)
        self.driver = MemberDriver(
            self.identity, self.store, transport=self.outboxes, clock=WallClock(),
            evaluator=IdCheckingEvaluator(FetchingEvaluator(self.evaluator, self.models, self.fetcher, self.log),
                                          self.batch_ids, self.log), trainer=self.trainer,
            genesis=self.genesis, safety=FileSafetyStore(layout.safety), params=params,
            verify_on_start=True, defer_work=True,
            on_commit=self._on_commit,
            on_evidence=lambda e: self.log("evidence", detail=str(e)[:300]),
        )
        self.server = NodeServer(build_router(self), server_context(cfg.ca_cert, cfg.tls_cert, cfg.tls_key),
                                 self.allowlist, host=cfg.host, port=cfg.port, member_id=cfg.member_id,
                                 limits=ServerLimits(max_body_bytes=MAX_MESSAGE_BYTES),
                                 log=lambda rec: self._write(rec))
        self.threads: list[threading.Thread] = []
        self._status: dict[str, Any] = {"member": cfg.member_id, "height": self.store.height(), "head": None}
        self.ready = False  # False until the warm-up is done and the core runs
        self._snapshot()

    def _own_batch(self, model_hash: str, new: tuple[str, ...], reused: tuple[str, ...]) -> None:
        """The trainer proposed `model_hash`: keep its id lists, which validators fetch (GET /v1/batches/…)."""
        self.batch_ids.put(model_hash, BatchIds(new, reused))

    def _proposed(self) -> None:
        """The trainer produced a candidate (core thread)."""
        with self.lock:
            self.proposals_made += 1
            if self.propose_pending > 0:
                self.propose_pending -= 1
        self.log("proposed", pending=self.propose_pending)

    def request_proposal(self) -> dict[str, Any]:
        """Count one `tclearn node propose` request (on-demand mode); what to answer the operator."""
        with self.lock:
            if self.config.propose == "on-demand":
                self.propose_pending += 1
            answer = {"member": self.config.member_id, "mode": self.config.propose, "pending": self.propose_pending,
                      "proposals_made": self.proposals_made, "own_blocks": len(self.own_blocks),
                      "height": self.store.height()}
        self.log("propose_requested", pending=answer["pending"])
        return answer

    def converged(self) -> bool:
        """Whether the genesis stopping rule says the coalition has converged (never, without one)."""
        return self.stopping is not None and self.progress.converged(self.stopping)

    def _on_commit(self, block: Block) -> None:
        self.log("commit", index=block.index, kind=block.kind, hash=block.block_hash, contributor=block.contributor)
        self.progress.observe(block)
        if self.lr_asker is not None and not self.converged():
            self.lr_asker.after_commit(self.progress, self.driver.state, self.driver.request_hyperparams)
        if block.contributor == self.config.member_id and block.kind in ("increment", "rejected"):
            self.own_blocks.append({"index": block.index, "kind": block.kind, "hash": block.block_hash})
        self.fetcher.prefetch_head(block.model_hash, block.contributor)
        self.batch_ids.on_commit(block)
        self._own_contribution(block)
        if block.kind == "membership":
            self._membership_changed(block)

    # --- membership: allow-list and peer set from the chain -------------------------------------------
    def _allowed_fingerprints(self) -> dict[str, str]:
        """fingerprint -> member id of the current members, and our own (the operator's CLI uses our certificate)."""
        fps = allowlist_table(self.members)
        if not fps:  # a genesis without fingerprints: trust the config's
            fps = {p.fingerprint: p.member_id for p in self.config.peers if p.fingerprint and p.member_id in self.members}
        if self.config.fingerprint:
            fps.setdefault(self.config.fingerprint, self.config.member_id)
        return fps

    def _peer_client(self, member: str, url: str, allowlist: MemberAllowList) -> PeerClient:
        return PeerClient.from_context(url, client_context(self.config.ca_cert, self.config.tls_cert,
                                                           self.config.tls_key), allowlist, expected_member=member,
                                       timeout_s=10.0, retries=0, source_host=source_host_for(self.config.host))

    def _join_clients(self, allowlist: MemberAllowList, members: Mapping[str, ChainMember]) -> dict[str, PeerClient]:
        """Clients to the members we know of, for the joining catch-up (node/joining.py)."""
        urls = current_peer_urls(members, self.configured_urls, self.config.member_id)
        return {m: self._peer_client(m, url, allowlist) for m, url in urls.items()}

    def _membership_changed(self, block: Block) -> None:
        """A committed membership block: allow-list, peer set and peer clients follow it, without a restart.

        A removed member's connections are refused from now on (new ones by the
        allow-list, kept-alive ones on their next request); the committee of the
        next height is drawn from the new members, so its votes stop counting.
        """
        self.members = apply_membership(self.members, block)
        self.allowlist.replace(self._allowed_fingerprints())
        urls = current_peer_urls(self.members, self.configured_urls, self.config.member_id)
        for m in list(self.outboxes.boxes):
            if m not in urls:
                self.outboxes.remove_peer(m)
        for m, url in urls.items():
            self.outboxes.add_peer(m, url)
        clients = {m: self.peer_clients[m] if m in self.peer_clients and self.peer_clients[m].base_url == url
                   else self._peer_client(m, url, self.allowlist) for m, url in urls.items()}
        self.peer_clients = clients  # swapped whole: the fetcher thread reads it without the lock
        if self.vault is None:
            self.fetcher.clients = dict(clients)
        removed_self = self.config.member_id not in self.members
        self.log("membership_applied", index=block.index, members=sorted(self.members),
                 peers=sorted(urls), removed_self=removed_self)
        if removed_self:
            self.removed_at = block.index
            self.log("removed_from_coalition", index=block.index)
            self.ended.set()

    def _own_contribution(self, block: Block) -> None:
        """An accepted increment of ours on the chain: its new ids become the pool's contributions."""
        if self.trainer is None or block.kind != "increment" or block.contributor != self.config.member_id:
            return
        ids = self.batch_ids.get(block.model_hash)
        if ids is not None:
            self.trainer.contributed(ids.new)

    # --- logging -------------------------------------------------------------------
    def _write(self, record: dict[str, Any]) -> None:
        with self._log_lock:
            if not self._log_file.closed:
                self._log_file.write(json.dumps(record, sort_keys=True, default=str) + "\n")

    def log(self, event: str, **fields: Any) -> None:
        self._write({"ts": round(time.time(), 6), "event": event, "member": self.config.member_id, **fields})

    def _wake(self) -> None:
        """Wake the core thread: fetched work is ready."""
        try:
            self.inbox.put_nowait(_WAKE)  # type: ignore[arg-type]
        except queue.Full:
            pass  # the core is busy anyway: it picks the work up after this batch

    def _run_work(self) -> None:
        """Core thread: run the evaluations and trainings whose models are here; hand the others to the fetcher."""
        while True:
            try:
                work = self.fetcher.fetched.get_nowait()
            except queue.Empty:
                with self.lock:
                    work = self.driver.take_work()
                if work is None:
                    return
                missing = self.fetcher.missing_models(work)
                if missing or (isinstance(work.action, Evaluate)
                               and self.batch_ids.lacks(work.action.candidate_model_hash)):
                    self.fetcher.to_fetch.put((work, missing))
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
                        self.batch_ids.note(message)
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
            if self.governance.waiting():
                try:
                    with self.lock:
                        self.governance.run_queued(self.driver, lambda i: self.store.get(i).kind,
                                                   allowlist_table(self.members))
                except Exception as exc:
                    self.log("error", where="governance", reason=repr(exc)[:300])
            if self.driver.pending_work() or not self.fetcher.fetched.empty():
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
                        *self.fetcher.threads(), *self.outboxes.threads()]
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
                        "round": {"height": self.driver.status().work.height}, "commits": self.driver.commits,
                        "evidence": len(self.driver.evidence), "inbox": self.inbox.qsize(),
                        "converged": self.converged(), "batch_ids": self.batch_ids.summary(),
                        "pending_work": self.driver.pending_work(), "fetching": self.fetcher.to_fetch.qsize(),
                        "propose": {"mode": self.config.propose, "pending": self.propose_pending,
                                    "proposals_made": self.proposals_made, "own_blocks": len(self.own_blocks),
                                    "last_own_block": self.own_blocks[-1] if self.own_blocks else None}}

    def status(self) -> dict[str, Any]:
        return dict(self._status)


def serve(config_path: Path | str, max_seconds: float | None = None) -> None:
    """Run a node until SIGTERM/SIGINT, `max_seconds`, or a committed block that removes its member."""
    import signal

    node = Node(NodeConfig.load(config_path)).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: node.ended.set())
    print(json.dumps({"member": node.config.member_id, "url": node.server.url}), flush=True)
    node.ended.wait(max_seconds)
    node.stop()
    if node.removed_at is not None:
        print(json.dumps({"member": node.config.member_id, "stopped": "removed from the coalition by membership "
                          f"block {node.removed_at}"}), flush=True)
