"""A whole level-A coalition in one process, with real models: the demo's engine.

Partners are `MemberDriver`s (the production driver and consensus core) on the
simulator's network and virtual clock, so the same seed gives the same chain
byte for byte; training and evaluation are real (`tclearn.learning`), the
chain of every member is stored in SQLite, and the models live in one
content-addressed store (level A: public models, every node serves them).
Members' keys are derived from the seed — for the demo only.
"""

from __future__ import annotations

import random
import shutil
from collections import OrderedDict
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from tclearn.consensus import ConsensusParams, check_certificate
from tclearn.data import DataPool
from tclearn.demo.partners import (DATA_ATTACKS, MODEL_ATTACKS, CollusiveEvaluator, DuplicateCheckingEvaluator,
                                   IdRegistry, PartnerTrainer, Timer)
from tclearn.demo.record import BlockRecord, RunRecord, SliceExample
from tclearn.demo.vault_models import DemoVault
from tclearn.watermark.fingerprint import DEFAULT_ALPHA
from tclearn.errors import ConfigError
from tclearn.fsutil import atomic_write
from tclearn.founding import (coalition_data, demo_data_key, hospital_names, plan_for_task, pool_turn_weights,
                              seeded_identities)
from tclearn.consensus.progress import Progress
from tclearn.data.ids import dataset_ids
from tclearn.learning import (Evaluator, MemoryModelStore, coalition_passes, get_task, train_centralized,
                              train_centralized_converged)
from tclearn.ledger.policies import LearningRatePolicy, StoppingRule
from tclearn.learning.evaluate import deterministic_mode
from tclearn.ledger.block import Block
from tclearn.ledger.records import Proposal
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.verify import verify_chain
from tclearn.sim import SimCoalition
from tclearn.vault.anchors import chain_anchors

__all__ = ["DemoOptions", "run_coalition", "export_chain", "ATTACKS", "T0_MS"]

ATTACKS = DATA_ATTACKS[:3] + MODEL_ATTACKS + ("replay",)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the virtual clock's start


@dataclass
class DemoOptions:
    task: str = "bladder"
    partners: int = 4
    rounds: int = 24  # a cap: the run stops earlier when the genesis stopping rule says it converged
    committee: int | None = None  # None: 3, or fewer when the partners are fewer than 4
    lam: float = 0.97
    seed: int = 0
    out: Path = Path("tclearn-demo")
    malicious: int = 0
    attack: str | None = None
    centralized: bool = True
    split: str = "iid"
    collude: bool = False  # malicious partners drawn as validators vote for each other, against honest ones
    max_drop: float | None = None  # the quality rule's hard floor (genesis consensus.max_drop; None: default)
    self_check: bool = True  # honest partners score their candidate on G and shorten what the floor would refuse
    # the genesis stopping rule: converged after `stop_patience` accepted increments none of which
    # raised G by more than `stop_min_delta` (None: the default; 0: no stopping rule)
    stop_patience: int | None = None
    stop_min_delta: float = 0.0
    adaptive_lr: bool | None = None  # the genesis adaptive learning-rate policy (None: the task's default)
    lr_factor: float = 0.5
    lr_patience: int | None = None  # None: half the stopping patience
    # with the policy: local epochs from its first lowering on (None: the task's `epochs_after_lowering`;
    # 0: the epochs stay)
    lr_epochs: int | None = None
    per_partner: int | None = None  # bladder: volumes per partner (None: the task's default)
    # at most this many local passes over the mean hospital's trainable pool per increment: fewer epochs for
    # small hospitals, recorded in genesis (`Task.hyperparams_for`; None: the task's epochs)
    max_pool_passes: float | None = None
    # proposer turns in proportion to each hospital's pool (genesis consensus.turn_weights; nothing recorded
    # where the pools are equal; None: the task's default, `Task.turns_by_pool_by_default`)
    turns_by_pool: bool | None = None
    equal_budget: bool = False  # also train the centralised model for as many passes as the coalition made
    level: str = "A"  # A: public models in memory; B: through the supervisor's vault; C: B + watermarked copies
    watermark_alpha: float = DEFAULT_ALPHA  # level C: the marks' amplitude, in units of each layer's std
    task_options: dict[str, Any] = field(default_factory=dict)

    @property
    def committee_size(self) -> int:
        return self.committee if self.committee is not None else max(1, min(3, self.partners - 1))

    def check(self) -> None:
        if self.partners < 2:
            raise ConfigError("--partners must be at least 2")
        if self.level not in ("A", "B", "C"):
            raise ConfigError(f"--level must be A, B or C, got {self.level!r}")
        if not 0.0 < self.watermark_alpha < 1.0:
            raise ConfigError("--watermark-alpha must lie in (0, 1)")
        if self.committee is not None and not 1 <= self.committee <= self.partners - 1:
            raise ConfigError(f"--committee must lie in [1, {self.partners - 1}] (partners minus the proposer)")
        if self.rounds < 1:
            raise ConfigError("--rounds must be at least 1")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError("--lambda must lie in [0, 1]")
        if self.malicious < 0 or self.malicious >= self.partners:
            raise ConfigError("--malicious must lie in [0, partners - 1]")
        if self.collude and not self.malicious:
            raise ConfigError("--collude needs --malicious > 0")
        if self.max_drop is not None and not 0.0 <= self.max_drop <= 1.0:
            raise ConfigError("--max-drop must lie in [0, 1]")
        if self.malicious and self.attack not in ATTACKS:
            raise ConfigError(f"--attack must be one of {', '.join(ATTACKS)} when --malicious > 0")
        if self.stop_patience is not None and self.stop_patience < 0:
            raise ConfigError("--stop-patience must be ≥ 0 (0: no stopping rule)")
        if not 0.0 <= self.stop_min_delta < 1.0:
            raise ConfigError("--stop-min-delta must lie in [0, 1)")
        if not 0.0 < self.lr_factor < 1.0:
            raise ConfigError("--lr-factor must lie in (0, 1)")
        if self.lr_patience is not None and self.lr_patience < 1:
            raise ConfigError("--lr-patience must be ≥ 1")
        if self.lr_epochs is not None and self.lr_epochs < 0:
            raise ConfigError("--lr-epochs must be ≥ 0 (0: the epochs stay as they are)")
        if self.per_partner is not None and self.per_partner < 4:
            raise ConfigError("--per-partner must be at least 4")
        if self.max_pool_passes is not None and not 0.0 < self.max_pool_passes <= 100.0:
            raise ConfigError("--max-pool-passes must lie in (0, 100]")

    def stopping_rule(self) -> StoppingRule | None:
        patience = self.stop_patience if self.stop_patience is not None else default_stop_patience(self.partners)
        return StoppingRule(patience=patience, min_delta=self.stop_min_delta) if patience else None

    def lr_policy(self, hp: Any, task_default: bool = False,
                  task_epochs: int | None = None) -> LearningRatePolicy | None:
        """The genesis policy; `task_epochs`: the task's epochs after the first lowering (used unless --lr-epochs)."""
        if not (task_default if self.adaptive_lr is None else self.adaptive_lr):
            return None
        rule = self.stopping_rule()
        patience = self.lr_patience or max(1, (rule.patience if rule else default_stop_patience(self.partners)) // 2)
        epochs = task_epochs if self.lr_epochs is None else (self.lr_epochs or None)
        if self.lr_epochs is None and epochs is not None and epochs >= hp.epochs:
            epochs = None  # the task's cap is no cap where --max-pool-passes already trains fewer epochs
        return LearningRatePolicy(factor=self.lr_factor, patience=patience, min_lr=hp.learning_rate / 100,
                                  epochs=epochs)


def default_stop_patience(partners: int) -> int:
    """Accepted increments without a real gain on G before the coalition is called converged: three per partner."""
    return max(12, 3 * partners)


MODEL_FILE = "model.safetensors"  # level A: the final head model, beside chain.db (its hash is the head block's)

BLADDER_PER_PARTNER = 24  # volumes per hospital: a fixed data set that training re-uses, as a hospital's is


def _coalition_data(task: Any, opts: DemoOptions) -> Any:
    """Each hospital's pool and G from the seed (`tclearn.founding`); bladder: 24 volumes each unless told."""
    per_partner = (opts.per_partner or BLADDER_PER_PARTNER) if task.name == "bladder" else None
    return coalition_data(task, opts.partners, opts.seed, split=opts.split, per_partner=per_partner)


def run_coalition(opts: DemoOptions, progress: Callable[[int, Block, float], None] | None = None,
                  note: Callable[[str], None] | None = None, watch: Callable[..., Any] | None = None) -> RunRecord:
    """Run the coalition until it converges (the genesis stopping rule) or commits `opts.rounds` blocks.

    Returns the record (and writes the chains). `note` receives one line per
    long step that is not a round (the centralised reference). `watch(observer,
    chain_stores, journal)` is called once the chains exist (`tclearn demo --serve`:
    `tclearn.dashboard.for_demo`) and may return a callable that gets `chain.db` once exported.
    """
    opts.check()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    task = get_task(opts.task, **opts.task_options)
    data = _coalition_data(task, opts)
    # the task's imports and its data in hand: where a centralised run's clock starts (`bench/centralized_vs_tclearn.py`)
    data_ready_s = time.perf_counter() - t_start
    hp = task.hyperparams_for([len(p) for p in data.partners], opts.max_pool_passes)
    names = hospital_names(opts.partners)
    rng = random.Random(opts.seed)
    malicious = sorted(rng.sample(names[1:], opts.malicious)) if opts.malicious else []
    identities = seeded_identities(names, f"tclearn-demo-{opts.seed}".encode())  # tclearn.founding
    # levels B/C: every model through the supervisor's encrypted vault, one view per member (demo/vault_models.py)
    vault = None if opts.level == "A" else DemoVault(Path(opts.out), opts.level, names, opts.seed, T0_MS,
                                                            alpha=opts.watermark_alpha)
    store = MemoryModelStore() if vault is None else vault.supervisor_store
    member_store = (lambda m: store) if vault is None else vault.member_store
    init_hash = store.put_state(task.initial_state(opts.seed))
    stopping = opts.stopping_rule()
    lr_policy = opts.lr_policy(hp, task.adaptive_lr_by_default, task.epochs_after_lowering)
    by_pool = task.turns_by_pool_by_default if opts.turns_by_pool is None else opts.turns_by_pool
    turn_weights = pool_turn_weights(names, [len(p) for p in data.partners]) if by_pool else None
    plan = plan_for_task(
        task, identities, coalition_id=f"demo-{opts.task}-{opts.seed}", level=opts.level, seed=opts.seed,
        lam=opts.lam, committee_size=opts.committee_size, test_set_hash=data.test.digest(),
        revert_authorized=(names[0],), initial_model_hash=init_hash, timestamp_ms=T0_MS, max_drop=opts.max_drop,
        stopping=stopping, adaptive_lr=lr_policy, hyperparams=hp, turn_weights=turn_weights,
        **(vault.genesis_fields() if vault is not None else {}))
    config, genesis = plan.config, plan.genesis()

    timer = Timer()
    key = demo_data_key(opts.seed)
    registry = IdRegistry(test_ids=frozenset(dataset_ids(key, data.test)))
    evaluators: dict[str, Any] = {}
    trainers: dict[str, PartnerTrainer] = {}
    shared_g: OrderedDict[str, tuple[float, ...]] = OrderedDict()  # one process: validators share G scores
    for i, m in enumerate(names):
        # level C: L on each validator's own marked copy, G on the clean model (DemoVault.g_scores)
        inner = Evaluator(task, member_store(m), data.test,
                          shared_g=shared_g if vault is None else vault.g_scores(task, data.test, shared_g),
                          share_candidates=vault is None)
        evaluators[m] = DuplicateCheckingEvaluator(inner, registry, timer)
        trainers[m] = PartnerTrainer(
            m, task, DataPool(data.partners[i], key), inner, member_store(m), hp, seed=opts.seed * 1000 + i,
            registry=registry, timer=timer, key=key, attack=opts.attack if m in malicious else None,
            n_partners=opts.partners, n_malicious=opts.malicious,
            self_check_floor=config.floor if opts.self_check else None)
    if opts.collude:
        malicious_models: set[str] = set()
        for m in malicious:  # the colluders share what they propose
            trainers[m].malicious_models = malicious_models
            evaluators[m] = CollusiveEvaluator(evaluators[m], malicious_models)

    out = Path(opts.out)
    nodes_dir = out / "nodes"
    if nodes_dir.exists():
        shutil.rmtree(nodes_dir)
    nodes_dir.mkdir(parents=True, exist_ok=True)
    # simulated members on one disk: their chains are not fsynced on every append (SQLiteChainStore's `durable`)
    chain_stores = {m: SQLiteChainStore(nodes_dir / f"{m}.db", durable=False) for m in names}
    honest = [m for m in names if m not in malicious]
    observer = honest[0]
    # the report's head scores: at level A the G scores the validators computed (shared_g) are reused, since
    # scoring every head again on G was pure reporting overhead inside the timed run (bit-identical scores)
    head_score = Evaluator(task, store, data.test, shared_g=shared_g if vault is None else None)
    records: list[BlockRecord] = []
    tracker = Progress()
    tracker.observe(genesis)
    stop: dict[str, Any] = {}  # height and reason once the stopping rule fires
    lr_asked: dict[str, int] = {}  # "at": Progress.last_hyperparams when the policy last asked
    coalition: SimCoalition | None = None
    journal = None if vault is None else (vault.root / "journal.jsonl", vault.identity.public_key)
    exported = watch(observer, chain_stores, journal) if watch is not None else None

    def on_commit(member: str, block: Block) -> None:
        if member != observer:
            return
        if block.kind == "increment":
            registry.accept(block)
        tracker.observe(block)
        rec = timer.timed("reporting", _block_record, block, head_score, malicious)
        rec.elapsed_s = time.perf_counter() - t_start
        records.append(rec)
        if progress is not None:
            progress(block.index, block, rec.head_score)
        if stopping is not None and not stop and tracker.converged(stopping):
            stop.update(height=block.index, reason=(
                f"converged: no accepted increment raised G by more than {stopping.min_delta:g} "
                f"in the last {stopping.patience} accepted increments"))
        if lr_policy is not None and not stop and coalition is not None:
            ask = tracker.next_hyperparams(lr_policy)
            if ask is not None and lr_asked.get("at") != tracker.last_hyperparams:
                lr_asked["at"] = tracker.last_hyperparams  # once per stall: the block resets it
                driver = coalition.drivers.get(observer)
                if driver is not None:
                    driver.request_hyperparams(ask)

    coalition = SimCoalition(
        genesis, identities, evaluators=evaluators, trainers=trainers,
        params=ConsensusParams(), rng=random.Random(opts.seed), stores=chain_stores, on_commit=on_commit,
        meter=timer,  # signing, signature checks and chain appends report to the timer (nothing patched)
    )
    if vault is not None:
        vault.follow_clock(coalition.clock.now_ms)
    initial = head_score.global_score(init_hash)
    t_loop = time.perf_counter()
    before = sum(timer.totals.values())
    max_ticks = 400 * opts.rounds
    coalition.run_until(opts.rounds, max_ticks=max_ticks, members=honest, stop=lambda: bool(stop))
    if stop:  # let every honest member commit the height the rule fired at, so the chains agree
        coalition.run_until(stop["height"], max_ticks=400, members=honest)
    loop_s = time.perf_counter() - t_loop
    phases_in_loop = sum(timer.totals.values()) - before

    chain = coalition.chain(observer)
    if stop:
        chain = chain[: stop["height"] + 1]
    t0 = time.perf_counter()
    verify_chain(chain, certificate_check=check_certificate)
    verify_s = time.perf_counter() - t0
    export_chain(chain, out / "chain.db")
    if exported is not None:
        exported(out / "chain.db")  # the dashboard moves to the exported chain before the stores close
    for s in chain_stores.values():
        s.close()
    records = [r for r in records if r.index < len(chain)]

    final_hash = chain[-1].model_hash
    if vault is None:  # level A: the coalition's model is public; at B and C it stays in the vault
        atomic_write(out / MODEL_FILE, store.get(final_hash))
    else:
        (out / MODEL_FILE).unlink(missing_ok=True)  # an earlier level-A run's, not this coalition's
    run = RunRecord(task=task.name, metric=task.metric_name, partners=opts.partners, rounds=opts.rounds,
                    committee=opts.committee_size, lam=opts.lam, seed=opts.seed, blocks=records,
                    initial_score=initial, final_score=head_score.global_score(final_hash), malicious=malicious,
                    attack=opts.attack if malicious else None, chain_verified=True)
    run.extra["colluding"] = bool(opts.collude)
    run.extra["max_drop"] = config.floor
    checks = [c for t in trainers.values() for c in t.self_checks]
    run.extra["self_check"] = {"enabled": bool(opts.self_check), "proposals_checked": len(checks),
                               "shortened": sum(c.factor < 1.0 for c in checks),
                               "still_over_floor": sum(not c.within_floor for c in checks)}
    if stop:
        run.extra["stopped_because"] = stop["reason"]
    elif len(chain) - 1 >= opts.rounds:
        run.extra["stopped_because"] = f"round cap: {opts.rounds} rounds committed (--rounds) before converging"
    else:
        run.extra["stopped_because"] = (f"stalled: committed {len(chain) - 1} of {opts.rounds} rounds before the "
                                        f"tick limit (no partner could fill a batch, or no quorum)")
    run.extra["stopping_rule"] = None if stopping is None else stopping.to_dict()
    run.extra["adaptive_lr"] = None if lr_policy is None else lr_policy.to_dict()
    run.extra["turn_weights"] = turn_weights  # None: equal turns
    run.extra["hyperparams_blocks"] = [{"index": b.index, **dict(b.payload.get("hyperparams", {}))}
                                       for b in chain if b.kind == "hyperparams"]
    run.extra["data_ids"] = _contribution_summary(chain, registry)
    if opts.centralized:
        _centralized_reference(run, task, data, hp, chain, opts, note)
    if task.name in ("bladder", "nifti"):
        run.slice_example = _slice_example(task, store.get_state(final_hash), data.test)
    other = max(0.0, loop_s - phases_in_loop)  # the protocol's own work: messages, votes, checks
    run.timings_s = {
        "training": timer.totals.get("training", 0.0),
        "evaluation": timer.totals.get("evaluation", 0.0),
        "consensus": other,
        "crypto": timer.totals.get("crypto", 0.0),
        "storage": timer.totals.get("storage", 0.0) + timer.totals.get("chain_storage", 0.0),
        "final_verification": verify_s,
    }
    run.extra["coalition_time_s"] = loop_s
    run.extra["data_ready_s"] = data_ready_s  # of each block's elapsed_s, the part spent loading the task and data
    run.extra["rounds_used"] = coalition.rounds()
    stats = coalition.network.stats
    run.extra["messages"] = {"sent": stats.sent, "delivered": stats.delivered, "bytes": stats.bytes}
    run.extra["evidence"] = len(coalition.evidence)
    run.extra["violations"] = list(coalition.monitor.violations)
    run.extra["level"] = opts.level
    if vault is not None:
        run.extra["vault"] = vault.summary()
        run.extra["vault"]["anchors_in_chain"] = len(chain_anchors(chain))
        run.extra["vault"]["flagged_votes"] = sum(len(b.payload.get("flagged", [])) for b in chain)
        vault.close()
    run.wall_time_s = time.perf_counter() - t_start
    return run


def _contribution_summary(chain: list[Block], registry: IdRegistry) -> dict[str, Any]:
    """What the data ids say about the run: samples counted, re-used, refused (with the ids named)."""
    new = reused = 0
    for b in chain:
        if b.kind == "increment":
            p = b.payload["proposal"]
            new += int(p["sample_count"])
            reused += int(p.get("reused_count", 0))
    return {"contributed": new, "reused": reused, "spent_ids": len(registry.spent),
            "refusals": list(registry.refusals)}


def _centralized_reference(run: RunRecord, task: Any, data: Any, hp: Any, chain: list[Block], opts: DemoOptions,
                           note: Callable[[str], None] | None) -> None:
    """The converged centralised reference (`centralized_score`) and the equal-budget one beside it."""
    if note is not None:
        note("training the centralised reference to convergence (early stopping on a validation split)")
    central = train_centralized_converged(task, data.pooled, data.test, hp, seed=opts.seed, model_seed=opts.seed,
                                          learning_rates=task.centralized_learning_rates, threads=1, progress=note)
    run.centralized_score = central.score
    run.extra["centralized"] = {"score": central.score, "validation_score": central.val_score,
                                "learning_rate": central.learning_rate, "epochs": central.epochs,
                                "best_epoch": central.best_epoch, "time_s": central.seconds,
                                "search_time_s": central.total_seconds, "tried": central.tried,
                                "curve": [[round(t, 3), round(v, 6), round(g, 6)] for t, v, g in central.history]}
    if not opts.equal_budget:
        return
    trained = sum(Proposal.from_dict(b.payload["proposal"]).trained_count for b in chain if b.kind == "increment")
    passes = coalition_passes(max(trained, 1), hp.epochs, len(data.pooled))
    t0 = time.perf_counter()
    budget = train_centralized(task, data.pooled, data.test, hp, passes=passes, seed=opts.seed,
                               model_seed=opts.seed, threads=1)
    run.extra["centralized_equal_budget_score"] = budget.score
    run.extra["centralized_passes"] = passes
    run.extra["centralized_time_s"] = time.perf_counter() - t0


def export_chain(chain: list[Block], path: Path) -> None:
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            p.unlink()
    st = SQLiteChainStore(path)
    for b in chain:
        st.append(b)
    st.close()


def _block_record(block: Block, ev: Evaluator, malicious: list[str]) -> BlockRecord:
    rec = BlockRecord(index=block.index, kind=block.kind, contributor=block.contributor,
                      head_score=ev.global_score(block.model_hash), strengths=dict(block.strengths),
                      malicious=block.contributor in malicious, block_hash=block.block_hash,
                      timestamp=block.timestamp)
    if block.kind in ("increment", "rejected"):
        prop = Proposal.from_dict(block.payload["proposal"])
        rec.score_old = ev.global_score(prop.parent_model_hash)
        try:
            rec.score_new = ev.global_score(prop.model_hash)
        except Exception:  # an invalid candidate has no score
            rec.score_new = None
        rec.votes_accept = sum(1 for v in block.quality_votes if v.accept)
        rec.votes_reject = sum(1 for v in block.quality_votes if not v.accept)
    return rec


def _slice_example(task: Any, state: Any, test: Any) -> SliceExample:
    model = task.model_from_state(state)
    model.eval()
    x, y = test.x[:1], test.y[:1]
    with deterministic_mode(), torch.no_grad():
        pred = task.predict(model(x)).reshape(y.shape)
    mask = y[0, 0].numpy()
    k = int(np.argmax(mask.sum(axis=(1, 2))))
    return SliceExample(image=x[0, 0, k].numpy(), true_mask=mask[k] > 0, predicted_mask=pred[0, 0, k].numpy() > 0.5,
                        slice_index=k)
