"""`--max-pool-passes` and the adaptive policy's epochs cap: small hospitals train fewer local epochs per increment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.demo.partners import PartnerTrainer
from tclearn.errors import ConfigError
from tclearn.learning import get_task
from tclearn.ledger.sqlite_store import SQLiteChainStore


def _genesis_config(path: Path) -> dict:
    """The config genesis records in the chain file at `path`."""
    store = SQLiteChainStore(path, create=False)
    genesis = next(iter(store))
    store.close()
    return genesis.payload["config"]


def _genesis_hyperparams(path: Path) -> dict:
    return _genesis_config(path)["hyperparams"]


def test_epochs_follow_the_mean_hospitals_pool() -> None:
    task = get_task("bladder")
    default = task.default_hyperparams
    assert default.epochs == 3 and default.batch_size == 10
    assert task.hyperparams_for([12] * 10) == default  # no bound asked: the task's epochs
    # 24 volumes, 21.6 trainable after L: 3 epochs over 10 are 1.4 passes over the pool
    assert task.hyperparams_for([24] * 4, 2.0) == default
    # 12 volumes, 10.8 trainable: 3 epochs would pass 2.8 times over nearly the whole pool
    small = task.hyperparams_for([12] * 10, 2.0)
    assert small.epochs == 2 and small.learning_rate == default.learning_rate
    assert small.genesis_dict()["epochs"] == 2
    # the mean pool decides, not the smallest (quantity skew: one small hospital does not set everyone's epochs)
    assert task.hyperparams_for([30, 10, 9, 47], 2.0).epochs == 3
    assert task.hyperparams_for([16] * 6, 2.0).epochs == 2 and task.hyperparams_for([17] * 6, 2.0).epochs == 3
    # a pool smaller than a batch is drawn whole: each epoch is one pass over it
    assert task.hyperparams_for([4] * 10, 2.0).epochs == 2 and task.hyperparams_for([4] * 10, 1.0).epochs == 1
    assert task.hyperparams_for([12] * 10, 0.1).epochs == 1  # never below one epoch
    assert task.hyperparams_for([0] * 3, 2.0) == default and task.hyperparams_for([], 2.0) == default
    digits = get_task("digits")  # 4 epochs over 256 of a ~300-image pool: 3.4 passes
    assert digits.hyperparams_for([300] * 4, 2.0).epochs == 2
    assert digits.hyperparams_for([300] * 4) == digits.default_hyperparams


@pytest.mark.parametrize(("passes", "epochs"), [(2.0, 2), (None, 3)])
def test_the_demo_founds_and_trains_with_the_pools_epochs(tmp_path: Path, passes: float | None, epochs: int) -> None:
    used: list[int] = []
    original = PartnerTrainer._hp

    def spy(self, hyperparams):
        hp = original(self, hyperparams)
        used.append(hp.epochs)
        return hp

    opts = DemoOptions(task="bladder", partners=4, per_partner=12, rounds=2, seed=1, out=tmp_path,
                       centralized=False, task_options={"shape": (16, 16, 16)}, max_pool_passes=passes)
    PartnerTrainer._hp = spy  # type: ignore[method-assign]
    try:
        run_coalition(opts)
    finally:
        PartnerTrainer._hp = original  # type: ignore[method-assign]
    assert _genesis_hyperparams(tmp_path / "chain.db")["epochs"] == epochs  # recorded for every member to read
    assert used and set(used) == {epochs}  # and obeyed


def test_the_demo_flag(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--task", "digits", "--partners", "3", "--rounds", "1",
                                   "--no-centralized", "--max-pool-passes", "1", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "report.json").read_text())  # the run finished and reported
    assert _genesis_hyperparams(tmp_path / "chain.db")["epochs"] == 1  # ~400 trainable images, batches of 256
    with pytest.raises(ConfigError, match="--max-pool-passes"):
        DemoOptions(task="digits", max_pool_passes=0.0).check()


def _genesis_policy(path: Path) -> dict:
    return _genesis_config(path).get("adaptive_lr", {})


@pytest.mark.parametrize(("passes", "cap"), [(None, 2), (2.0, None)])
def test_bladder_founds_the_policy_with_an_epochs_cap(tmp_path: Path, passes: float | None, cap: int | None) -> None:
    opts = DemoOptions(task="bladder", partners=4, per_partner=12, rounds=1, seed=1, out=tmp_path,
                       centralized=False, task_options={"shape": (16, 16, 16)}, max_pool_passes=passes)
    run_coalition(opts)
    # three epochs until the first lowering, two after; where --max-pool-passes already trains two, no cap
    assert _genesis_hyperparams(tmp_path / "chain.db")["epochs"] == (3 if passes is None else 2)
    assert _genesis_policy(tmp_path / "chain.db").get("epochs") == cap


def test_the_lr_epochs_flag(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--task", "digits", "--partners", "3", "--rounds", "1", "--adaptive-lr",
                                   "--lr-epochs", "1", "--no-centralized", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert _genesis_policy(tmp_path / "chain.db")["epochs"] == 1
    assert json.loads((tmp_path / "report.json").read_text())["adaptive_lr"]["epochs"] == 1
    res = CliRunner().invoke(app, ["demo", "--task", "digits", "--rounds", "1", "--lr-epochs", "-2",
                                   "--no-centralized", "--out", str(tmp_path / "bad")])
    assert res.exit_code != 0 and "--lr-epochs must be ≥ 0" in res.output
