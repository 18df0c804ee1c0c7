"""The node's adaptive learning-rate asker: the next height's proposer asks, once per stall."""

from __future__ import annotations

from typing import Any

from tclearn.consensus.committee import proposer_of
from tclearn.errors import ConsensusError
from tclearn.ledger.policies import LearningRatePolicy
from tclearn.node.learning_rate import LearningRateAsker
from tclearn.sim.build import synthetic_coalition


class _Stalled:
    """What the asker reads of `Progress`: the request the policy calls for and the last hyperparams height."""

    def __init__(self, lr: float | None, last_hyperparams: int = 0) -> None:
        self.lr, self.last_hyperparams = lr, last_hyperparams

    def next_hyperparams(self, policy: LearningRatePolicy) -> dict[str, float | int] | None:
        if self.lr is None:
            return None
        return {"learning_rate": self.lr, **({} if policy.epochs is None else {"epochs": policy.epochs})}


def test_only_the_next_proposer_asks_and_only_once_per_stall() -> None:
    c = synthetic_coalition(4, 2, seed=2).coalition
    assert c.run_until(2, 300)
    state = c.drivers["m0"].state
    turn = proposer_of(state, state.height + 1)
    asked: dict[str, list[dict[str, float]]] = {m: [] for m in state.members}
    askers = {m: LearningRateAsker(m, LearningRatePolicy(), lambda *a, **k: None) for m in state.members}
    for m, asker in askers.items():
        asker.after_commit(_Stalled(0.005), state, asked[m].append)  # type: ignore[arg-type]
    assert asked[turn] == [{"learning_rate": 0.005}] and sum(map(len, asked.values())) == 1
    askers[turn].after_commit(_Stalled(0.005), state, asked[turn].append)  # type: ignore[arg-type]
    assert len(asked[turn]) == 1  # same stall: not again
    askers[turn].after_commit(_Stalled(None, 0), state, asked[turn].append)  # type: ignore[arg-type]
    askers[turn].after_commit(_Stalled(0.0025, 2), state, asked[turn].append)  # type: ignore[arg-type]
    assert asked[turn][-1] == {"learning_rate": 0.0025}  # a new stall after a hyperparams block: ask again


def test_a_refused_request_is_logged_not_raised() -> None:
    c = synthetic_coalition(4, 2, seed=2).coalition
    state = c.drivers["m0"].state
    turn = proposer_of(state, state.height + 1)
    logged: list[tuple[str, dict[str, Any]]] = []

    def refuse(hp: dict[str, float]) -> None:
        raise ConsensusError("cannot request hyperparams: no")

    asker = LearningRateAsker(turn, LearningRatePolicy(), lambda event, **f: logged.append((event, f)))
    assert asker.after_commit(_Stalled(0.001), state, refuse) is None  # type: ignore[arg-type]
    assert logged[0][0] == "adaptive_lr_refused" and "no" in logged[0][1]["reason"]


def test_the_policy_s_epochs_cap_goes_into_the_same_request() -> None:
    c = synthetic_coalition(4, 2, seed=2).coalition
    state = c.drivers["m0"].state
    turn = proposer_of(state, state.height + 1)
    asked: list[dict[str, float | int]] = []
    logged: list[tuple[str, dict[str, Any]]] = []
    asker = LearningRateAsker(turn, LearningRatePolicy(epochs=2), lambda event, **f: logged.append((event, f)))
    assert asker.after_commit(_Stalled(0.004), state, asked.append) == 0.004  # type: ignore[arg-type]
    assert asked == [{"learning_rate": 0.004, "epochs": 2}]
    assert logged == [("adaptive_lr_requested", {"height": state.height + 1, "learning_rate": 0.004, "epochs": 2})]
