"""A node's trainer: the self-check on G before it proposes (`node.self_check`)."""

from __future__ import annotations

from pathlib import Path

from tclearn.data import DataPool
from tclearn.data.accounting import BatchIds, SpentIds, check_batch_ids
from tclearn.learning import DirectoryModelStore, Evaluator, get_task, train_increment
from tclearn.node.trainer import NodeTrainer

KEY = b"node-trainer-test-key-0123456789"


def _trainer(tmp: Path, floor: float | None, spent: SpentIds | None = None,
             ) -> tuple[NodeTrainer, DirectoryModelStore, str, list[dict]]:
    task = get_task("digits")
    data = task.coalition_data(3, seed=0, test_size=200)
    head = task.initial_state(0)
    pools = [DataPool(p, KEY) for p in data.partners]
    for r in range(6):  # a head that has learnt all ten classes
        res = train_increment(task, head, pools[r % 3], task.default_hyperparams.updated({"batch_size": 96}), seed=r, threads=1)
        pools[r % 3].hold_out(res.local_test_ids)
        pools[r % 3].mark_contributed(res.new_ids)
        head = res.candidate
    pooled = data.pooled  # a hospital that only sees three of the ten classes
    skewed = DataPool(pooled.subset([i for i in range(len(pooled)) if int(pooled.y[i]) in (0, 1, 2)]), KEY)
    store = DirectoryModelStore(tmp / "models")
    parent = store.put_state(head)
    events: list[dict] = []
    trainer = NodeTrainer(task, skewed, Evaluator(task, store, data.test), store, task.default_hyperparams.updated({"batch_size": 96}), 7,
                          tmp / "trained.json", log=lambda event, **kw: events.append({"event": event, **kw}),
                          self_check_floor=floor, spent=SpentIds() if spent is None else spent)
    return trainer, store, parent, events


def test_a_node_shortens_an_increment_its_floor_would_refuse(tmp_path: Path) -> None:
    trainer, store, parent, events = _trainer(tmp_path / "on", 0.01)
    cand = trainer.train(parent, height=1)
    assert cand is not None
    trained = [e for e in events if e["event"] == "trained"]
    assert trained and trained[0]["step"] < 1.0 and trained[0]["model"] == cand.model_hash
    g_old = trainer.evaluator.global_score(parent)
    assert g_old - trainer.evaluator.global_score(cand.model_hash) <= 0.01 + 1e-9

    off, _, parent_off, events_off = _trainer(tmp_path / "off", None)
    full = off.train(parent_off, height=1)
    assert full is not None and [e["step"] for e in events_off if e["event"] == "trained"] == [1.0]
    assert full.model_hash != cand.model_hash and full.data_ids_root == cand.data_ids_root
    assert g_old - off.evaluator.global_score(full.model_hash) > 0.01  # what the check kept from the committee


def test_a_node_keeps_training_on_contributed_samples_and_passes_once_converged(tmp_path: Path) -> None:
    spent = SpentIds()
    batches: dict[str, BatchIds] = {}
    trainer, store, parent, events = _trainer(tmp_path / "t", None, spent)
    trainer.on_batch = lambda h, new, reused: batches.__setitem__(h, BatchIds(new, reused))
    n = len(trainer.pool)
    rounds = []
    for h in range(1, 2 + n // 96):  # more turns than one pass over its data allows, each one accepted
        c = trainer.train(parent, height=h)
        assert c is not None
        rounds.append(c)
        spent.accept(batches[c.model_hash].new)  # the node's registry counts a committed increment's new ids
        trainer.contributed(batches[c.model_hash].new)
    assert rounds[0].reused_count == 0 and rounds[-1].reused_count > 0 and rounds[-1].sample_count < 96
    assert sum(c.sample_count for c in rounds) <= n  # a sample is claimed as new once
    # a crash-restart: held-out local tests stay out of training; contributions come from the chain's registry
    again, _, _, _ = _trainer(tmp_path / "t", None, spent)
    assert again.pool.held_out == trainer.pool.held_out
    nxt = again.train(parent, height=50)
    assert nxt is not None and nxt.sample_count == 0 and nxt.reused_count > 0
    trainer.converged = lambda: True
    assert trainer.train(parent, height=99) is None
    assert events[-1] == {"event": "turn_passed", "height": 99, "reason": "converged: the genesis stopping rule says so"}


def test_a_rejected_proposal_leaves_its_samples_fresh_and_another_members_samples_are_reused(tmp_path: Path) -> None:
    """Ids count as contributed only when an accepted increment carrying them is committed.

    The bug this pins: the trainer marked a batch's new ids contributed when it
    proposed; after a rejection it listed them as re-used, which validators
    refuse ("listed as re-used but was never contributed").
    """
    spent = SpentIds()
    batches: dict[str, BatchIds] = {}
    trainer, _, parent, _ = _trainer(tmp_path, None, spent)
    trainer.on_batch = lambda h, new, reused: batches.__setitem__(h, BatchIds(new, reused))
    pool = trainer.pool
    # another member contributed (an accepted increment) two samples this hospital also holds
    theirs = pool.ids[:2]
    spent.accept(theirs)
    first = trainer.train(parent, height=1)
    assert first is not None  # ...and the committee rejects it: nothing is counted
    claimed = set(batches[first.model_hash].new)
    assert not claimed & set(theirs) and pool.contributed == frozenset()
    def check(c: object) -> None:
        ids = batches[c.model_hash]  # type: ignore[attr-defined]
        check_batch_ids(ids, sample_count=c.sample_count, data_ids_root=c.data_ids_root,  # type: ignore[attr-defined]
                        reused_count=c.reused_count, reused_ids_root=c.reused_ids_root,  # type: ignore[attr-defined]
                        spent=spent)
    check(first)
    rounds = [trainer.train(parent, height=h) for h in range(2, 2 + len(pool) // 96)]
    for c in rounds:  # every later batch passes the validators' check against the registry
        assert c is not None
        check(c)
        assert not set(batches[c.model_hash].reused) - set(theirs)  # re-used: only what was counted (theirs)
    # the rejected batch's samples were claimed as new again, never listed as re-used
    again = set().union(*(batches[c.model_hash].new for c in rounds))
    assert claimed & again
    # the next one is accepted and committed: from then on its new ids are contributions, re-used after
    last = rounds[-1]
    spent.accept(batches[last.model_hash].new)
    trainer.contributed(batches[last.model_hash].new)
    assert pool.contributed == frozenset(batches[last.model_hash].new)
    nxt = trainer.train(parent, height=99)
    assert nxt is not None
    check(nxt)
    assert not set(batches[nxt.model_hash].new) & set(batches[last.model_hash].new)
