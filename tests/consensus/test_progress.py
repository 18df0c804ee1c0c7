"""The stopping rule and the learning-rate policy, read off a chain (`tclearn.consensus.progress`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tclearn.consensus.progress import Progress
from tclearn.ledger.policies import LearningRatePolicy, StoppingRule


def _votes(g_old: float, g_new: float, n: int = 3) -> tuple:
    return tuple(SimpleNamespace(scores={"g_old": g_old, "g_new": g_new}, validator=f"v{i}") for i in range(n))


def _fold(kinds_and_scores: list, epochs: int = 3) -> Progress:
    p = Progress()
    p.observe(SimpleNamespace(kind="genesis", index=0, quality_votes=(),
                              payload={"config": {"hyperparams": {"learning_rate": 0.01, "epochs": epochs}}}))
    head = 0.5
    for i, item in enumerate(kinds_and_scores, 1):
        kind, value = item
        if kind == "increment":
            p.observe(SimpleNamespace(kind=kind, index=i, payload={}, quality_votes=_votes(head, value)))
            head = value
        elif kind == "rejected":
            p.observe(SimpleNamespace(kind=kind, index=i, payload={}, quality_votes=_votes(head, value)))
        else:  # hyperparams: a rate, or a dict of values
            hp = value if isinstance(value, dict) else {"learning_rate": value}
            p.observe(SimpleNamespace(kind=kind, index=i, payload={"hyperparams": hp}, quality_votes=()))
    return p


def test_converged_after_patience_accepted_increments_without_a_gain() -> None:
    rule = StoppingRule(patience=3)
    p = _fold([("increment", 0.6), ("increment", 0.7), ("increment", 0.69), ("increment", 0.7)])
    assert p.stalled_for(0.0) == 2 and not p.converged(rule)
    p = _fold([("increment", 0.6), ("increment", 0.7), ("increment", 0.69), ("increment", 0.7), ("increment", 0.65)])
    assert p.converged(rule) and p.head_score == 0.65 and p.best == 0.7


def test_refused_candidates_do_not_count_as_rounds() -> None:
    # an attacker whose candidates are all refused cannot end the training early
    p = _fold([("increment", 0.7)] + [("rejected", 0.1)] * 20)
    assert p.stalled_for(0.0) == 0 and not p.converged(StoppingRule(patience=1))


def test_min_delta_small_gains_add_up_until_one_counts() -> None:
    p = _fold([("increment", 0.60), ("increment", 0.605), ("increment", 0.61), ("increment", 0.615)])
    assert p.last_improvement(0.01) == 4  # 0.615 > 0.60 + 0.01
    assert p.last_improvement(0.02) == 1 and p.stalled_for(0.02) == 3  # 0.60 > 0.5 + 0.02, then no step counts


def test_a_hyperparams_block_restarts_the_count_and_the_policy_halves_the_rate() -> None:
    policy = LearningRatePolicy(factor=0.5, patience=2, min_lr=0.004)
    p = _fold([("increment", 0.7), ("increment", 0.69), ("increment", 0.68)])
    assert p.next_learning_rate(policy) == pytest.approx(0.005)
    p = _fold([("increment", 0.7), ("increment", 0.69), ("increment", 0.68), ("hyperparams", 0.005)])
    assert p.learning_rate == 0.005 and p.stalled_for(0.0) == 0 and p.next_learning_rate(policy) is None
    p = _fold([("increment", 0.7), ("increment", 0.69), ("increment", 0.68), ("hyperparams", 0.005),
               ("increment", 0.69), ("increment", 0.68)])
    assert p.next_learning_rate(policy) == pytest.approx(0.004)  # never below min_lr
    p = _fold([("increment", 0.7), ("increment", 0.69), ("increment", 0.68), ("hyperparams", 0.004),
               ("increment", 0.69), ("increment", 0.68)])
    assert p.next_learning_rate(policy) is None  # at its floor


def test_the_policy_caps_the_epochs_in_its_lowering_block_once() -> None:
    policy = LearningRatePolicy(factor=0.5, patience=2, epochs=2)
    stalled = [("increment", 0.7), ("increment", 0.69), ("increment", 0.68)]
    assert _fold(stalled).next_hyperparams(policy) == {"learning_rate": pytest.approx(0.005), "epochs": 2}
    assert _fold(stalled).next_hyperparams(LearningRatePolicy(factor=0.5, patience=2)) == {
        "learning_rate": pytest.approx(0.005)}  # no cap in the policy: the rate alone
    assert _fold(stalled, epochs=2).next_hyperparams(policy) == {"learning_rate": pytest.approx(0.005)}  # not lower
    assert _fold(stalled, epochs=1).next_hyperparams(policy) == {"learning_rate": pytest.approx(0.005)}  # never raises
    p = _fold(stalled + [("hyperparams", {"learning_rate": 0.005, "epochs": 2}), ("increment", 0.69),
                         ("increment", 0.68)])
    assert p.epochs == 2 and p.next_hyperparams(policy) == {"learning_rate": pytest.approx(0.0025)}
    # a governance block raised the epochs again: the next lowering caps them again
    p = _fold(stalled + [("hyperparams", {"learning_rate": 0.005, "epochs": 2}), ("hyperparams", {"epochs": 4}),
                         ("increment", 0.69), ("increment", 0.68)])
    assert p.epochs == 4 and p.next_hyperparams(policy) == {"learning_rate": pytest.approx(0.0025), "epochs": 2}
    assert _fold([("increment", 0.7)]).next_hyperparams(policy) is None  # not stalled: nothing
