"""A node's trainer: the self-check on G before it proposes (`node.self_check`)."""

from __future__ import annotations

from pathlib import Path

from tclearn.data import DataPool
from tclearn.learning import DirectoryModelStore, Evaluator, get_task, train_increment
from tclearn.node.trainer import NodeTrainer

KEY = b"node-trainer-test-key-0123456789"


def _trainer(tmp: Path, floor: float | None) -> tuple[NodeTrainer, DirectoryModelStore, str, list[dict]]:
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
                          self_check_floor=floor)
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
    trainer, store, parent, events = _trainer(tmp_path / "t", None)
    n = len(trainer.pool)
    rounds = [trainer.train(parent, height=h) for h in range(1, 2 + n // 96)]
    assert all(c is not None for c in rounds)  # more turns than one pass over its data allows
    assert rounds[0].reused_count == 0 and rounds[-1].reused_count > 0 and rounds[-1].sample_count < 96
    assert sum(c.sample_count for c in rounds) <= n  # a sample is claimed as new once
    # the record of a crash-restart keeps both sets: held-out local tests stay out of training
    again, _, _, _ = _trainer(tmp_path / "t", None)
    assert again.pool.contributed == trainer.pool.contributed and again.pool.held_out == trainer.pool.held_out
    trainer.converged = lambda: True
    assert trainer.train(parent, height=99) is None
    assert events[-1] == {"event": "turn_passed", "height": 99, "reason": "converged: the genesis stopping rule says so"}
