"""The one founding path (`tclearn.founding`): the same bytes as before it existed, and its checks.

The golden hashes were taken from the code before the founding paths were
merged into one (the demo's genesis at `--task digits --partners 3 --seed 0`,
the simulator's genesis at seed 0, the node's sample ids): a change to how a
coalition is founded that alters block 0 or who gets which sample fails here.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tclearn.data.ids import dataset_ids
from tclearn.errors import ConfigError
from tclearn.founding import (CoalitionPlan, coalition_data, data_key, demo_data_key, generated_identities,
                              hospital_names, numbered_names, plan_for_task, seeded_identities)
from tclearn.learning import get_task
from tclearn.ledger.genesis import GenesisConfig
from tclearn.ledger.policies import StoppingRule
from tclearn.node.data_source import partner_data
from tclearn.sim.build import make_genesis, make_identities
from tclearn.sim.synthetic import ModelRegistry

DEMO_GENESIS = "0dbde0427912b118d0d8d25ace77088f4301526dbef8bbbcecdf1857fcbe0598"  # demo digits, 3 partners, seed 0
# the same genesis with today's digits rate, 3e-3 (the golden above is taken at the rate of its day, 1e-3)
DEMO_GENESIS_NOW = "489e3ef8554688c880fd0c60b857b760f76068660e14b3e28ce3b3bade2eeec6"
SIM_GENESIS = "7001183b1e97b9fb3dc574daa8c59a5c519af6ed258beb8ecf08bce2306c942a"  # synthetic_coalition(7, 4, seed=0)
NODE_IDS = ["9dd307299582e4614681f2278219639932460d7ca780b9316d6d3161b07cec04",  # digits, 3 partners, seed 0
            "83438c5776f941edaf2c2b6bc8b604774f4127f4f15b5c092a581cc5dc1c149d",
            "56ac8c650653449fad936a5a1185ed6d73e526070f953f3dab9ed9b29d358b53"]
DEMO_IDS_0 = "8b016602d7469416cd6645d662c4f2e7776e9ce7e416870d9af16c5e8ae97382"
T0_MS = 1_767_225_600_000


def _ids_digest(key: bytes, data: object) -> str:
    return hashlib.sha256(json.dumps(sorted(dataset_ids(key, data))).encode()).hexdigest()


def test_demo_genesis_has_its_bytes_from_before(monkeypatch: pytest.MonkeyPatch) -> None:
    task = get_task("digits")
    data = coalition_data(task, 3, 0)
    names = hospital_names(3)

    def genesis_hash() -> str:
        plan = plan_for_task(task, seeded_identities(names, b"tclearn-demo-0"), coalition_id="demo-digits-0", seed=0,
                             lam=0.97, committee_size=2, test_set_hash=data.test.digest(),
                             revert_authorized=names[:1], timestamp_ms=T0_MS, max_drop=None,
                             stopping=StoppingRule(patience=12, min_delta=0.0))
        return plan.genesis().block_hash

    assert task.default_hyperparams.learning_rate == 0.003 and genesis_hash() == DEMO_GENESIS_NOW
    monkeypatch.setattr(task, "default_hyperparams", task.default_hyperparams.updated({"learning_rate": 0.001}))
    assert genesis_hash() == DEMO_GENESIS  # the founding path itself has not changed
    assert _ids_digest(demo_data_key(0), data.partners[0]) == DEMO_IDS_0


def test_sim_genesis_has_its_bytes_from_before() -> None:
    genesis = make_genesis(make_identities(7), 4, ModelRegistry(0).genesis_hash)
    assert genesis.block_hash == SIM_GENESIS
    assert [i.member_id for i in make_identities(3)] == numbered_names(3) == ["m0", "m1", "m2"]


def test_node_split_is_the_founding_split_with_its_ids_from_before() -> None:
    for index, golden in enumerate(NODE_IDS):
        pool, g = partner_data("digits", 3, 0, index)
        assert _ids_digest(data_key(0), pool) == golden
    skewed = coalition_data(get_task("digits"), 3, 0, split="non-iid")
    assert _ids_digest(data_key(0), skewed.partners[0]) != NODE_IDS[0]  # the split option reaches the task


def test_fingerprints_and_supervisor_fields_reach_genesis() -> None:
    task = get_task("digits")
    ids = generated_identities(numbered_names(3))
    prints = {"m0": "aa" * 32, "m2": "cc" * 32}
    plan = plan_for_task(task, ids, coalition_id="c", seed=1, lam=0.9, committee_size=2, test_set_hash="ab" * 32,
                         fingerprints=prints, architecture=task.name, initial_model_hash="cd" * 32)
    genesis = plan.genesis()
    members = genesis.payload["config"]["members"]
    assert [m["cert_fingerprint"] for m in members] == ["aa" * 32, "", "cc" * 32]
    assert plan.member_ids == ["m0", "m1", "m2"] and plan.founder.member_id == "m0"
    with pytest.raises(ConfigError, match="supervisor"):
        plan_for_task(task, ids, coalition_id="c", seed=1, lam=0.9, committee_size=2, test_set_hash="ab" * 32,
                      level="B", initial_model_hash="cd" * 32)


def test_only_the_founder_signs_genesis() -> None:
    ids = seeded_identities(["a", "b", "c"], b"t")
    plan = plan_for_task(get_task("digits"), ids, coalition_id="c", seed=0, lam=0.9, committee_size=2,
                         test_set_hash="ab" * 32, initial_model_hash="cd" * 32, timestamp_ms=T0_MS)
    config: GenesisConfig = plan.config
    with pytest.raises(ConfigError, match="founder"):
        CoalitionPlan(config, ids[1], plan.initial_model_hash, T0_MS).genesis()
