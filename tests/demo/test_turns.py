"""Proposer turns in proportion to each hospital's pool (genesis consensus.turn_weights): founded, recorded, obeyed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.consensus.committee import turn_schedule
from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.founding import coalition_data, pool_turn_weights
from tclearn.learning import get_task
from tclearn.ledger.genesis import MAX_TURN_PERIOD
from tclearn.ledger.sqlite_store import SQLiteChainStore


def _chain(path: Path) -> list:
    store = SQLiteChainStore(path, create=False)
    blocks = list(store)
    store.close()
    return blocks


def test_pool_turn_weights_are_the_pools_in_lowest_terms_and_none_for_equal_pools() -> None:
    names = ["a", "b", "c", "d"]
    assert pool_turn_weights(names, [24, 24, 24, 24]) is None  # IID: equal turns, nothing recorded
    assert pool_turn_weights(names, [10, 20, 30, 60]) == {"a": 1, "b": 2, "c": 3, "d": 6}
    assert pool_turn_weights(names, [9, 12, 15, 60]) == {"a": 3, "b": 4, "c": 5, "d": 20}
    big = pool_turn_weights(names, [40_001, 3, 5, 7])  # past the period's bound: scaled down, every member kept
    assert big is not None and sum(big.values()) <= MAX_TURN_PERIOD and min(big.values()) >= 1
    assert big["a"] > 100 * big["b"]


def test_bladder_non_iid_founds_turns_by_pool_by_default_and_iid_records_nothing(tmp_path: Path) -> None:
    common = dict(task="bladder", partners=4, per_partner=12, rounds=1, seed=1, centralized=False,
                  task_options={"shape": (16, 16, 16)})
    run = run_coalition(DemoOptions(**common, split="non-iid", turns_by_pool=False,  # type: ignore[arg-type]
                                    out=tmp_path / "off"))
    assert "turn_weights" not in _chain(tmp_path / "off" / "chain.db")[0].payload["config"]["consensus"]
    assert run.extra["turn_weights"] is None  # --equal-turns
    run_coalition(DemoOptions(**common, split="iid", out=tmp_path / "iid"))  # type: ignore[arg-type]
    assert "turn_weights" not in _chain(tmp_path / "iid" / "chain.db")[0].payload["config"]["consensus"]
    run = run_coalition(DemoOptions(**common, split="non-iid", out=tmp_path / "skew"))  # type: ignore[arg-type]
    sizes = [len(p) for p in coalition_data(get_task("bladder"), 4, 1, split="non-iid", per_partner=12).partners]
    assert len(set(sizes)) > 1
    recorded = _chain(tmp_path / "skew" / "chain.db")[0].payload["config"]["consensus"]["turn_weights"]
    assert recorded == pool_turn_weights(["hospital-a", "hospital-b", "hospital-c", "hospital-d"], sizes)
    assert run.extra["turn_weights"] == recorded


def test_the_demo_s_proposers_follow_the_pools(tmp_path: Path) -> None:
    """Digits (label skew, unequal pools) with --turns-by-pool: each block's proposer is the schedule's."""
    res = CliRunner().invoke(app, ["demo", "--task", "digits", "--partners", "3", "--split", "non-iid", "--rounds",
                                   "12", "--stop-patience", "0", "--no-adaptive-lr", "--no-centralized",
                                   "--turns-by-pool", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    chain = _chain(tmp_path / "chain.db")
    weights = chain[0].payload["config"]["consensus"]["turn_weights"]
    assert json.loads((tmp_path / "report.json").read_text())["turn_weights"] == weights
    names = list(weights)
    schedule = turn_schedule(tuple(weights[m] for m in names))
    expected = [names[schedule[(b.index - 1) % len(schedule)]] for b in chain[1:]]
    assert [b.contributor for b in chain[1:]] == expected and len(expected) == 12
    assert len(Counter(expected)) == 3  # everyone proposes, the larger pools more often


def test_digits_takes_equal_turns_by_default(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--task", "digits", "--partners", "3", "--split", "non-iid", "--rounds",
                                   "3", "--no-centralized", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    chain = _chain(tmp_path / "chain.db")
    assert "turn_weights" not in chain[0].payload["config"]["consensus"]
    assert [b.contributor for b in chain[1:]] == ["hospital-a", "hospital-b", "hospital-c"]
