"""The driver seam is typed: Train carries the hyper-parameters, results are typed, hosts read status()."""

from __future__ import annotations

from typing import Any

from tclearn.consensus.actions import Evaluate, Train
from tclearn.consensus.phases import HeightPhase
from tclearn.errors import LearningError, NotYetError
from tclearn.learning.errors import ModelNotFoundError
from tclearn.member.driver import MemberDriver, PendingWork, RetryLater, Scored, Trained
from tclearn.meter import PhaseMeter
from tclearn.quality import PairedScores
from tclearn.sim.build import synthetic_coalition


class RecordingTrainer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any] | None]] = []

    def train(self, parent_model_hash: str, height: int, hyperparams: dict[str, Any] | None = None) -> None:
        self.calls.append((parent_model_hash, height, hyperparams))
        return None


class RaisingEvaluator:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def evaluate(self, parent_model_hash: str, candidate_model_hash: str) -> PairedScores:
        raise self.exc


def _driver(c: Any, member: str) -> MemberDriver:
    driver = c.drivers[member]
    assert driver is not None
    return driver


def test_train_carries_the_chains_hyper_parameters_to_the_trainer() -> None:
    setup = synthetic_coalition(4, 2, seed=3, no_trainer=("m0", "m1", "m2", "m3"))
    c = setup.coalition
    proposer = _driver(c, "m0").core.committee.proposers[0]
    driver = _driver(c, proposer)
    trainer = RecordingTrainer()
    driver.trainer = trainer
    action = Train(1, driver.state.head_model_hash, dict(driver.state.hyperparams))
    outcome = driver.compute_work(PendingWork(action))
    assert outcome == Trained(None)
    assert trainer.calls == [(driver.state.head_model_hash, 1, driver.state.hyperparams)]
    assert driver.state.hyperparams["learning_rate"] == 0.01


def test_an_evaluator_that_is_not_ready_yet_asks_for_a_retry_and_a_bad_model_votes_reject() -> None:
    driver = _driver(synthetic_coalition(4, 2, seed=3).coalition, "m1")
    work = PendingWork(Evaluate(1, "ab" * 32, "cd" * 32, "ef" * 32))
    driver.evaluator = RaisingEvaluator(ModelNotFoundError("not fetched yet"))
    assert driver.compute_work(work) == RetryLater()
    driver.evaluator = RaisingEvaluator(NotYetError("a host's own not-yet"))
    assert driver.compute_work(work) == RetryLater()
    driver.evaluator = RaisingEvaluator(LearningError("undecodable"))
    assert driver.compute_work(work) == Scored(None)


def test_hosts_read_status_not_the_core() -> None:
    c = synthetic_coalition(5, 3, seed=2).coalition
    c.run_until(2, 400)
    status = _driver(c, "m1").status()
    assert status.member_id == "m1" and status.height >= 2 and status.commits >= 2
    assert status.work.height == status.height + 1
    assert status.work.phase in set(HeightPhase)
    assert status.head_hash == _driver(c, "m1").store.head().block_hash


def test_a_meter_handed_in_gets_crypto_storage_and_the_message_trace_and_changes_nothing() -> None:
    chains = []
    meter = PhaseMeter()
    for m in (None, meter):
        setup = synthetic_coalition(5, 3, seed=2)
        c = setup.coalition
        world = type(c)(c.genesis, list(c.identities.values()), evaluators=setup.evaluators,
                        trainers=setup.trainers, meter=m)
        world.run_until(2, 400)
        chains.append([b.to_bytes() for b in world.chain("m1")])
    assert chains[0] == chains[1] and len(chains[0]) >= 3
    assert meter.totals["crypto"] > 0 and meter.totals["chain_storage"] > 0
    assert meter.messages["QualityVoteMsg"] > 0 and meter.messages["BlockVoteMsg"] > 0
