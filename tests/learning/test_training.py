"""Hyper-parameters, the partner's training step, and the centralised baseline."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import torch

from tclearn.data import CoalitionData, DataPool, Dataset, merkle_root
from tclearn.errors import DataError, LearningError
from tclearn.learning import (
    HyperParams,
    Task,
    apply_increment,
    coalition_passes,
    evaluate_state,
    fit,
    mean_score,
    model_hash,
    states_equal,
    train_centralized,
    train_centralized_converged,
    train_increment,
)
from tclearn.learning.evaluate import torch_threads


def test_hyperparams() -> None:
    hp = HyperParams(learning_rate=0.1, min_batch_size=8, batch_size=10)
    assert hp.effective_batch_size == 10
    assert hp.genesis_dict() == {"learning_rate": 0.1, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8}
    raised = hp.updated({"min_batch_size": 16, "learning_rate": 0.05})
    assert raised.effective_batch_size == 16 and raised.learning_rate == 0.05
    for bad in ({"optimizer": "rmsprop"}, {"learning_rate": 0.0}, {"epochs": 0}, {"local_test_share": 1.0}):
        with pytest.raises(LearningError):
            hp.updated(bad)
    with pytest.raises(LearningError, match="unknown"):
        hp.updated({"momentun": 0.5})
    with pytest.raises(LearningError):
        HyperParams(learning_rate=0.1, min_batch_size=8, batch_size=4)


def test_train_increment_result(digits_task: Task, digits_data: CoalitionData, id_key: bytes) -> None:
    pool = DataPool(digits_data.partners[0], id_key)
    head = digits_task.initial_state(0)
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    res = train_increment(digits_task, head, pool, hp, seed=1, threads=1)
    n = hp.effective_batch_size
    n_test = round(hp.local_test_share * n)
    assert res.sample_count == n - n_test and len(res.local_test) == len(res.local_test_ids) == n_test
    assert len(set(res.data_ids)) == n and set(res.data_ids) <= set(pool.ids)
    assert res.data_ids_root == merkle_root(res.new_ids) and res.reused_count == 0
    assert res.model_hash == model_hash(res.candidate) != model_hash(head)
    assert states_equal(apply_increment(head, res.increment), res.candidate)
    assert pool.contributed == frozenset()  # the caller decides when the batch counts
    again = train_increment(digits_task, head, pool, hp, seed=1, threads=1)
    assert again.data_ids == res.data_ids  # the draw follows the seed
    pool.hold_out(res.local_test_ids)
    pool.mark_contributed(res.new_ids)
    other = train_increment(digits_task, head, pool, hp, seed=1, threads=1)
    assert not set(other.new_ids) & set(res.data_ids)  # fresh samples first, never the local-test share
    assert not set(other.data_ids) & set(res.local_test_ids)


def test_pool_exhaustion_and_minimum_batch(digits_task: Task, digits_data: CoalitionData, id_key: bytes) -> None:
    small = DataPool(digits_data.partners[0].subset(range(20)), id_key)
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    with pytest.raises(DataError, match="trainable"):
        train_increment(digits_task, digits_task.initial_state(0), small, hp, seed=0, threads=1)


def test_short_training_improves_digits_accuracy(digits_task: Task, digits_data: CoalitionData, id_key: bytes) -> None:
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    head = digits_task.initial_state(0)
    before = mean_score(evaluate_state(digits_task, head, digits_data.test))
    pools = [DataPool(p, id_key) for p in digits_data.partners]
    for r in range(6):
        pool = pools[r % len(pools)]
        res = train_increment(digits_task, head, pool, hp, seed=r, threads=1)
        pool.hold_out(res.local_test_ids)
        pool.mark_contributed(res.new_ids)
        head = res.candidate
    after = mean_score(evaluate_state(digits_task, head, digits_data.test))
    assert before < 0.3 and after > 0.75, (before, after)


def test_bladder_increment_runs(bladder_task: Task, phantoms: Dataset, id_key: bytes) -> None:
    hp = bladder_task.default_hyperparams.updated({"min_batch_size": 4, "batch_size": 4, "epochs": 1,
                                                   "local_test_share": 0.25})
    pool = DataPool(phantoms, id_key)
    res = train_increment(bladder_task, bladder_task.initial_state(0), pool, hp, seed=0, threads=1)
    assert res.sample_count == 3 and len(res.local_test) == 1
    assert all(torch.isfinite(v).all() for v in res.candidate.values())


def test_centralized_baseline(digits_task: Task, digits_data: CoalitionData) -> None:
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    res = train_centralized(digits_task, digits_data.pooled, digits_data.test, hp, passes=2, seed=0, threads=1)
    assert len(res.history) == 2 and res.score == res.history[-1] > 0.8
    assert coalition_passes(samples_trained=1000, local_epochs=2, pooled_size=1500) == 1
    assert coalition_passes(samples_trained=3000, local_epochs=2, pooled_size=1500) == 4
    with pytest.raises(LearningError):
        train_centralized(digits_task, digits_data.pooled, digits_data.test, hp, passes=0, seed=0, threads=1)


def test_the_converged_reference_chooses_on_validation_never_on_g(digits_task: Task,
                                                                   digits_data: CoalitionData) -> None:
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    kw = dict(seed=0, learning_rates=(0.027, 0.001), patience=2, max_epochs=4, threads=1)
    res = train_centralized_converged(digits_task, digits_data.pooled, digits_data.test, hp, **kw)
    assert set(res.tried) == {repr(0.027), repr(0.001)} and res.val_score == max(res.tried.values())
    assert res.tried[repr(res.learning_rate)] == res.val_score and res.val_loss > 0
    assert len(res.history) == res.epochs and 1 <= res.best_epoch <= res.epochs <= 4
    shuffled = Dataset(digits_data.test.x, digits_data.test.y.roll(1))  # another G: same choice, same weights
    again = train_centralized_converged(digits_task, digits_data.pooled, shuffled, hp, **kw)
    assert (again.learning_rate, again.val_score, again.val_loss) == (res.learning_rate, res.val_score, res.val_loss)
    assert states_equal(again.state, res.state) and again.score != res.score


def test_distillation_and_logit_adjustment_keep_a_label_skewed_increment_from_forgetting(
        digits_task: Task, digits_data: CoalitionData, id_key: bytes) -> None:
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    assert hp.distill > 0 and hp.logit_adjust  # the digits defaults
    head = digits_task.initial_state(0)
    pools = [DataPool(p, id_key) for p in digits_data.partners]
    for r in range(6):
        res = train_increment(digits_task, head, pools[r % 3], hp, seed=r, threads=1)
        pools[r % 3].hold_out(res.local_test_ids)
        pools[r % 3].mark_contributed(res.new_ids)
        head = res.candidate
    before = mean_score(evaluate_state(digits_task, head, digits_data.test))
    # a hospital that only sees three of the ten classes
    pooled = digits_data.pooled
    skewed = pooled.subset([i for i in range(len(pooled)) if int(pooled.y[i]) in (0, 1, 2)])
    plain_hp = hp.updated({"distill": 0.0, "logit_adjust": False})
    drops = {}
    for name, h in (("plain", plain_hp), ("adjusted", hp)):
        res = train_increment(digits_task, head, DataPool(skewed, id_key), h, seed=7, threads=1)
        drops[name] = before - mean_score(evaluate_state(digits_task, res.candidate, digits_data.test))
    assert drops["plain"] > 0.1, drops  # plain training forgets the seven classes it does not see
    assert drops["adjusted"] < drops["plain"] / 3, drops


def _fit_teacher_every_step(task: Task, model: torch.nn.Module, data: Dataset, hp: HyperParams,
                            generator: torch.Generator) -> None:
    """`fit` as it was before the teacher's outputs were computed once: a teacher forward on every micro-batch."""
    opt = torch.optim.Adam(model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    prior = task.label_prior(data)
    assert prior is not None
    shift = torch.log(prior.to(torch.float32) + 1e-3)
    teacher = copy.deepcopy(model).eval()
    model.train()
    for _ in range(hp.epochs):
        order = torch.randperm(len(data), generator=generator)
        for start in range(0, len(data), hp.micro_batch_size):
            idx = order[start : start + hp.micro_batch_size]
            opt.zero_grad(set_to_none=True)
            out = model(data.x[idx])
            with torch.no_grad():
                t_out = teacher(data.x[idx])
            extra = task.distill_loss(out, t_out, data.y[idx])
            assert extra is not None
            loss = task.loss(out + shift, data.y[idx]) + hp.distill * extra
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()


@pytest.mark.parametrize("size", [96, 97, 111, 15])  # whole micro-batches, a short last one, one short batch only
def test_the_teacher_computed_once_gives_the_same_increment_bits(
        digits_task: Task, digits_data: CoalitionData, size: int) -> None:
    hp = digits_task.default_hyperparams.updated({"epochs": 2})
    data = digits_data.partners[0].subset(range(size))
    models = []
    with torch_threads(1):
        for train in (fit, _fit_teacher_every_step):
            model = digits_task.model_from_state(digits_task.initial_state(3))
            train(digits_task, model, data, hp, torch.Generator().manual_seed(5))
            models.append(model.state_dict())
    assert all(torch.equal(models[0][k], models[1][k]) for k in models[0])


def test_distill_loss_is_zero_for_the_head_itself(digits_task: Task) -> None:
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    target = torch.arange(8) % 10
    assert float(digits_task.distill_loss(logits, logits, target)) == pytest.approx(0.0, abs=1e-6)
    assert float(digits_task.distill_loss(logits, logits.flip(1), target)) > 0.0
    prior = digits_task.label_prior(Dataset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 0, 1, 3])))
    assert prior.tolist()[:4] == [0.5, 0.25, 0.0, 0.25] and float(prior.sum()) == 1.0
    with pytest.raises(LearningError):
        HyperParams(learning_rate=0.1, distill=-1.0)


def test_the_converged_references_clock_leaves_out_scoring_g(digits_task: Task, digits_data: CoalitionData,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """G is scored every epoch for the record only: its time must not slow the reference's curve down."""
    import tclearn.learning.centralized as centralized

    scored = centralized.evaluate_model

    def slow_on_g(task: Task, model: torch.nn.Module, data: Dataset) -> Any:
        if data is digits_data.test:
            time.sleep(0.3)
        return scored(task, model, data)

    monkeypatch.setattr(centralized, "evaluate_model", slow_on_g)
    hp = digits_task.default_hyperparams.updated({"batch_size": 96})
    res = train_centralized_converged(digits_task, digits_data.pooled, digits_data.test, hp, seed=0,
                                      learning_rates=(0.003,), patience=1, max_epochs=3, threads=1)
    assert len(res.history) >= 2
    assert res.history[-1][0] < res.seconds - 0.3 * len(res.history) + 0.05
