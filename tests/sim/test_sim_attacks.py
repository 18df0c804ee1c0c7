"""`tclearn sim consensus --malicious M --attack NAME`: the attacks' synthetic counterparts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.sim.build import synthetic_coalition
from tclearn.sim.runner import run_many
from tclearn.sim.synthetic import ATTACK_EFFECTS

DEGRADING = [a for a, effect in ATTACK_EFFECTS.items() if effect is not None and effect <= -0.1]


@pytest.mark.parametrize("attack", DEGRADING + ["lazy"])
def test_degrading_and_empty_candidates_are_never_committed(attack: str) -> None:
    summary = run_many(range(8), members=7, committee=4, byzantine=1, malicious=2, attack=attack, jobs=1)
    assert summary.safety_violations == 0 and summary.liveness_failures == 0
    assert summary.malicious_increments == 0
    assert summary.malicious_rejected > 0  # they proposed, and it is on the record


def test_replayed_data_is_refused_after_its_first_use() -> None:
    setup = synthetic_coalition(5, 3, seed=3, attacks={"m1": "replay"})
    assert setup.coalition.run_until(10, 4000)
    chain = setup.coalition.chain("m0")
    mine = [b for b in chain if b.contributor == "m1"]
    assert len(mine) >= 2
    roots = [b.data_ids_root for b in chain if b.kind == "increment"]
    assert len(roots) == len(set(roots))  # no batch of data ids trains the model twice
    assert all(b.kind == "rejected" for b in mine[1:])


def test_the_cli_takes_malicious_and_attack() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["sim", "consensus", "--seeds", "3", "--malicious", "1", "--attack", "scale", "--json",
                            "--jobs", "1"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["malicious"] == 1 and data["attack"] == "scale" and data["malicious_increments"] == 0
    r = runner.invoke(app, ["sim", "consensus", "--seeds", "1", "--malicious", "1"])
    assert r.exit_code == 2 and "--attack" in r.output
