"""Small hospitals train fewer local epochs per increment (`Task.hyperparams_for`), and the demo founds with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.demo.partners import PartnerTrainer
from tclearn.learning import get_task
from tclearn.learning.task_bladder import BladderTask
from tclearn.ledger.sqlite_store import SQLiteChainStore


def test_epochs_follow_the_mean_hospitals_pool() -> None:
    task = get_task("bladder")
    default = task.default_hyperparams
    assert default.epochs == 3 and default.batch_size == 10 and BladderTask.max_pool_passes == 2.0
    # 24 volumes, 21.6 trainable after L: 3 epochs over 10 are 1.4 passes over the pool
    assert task.hyperparams_for([24] * 4) == default
    # 12 volumes, 10.8 trainable: 3 epochs would pass 2.8 times over nearly the whole pool
    small = task.hyperparams_for([12] * 10)
    assert small.epochs == 2 and small.learning_rate == default.learning_rate
    assert small.genesis_dict()["epochs"] == 2
    # the mean pool decides, not the smallest (quantity skew: one small hospital does not set everyone's epochs)
    assert task.hyperparams_for([30, 10, 9, 47]).epochs == 3
    assert task.hyperparams_for([4] * 10).epochs == 1  # never below one epoch
    assert task.hyperparams_for([]) == default
    # digits keeps its calibrated 4 epochs over 256 of a ~300-image pool (2 epochs measured worse; README)
    digits = get_task("digits")
    assert digits.hyperparams_for([300] * 4) == digits.default_hyperparams
    assert digits.hyperparams_for([150] * 10) == digits.default_hyperparams


@pytest.mark.parametrize(("per_partner", "epochs"), [(12, 2), (24, 3)])
def test_the_demo_founds_and_trains_with_the_pools_epochs(tmp_path: Path, per_partner: int, epochs: int) -> None:
    used: list[int] = []
    original = PartnerTrainer._hp

    def spy(self, hyperparams):
        hp = original(self, hyperparams)
        used.append(hp.epochs)
        return hp

    opts = DemoOptions(task="bladder", partners=4, per_partner=per_partner, rounds=2, seed=1, out=tmp_path,
                       centralized=False, task_options={"shape": (16, 16, 16)})
    PartnerTrainer._hp = spy  # type: ignore[method-assign]
    try:
        run_coalition(opts)
    finally:
        PartnerTrainer._hp = original  # type: ignore[method-assign]
    store = SQLiteChainStore(tmp_path / "chain.db", create=False)
    genesis = next(iter(store))
    store.close()
    assert genesis.payload["config"]["hyperparams"]["epochs"] == epochs  # recorded for every member to read
    assert used and set(used) == {epochs}  # and obeyed
