"""Seeded fault scenarios (TigerBeetle style): safety phase with faults, then a liveness phase.

A failure names the seeds; `run_scenario(ScenarioSpec(seed=N, ...))` or
`tclearn sim consensus --seed N --seeds 1` replays one exactly.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.sim.runner import run_many
from tclearn.sim.scenario import ScenarioSpec, run_scenario


def test_fifty_seeds_with_f_below_k_over_3_are_safe_and_live():
    summary = run_many(range(50), members=7, committee=4, byzantine=1, jobs=2)
    assert summary.safety_violations == 0, summary.failures
    assert summary.liveness_failures == 0, f"replay seeds {summary.failing_seeds}: {summary.failures}"
    assert summary.committed > 100


def test_fifty_seeds_with_f_at_least_k_over_3_stay_safe():
    summary = run_many(range(1000, 1050), members=7, committee=4, byzantine=2, jobs=2)
    assert summary.safety_violations == 0, summary.failures


def test_laggards_finish_a_height_whose_committer_restarted():
    # seed 762: the general committed height 3 with a byzantine validator's precommit, then every member
    # restarted; the seal proof of its head now survives in its safety snapshot, so the others can commit
    r = run_scenario(ScenarioSpec(seed=762, members=7, committee=4, byzantine=1))
    assert r.ok, r.to_dict()


def test_a_seed_replays_exactly():
    a, b = run_scenario(ScenarioSpec(seed=17)), run_scenario(ScenarioSpec(seed=17))
    assert a.to_dict() == b.to_dict()


def test_the_cli_reports_json():
    result = CliRunner().invoke(app, ["sim", "consensus", "--seeds", "3", "--jobs", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("scenarios", "rounds", "committed", "safety_violations", "liveness_failures", "failing_seeds"):
        assert key in data
    assert data["scenarios"] == 3 and data["failing_seeds"] == []


@pytest.mark.slow
def test_a_thousand_seeds_with_f_below_k_over_3():
    summary = run_many(range(1000), members=7, committee=4, byzantine=1, jobs=2)
    assert (summary.safety_violations, summary.liveness_failures) == (0, 0), summary.failing_seeds


@pytest.mark.slow
def test_a_thousand_seeds_with_f_at_least_k_over_3_stay_safe():
    summary = run_many(range(1000), members=7, committee=4, byzantine=2, jobs=2)
    assert summary.safety_violations == 0, summary.failing_seeds
