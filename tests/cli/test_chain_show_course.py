"""`tclearn chain show` marks the model's course: reverted stretches, hyper-parameter and membership changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.identity import Identity
from tclearn.ledger.course import course_of
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.sim.build import synthetic_coalition

runner = CliRunner()


def _governed_chain(db: Path) -> list:
    """A simulated coalition's chain with a revert, a hyperparams and a membership block, stored in `db`."""
    c = synthetic_coalition(7, 4, seed=3).coalition
    assert c.run_until(4, 400)
    c.drivers["m0"].request_revert(1)
    assert c.run_until(c.monitor.height + 2, 400)
    c.drivers["m2"].request_hyperparams({"learning_rate": 0.005})
    assert c.run_until(c.monitor.height + 2, 400)
    c.drivers["m0"].request_membership([{"id": "m9", "public_key": Identity.from_seed("m9", b"x").public_key}],
                                       ["m6"])
    assert c.run_until(c.monitor.height + 1, 800)
    chain = c.chain("m1")
    assert {"revert", "hyperparams", "membership"} <= {b.kind for b in chain}
    with SQLiteChainStore(db) as store:
        for b in chain:
            store.append(b)
    return chain


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    db = tmp_path_factory.mktemp("course") / "chain.db"
    return db, _governed_chain(db)


def test_chain_show_marks_reverted_stretches_and_governance_changes(governed: tuple[Path, list]) -> None:
    db, chain = governed
    revert = next(b for b in chain if b.kind == "revert")
    outshone = [b.index for b in chain if 1 < b.index < revert.index and b.kind == "increment"]
    assert outshone  # the stretch the revert discarded holds increments

    r = runner.invoke(app, ["chain", "show", str(db), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["index"] for row in rows] == [b.index for b in chain]
    assert {"block_hash", "kind", "payload", "strengths"} <= set(rows[0])  # every block field is still there
    by_index = {row["index"]: row for row in rows}
    assert [i for i, row in by_index.items() if row["reverted_by"] is not None] == outshone
    assert all(by_index[i]["reverted_by"] == revert.index for i in outshone)
    assert by_index[revert.index]["change"] == {"revert_to": 1}
    assert by_index[revert.index]["note"] == "revert to block 1"
    hp = next(row for row in rows if row["kind"] == "hyperparams")
    assert hp["change"] == {"hyperparams": {"learning_rate": 0.005}} and hp["reverted_by"] is None
    member = next(row for row in rows if row["kind"] == "membership")
    assert member["change"] == {"added": ["m9"], "removed": ["m6"]} and member["note"] == "members +m9 -m6"
    assert all(row["change"] is None for row in rows if row["kind"] in ("increment", "rejected", "genesis"))

    # a window before the revert still shows what the later revert did to it
    window = json.loads(runner.invoke(app, ["chain", "show", str(db), "--json", "--from", "2", "--limit", "1"]).output)
    assert [w["index"] for w in window] == [2] and window[0]["reverted_by"] == (revert.index if 2 in outshone else None)

    table = runner.invoke(app, ["chain", "show", str(db)])
    assert table.exit_code == 0
    assert "course" in table.output and "revert to block 1" in table.output
    assert f"outshone by revert {revert.index}" in table.output and "hyperparams learning_rate=0.005" in table.output
    assert "members +m9 -m6" in table.output


def test_each_outshone_block_is_marked_with_the_first_revert_that_discarded_it(governed: tuple[Path, list]) -> None:
    _, chain = governed
    courses = course_of(chain)
    revert = next(b for b in chain if b.kind == "revert")
    for b, c in zip(chain, courses):
        if c.reverted_by is not None:
            assert b.kind in ("increment", "revert") and b.index < c.reverted_by
            assert chain[c.reverted_by].payload["target"] < b.index
    assert courses[revert.index].reverted_by is None  # nothing reverted past it
    # seen from a later window only, the same marks
    assert course_of(chain[3:]) == courses[3:]
