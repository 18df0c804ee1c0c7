"""A partner's check on G before it proposes (`tclearn.learning.backtrack_to_floor`)."""

from __future__ import annotations

import pytest

from tclearn.data import CoalitionData, DataPool
from tclearn.learning import (
    Task,
    apply_increment,
    backtrack_to_floor,
    evaluate_state,
    increment_hash,
    mean_score,
    model_hash,
    states_equal,
    train_increment,
)
from tclearn.quality import g_floor_broken


def _hp(task: Task):
    # the scenarios below (a skewed increment over the floor that a half or quarter step brings back) were
    # built at Adam 1e-3; the self-check does not depend on the rate, so they keep it
    return task.default_hyperparams.updated({"batch_size": 96, "learning_rate": 0.001})


@pytest.fixture(scope="module")
def trained_head(digits_task: Task, digits_data: CoalitionData, id_key: bytes):
    head = digits_task.initial_state(0)
    pools = [DataPool(p, id_key) for p in digits_data.partners]
    for r in range(6):
        res = train_increment(digits_task, head, pools[r % 3], _hp(digits_task), seed=r, threads=1)
        pools[r % 3].hold_out(res.local_test_ids)
        pools[r % 3].mark_contributed(res.new_ids)
        head = res.candidate
    return head


def _skewed(digits_data: CoalitionData, id_key: bytes) -> DataPool:
    pooled = digits_data.pooled  # a hospital that only sees three of the ten classes
    return DataPool(pooled.subset([i for i in range(len(pooled)) if int(pooled.y[i]) in (0, 1, 2)]), id_key)


def test_an_increment_within_the_floor_is_proposed_as_trained(
        digits_task: Task, digits_data: CoalitionData, id_key: bytes, trained_head) -> None:
    res = train_increment(digits_task, trained_head, DataPool(digits_data.partners[0], id_key),
                          _hp(digits_task), seed=11, threads=1)
    out, check = backtrack_to_floor(digits_task, trained_head, res, digits_data.test, 0.05)
    assert out is res and check.factor == 1.0 and check.tried == 1 and check.within_floor


def test_an_increment_over_the_floor_is_shortened_until_g_holds(
        digits_task: Task, digits_data: CoalitionData, id_key: bytes, trained_head) -> None:
    res = train_increment(digits_task, trained_head, _skewed(digits_data, id_key), _hp(digits_task),
                          seed=7, threads=1)
    g_old = mean_score(evaluate_state(digits_task, trained_head, digits_data.test))
    assert g_floor_broken(g_old, mean_score(evaluate_state(digits_task, res.candidate, digits_data.test)), 0.01)
    scored: list[str] = []

    def g_scores(state, state_hash: str):  # as Evaluator.candidate_g_scores: handed each candidate with its hash
        assert state_hash == model_hash(state)
        scored.append(state_hash)
        return evaluate_state(digits_task, state, digits_data.test)

    out, check = backtrack_to_floor(digits_task, trained_head, res, digits_data.test, 0.01, g_old=g_old,
                                    g_scores=g_scores)
    assert check.within_floor and check.factor < 1.0 and check.g_old == g_old
    assert scored[0] == res.model_hash and scored[-1] == out.model_hash and len(scored) == check.tried
    g_new = mean_score(evaluate_state(digits_task, out.candidate, digits_data.test))
    assert g_new == check.g_proposed and not g_floor_broken(g_old, g_new, 0.01)
    # a consistent proposal: candidate = head + increment, hashes of both, the same batch and sample count
    assert states_equal(apply_increment(trained_head, out.increment), out.candidate)
    assert out.model_hash == model_hash(out.candidate) and out.increment_hash == increment_hash(out.increment)
    assert out.model_hash != res.model_hash
    assert out.data_ids == res.data_ids and out.sample_count == res.sample_count


def test_when_no_step_holds_the_full_increment_goes_to_the_committee(
        digits_task: Task, digits_data: CoalitionData, id_key: bytes, trained_head) -> None:
    plain = _hp(digits_task).updated({"distill": 0.0, "logit_adjust": False})
    res = train_increment(digits_task, trained_head, _skewed(digits_data, id_key), plain, seed=7, threads=1)
    out, check = backtrack_to_floor(digits_task, trained_head, res, digits_data.test, 0.01)
    assert out is res and not check.within_floor and check.factor == 1.0 and check.tried == 3
    with pytest.raises(ValueError):
        backtrack_to_floor(digits_task, trained_head, res, digits_data.test, 0.01, factors=(1.5,))
