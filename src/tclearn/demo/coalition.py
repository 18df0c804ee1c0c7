"""A whole level-A coalition in one process, with real models: the demo's engine.

Partners are `MemberDriver`s (the production driver and consensus core) on the
simulator's network and virtual clock, so the same seed gives the same chain
byte for byte; training and evaluation are real (`tclearn.learning`), the
chain of every member is stored in SQLite, and the models live in one
content-addressed store (level A: public models, every node serves them).
Members' keys are derived from the seed — for the demo only.
"""

from __future__ import annotations

import math
import random
import shutil
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
from tclearn.errors import ConfigError
from tclearn.identity import Identity
from tclearn.learning import Evaluator, MemoryModelStore, coalition_passes, get_task, model_hash, train_centralized
from tclearn.learning.evaluate import deterministic_mode
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig, MemberInfo, build_genesis
from tclearn.ledger.records import Proposal
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.verify import verify_chain
from tclearn.sim import SimCoalition

__all__ = ["DemoOptions", "run_coalition", "ATTACKS", "T0_MS"]

ATTACKS = DATA_ATTACKS[:3] + MODEL_ATTACKS + ("replay",)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the virtual clock's start


@dataclass
class DemoOptions:
    task: str = "bladder"
    partners: int = 4
    rounds: int = 24
    committee: int = 3
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
    task_options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.partners < 2:
            raise ConfigError("--partners must be at least 2")
        if not 1 <= self.committee <= self.partners - 1:
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


def _member_names(n: int) -> list[str]:
    return [f"hospital-{chr(ord('a') + i)}" if n <= 26 else f"hospital-{i:02d}" for i in range(n)]


def _coalition_data(task: Any, opts: DemoOptions) -> Any:
    hp = task.default_hyperparams
    kwargs: dict[str, Any] = {}
    if opts.task == "bladder":
        need = math.ceil(opts.rounds / opts.partners) + 2
        kwargs["per_partner"] = max(24, need * hp.effective_batch_size)
    elif opts.task == "digits" and opts.split != "iid":
        kwargs["mode"] = "label_skew"
    elif opts.task == "nifti" and opts.split != "iid":
        kwargs["mode"] = "size_skew"
    return task.coalition_data(opts.partners, seed=opts.seed, **kwargs)


def run_coalition(opts: DemoOptions, progress: Callable[[int, Block, float], None] | None = None) -> RunRecord:
    """Run the coalition until `opts.rounds` blocks are committed; return the record (and write chain.db)."""
    opts.check()
    torch.set_num_threads(1)
    t_start = time.perf_counter()
    task = get_task(opts.task, **opts.task_options)
    data = _coalition_data(task, opts)
    hp = task.default_hyperparams
    names = _member_names(opts.partners)
    rng = random.Random(opts.seed)
    malicious = sorted(rng.sample(names[1:], opts.malicious)) if opts.malicious else []
    identities = [Identity.from_seed(m, f"tclearn-demo-{opts.seed}".encode()) for m in names]
    store = MemoryModelStore()
    init_hash = store.put_state(task.initial_state(opts.seed))
    config = GenesisConfig(
        coalition_id=f"demo-{opts.task}-{opts.seed}", level="A",
        members=tuple(MemberInfo(i.member_id, i.public_key) for i in identities),
        task=task.name, architecture=task.architecture, model_config=dict(task.config), model_seed=opts.seed,
        hyperparams=hp.genesis_dict(), lam=float(opts.lam), committee_size=opts.committee,
        test_set_hash=data.test.digest(), founder=names[0], revert_authorized=(names[0],), max_drop=opts.max_drop,
    )
    genesis = build_genesis(config, init_hash, identities[0], T0_MS)

    timer = Timer()
    registry = IdRegistry()
    roots: dict[str, str] = {}
    key = f"tclearn-demo-data-ids-{opts.seed}".encode().ljust(16, b"\0")
    evaluators: dict[str, Any] = {}
    trainers: dict[str, PartnerTrainer] = {}
    for i, m in enumerate(names):
        inner = Evaluator(task, store, data.test)
        evaluators[m] = DuplicateCheckingEvaluator(inner, registry, roots, timer)
        trainers[m] = PartnerTrainer(
            m, task, DataPool(data.partners[i], key), inner, store, hp, seed=opts.seed * 1000 + i,
            registry=registry, roots=roots, timer=timer, key=key, attack=opts.attack if m in malicious else None,
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
    chain_stores = {m: SQLiteChainStore(nodes_dir / f"{m}.db") for m in names}
    honest = [m for m in names if m not in malicious]
    observer = honest[0]
    head_score = Evaluator(task, store, data.test)
    records: list[BlockRecord] = []

    def on_commit(member: str, block: Block) -> None:
        if member != observer:
            return
        if block.kind == "increment":
            registry.accept(block.data_ids_root)
        records.append(timer.timed("reporting", _block_record, block, head_score, malicious, roots))
        if progress is not None:
            progress(block.index, block, records[-1].head_score)

    coalition = SimCoalition(
        genesis, identities, evaluators=evaluators, trainers=trainers,
        params=ConsensusParams(), rng=random.Random(opts.seed), stores=chain_stores, on_commit=on_commit,
    )
    _time_crypto_and_storage(coalition, identities, chain_stores, timer)
    initial = head_score.global_score(init_hash)
    t_loop = time.perf_counter()
    before = sum(timer.totals.values())
    max_ticks = 400 * opts.rounds
    coalition.run_until(opts.rounds, max_ticks=max_ticks, members=honest)
    loop_s = time.perf_counter() - t_loop
    phases_in_loop = sum(timer.totals.values()) - before

    chain = coalition.chain(observer)
    t0 = time.perf_counter()
    verify_chain(chain, certificate_check=check_certificate)
    verify_s = time.perf_counter() - t0
    _export_chain(chain, out / "chain.db")
    for s in chain_stores.values():
        s.close()

    final_hash = chain[-1].model_hash
    run = RunRecord(task=task.name, metric=task.metric_name, partners=opts.partners, rounds=opts.rounds,
                    committee=opts.committee, lam=opts.lam, seed=opts.seed, blocks=records, initial_score=initial,
                    final_score=head_score.global_score(final_hash), malicious=malicious,
                    attack=opts.attack if malicious else None, chain_verified=True)
    run.extra["colluding"] = bool(opts.collude)
    run.extra["max_drop"] = config.floor
    checks = [c for t in trainers.values() for c in t.self_checks]
    run.extra["self_check"] = {"enabled": bool(opts.self_check), "proposals_checked": len(checks),
                               "shortened": sum(c.factor < 1.0 for c in checks),
                               "still_over_floor": sum(not c.within_floor for c in checks)}
    if len(chain) - 1 < opts.rounds:
        run.extra["stopped_early"] = (f"committed {len(chain) - 1} of {opts.rounds} rounds: the partners' "
                                      f"unused data ran out or the run hit its tick limit")
    if opts.centralized:
        trained = sum(int(b.payload["proposal"]["sample_count"]) for b in chain if b.kind == "increment")
        passes = coalition_passes(max(trained, 1), hp.epochs, len(data.pooled))
        t0 = time.perf_counter()
        central = train_centralized(task, data.pooled, data.test, hp, passes=passes, seed=opts.seed,
                                    model_seed=opts.seed, threads=1)
        run.centralized_score = central.score
        run.extra["centralized_passes"] = passes
        run.extra["centralized_time_s"] = time.perf_counter() - t0
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
    run.extra["rounds_used"] = coalition.rounds()
    stats = coalition.network.stats
    run.extra["messages"] = {"sent": stats.sent, "delivered": stats.delivered, "bytes": stats.bytes}
    run.extra["evidence"] = len(coalition.evidence)
    run.extra["violations"] = list(coalition.monitor.violations)
    run.wall_time_s = time.perf_counter() - t_start
    return run


def _time_crypto_and_storage(coalition: SimCoalition, identities: list[Identity], stores: dict[str, Any],
                             timer: Timer) -> None:
    """Count signature checks, signings and chain appends apart from the rest of consensus."""
    verifier = coalition.verifier
    if verifier is not None:
        inner_verify = verifier.verify
        verifier.verify = lambda *a: timer.timed("crypto", inner_verify, *a)  # type: ignore[method-assign]
    for ident in identities:
        inner_sign = ident.sign
        object.__setattr__(ident, "sign", lambda msg, f=inner_sign: timer.timed("crypto", f, msg))
    for st in stores.values():
        inner_append = st.append
        st.append = lambda block, f=inner_append: timer.timed("chain_storage", f, block)


def _export_chain(chain: list[Block], path: Path) -> None:
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


def _block_record(block: Block, ev: Evaluator, malicious: list[str], roots: dict[str, str]) -> BlockRecord:
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
