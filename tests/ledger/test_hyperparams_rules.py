"""One module of hyper-parameter rules: genesis, blocks, requests and training all follow it."""

from __future__ import annotations

import pytest

from tclearn.consensus.governance import GovernanceRequest, request_problem
from tclearn.errors import ConfigError
from tclearn.learning import hyperparams as learning_hp
from tclearn.ledger import hyperparams as rules
from tclearn.ledger.genesis import GenesisConfig, MemberInfo
from tclearn.sim.build import make_identities, synthetic_coalition

GOOD = {"learning_rate": 0.01, "optimizer": "sgd", "epochs": 1, "min_batch_size": 16}


@pytest.mark.parametrize("hp, problem", [
    (GOOD, None),
    ({"learning_rate": 0.5}, None),
    ({}, "hyperparams must set some of"),
    ({"momentum": 0.9}, "hyperparams must set some of"),
    ({"learning_rate": 0}, "learning_rate must be a number > 0"),
    ({"learning_rate": True}, "learning_rate must be a number > 0"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of sgd, adam"),
    ({"epochs": 0}, "epochs must be an integer ≥ 1"),
    ({"min_batch_size": 2.0}, "min_batch_size must be an integer ≥ 1"),
])
def test_the_rules(hp: dict, problem: str | None) -> None:
    found = rules.hyperparams_problem(hp)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_genesis_needs_all_four_and_names_the_section() -> None:
    assert rules.hyperparams_problem({"learning_rate": 0.5}, prefix="hyperparams.", complete=True) == \
        "hyperparams.optimizer is missing"
    ids = make_identities(3)
    with pytest.raises(ConfigError, match="hyperparams.epochs must be an integer"):
        GenesisConfig(coalition_id="c", level="A", members=tuple(MemberInfo(i.member_id, i.public_key) for i in ids),
                      task="synthetic", architecture="number", model_config={}, model_seed=0,
                      hyperparams={**GOOD, "epochs": 0}, lam=0.9, committee_size=2, test_set_hash="ab" * 32)


def test_learning_and_governance_use_the_same_rules() -> None:
    assert learning_hp.OPTIMIZERS is rules.OPTIMIZERS and learning_hp.GENESIS_KEYS is rules.GENESIS_KEYS
    state = synthetic_coalition(3, 2, seed=0).coalition.drivers["m0"].state
    founder = make_identities(3)[0]
    bad = GovernanceRequest("hyperparams", "m0", 1, {"hyperparams": {"optimizer": "lbfgs"}}).signed_by(founder)
    assert request_problem(state, bad) == rules.hyperparams_problem({"optimizer": "lbfgs"})
