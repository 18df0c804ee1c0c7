"""The demo: a whole level-A coalition with real models, in one process."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.consensus import check_certificate
from tclearn.demo.engine import ATTACKS, MODEL_FILE, DemoOptions, run_coalition
from tclearn.learning import get_task
from tclearn.learning.serialize import hash_bytes, state_from_bytes
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.verify import verify_chain

runner = CliRunner()


def _run(tmp: Path, *args: str) -> dict:
    res = runner.invoke(app, ["demo", "--task", "digits", "--no-centralized", "--out", str(tmp), *args])
    assert res.exit_code == 0, res.output
    return json.loads((tmp / "report.json").read_text())


def test_digits_demo_writes_report_figures_and_a_verifying_chain(tmp_path: Path) -> None:
    report = _run(tmp_path, "--rounds", "4")
    for key in ("task", "final_score", "centralized_score", "accepted", "rejected", "blocks"):
        assert key in report
    assert report["task"] == "digits"
    assert report["accepted"] + report["rejected"] == 4
    assert report["final_score"] > report["initial_score"]
    assert {"index", "kind", "contributor", "score_old", "score_new"} <= set(report["blocks"][0])
    for png in ("score_per_block.png", "strengths.png"):
        assert (tmp_path / png).stat().st_size > 1000
    store = SQLiteChainStore(tmp_path / "chain.db", create=False)
    chain = list(store)
    store.close()
    verify_chain(chain, certificate_check=check_certificate)
    verify = runner.invoke(app, ["chain", "verify", str(tmp_path / "chain.db")])
    assert verify.exit_code == 0, verify.output
    model = (tmp_path / MODEL_FILE).read_bytes()  # level A: the final model, the head block's
    assert hash_bytes(model) == chain[-1].model_hash and set(state_from_bytes(model)) == set(
        get_task("digits").initial_state(0))


def test_same_seed_gives_the_same_chain_byte_for_byte(tmp_path: Path) -> None:
    chains = []
    for name in ("a", "b"):
        run = run_coalition(DemoOptions(task="digits", rounds=3, seed=7, out=tmp_path / name, centralized=False))
        # where a centralised run's clock would start (task and data in hand): before the first block
        assert 0.0 < run.extra["data_ready_s"] < run.blocks[0].elapsed_s
        store = SQLiteChainStore(tmp_path / name / "chain.db", create=False)
        chains.append([b.to_bytes() for b in store])
        store.close()
    assert chains[0] == chains[1]


def test_bad_options_exit_with_a_clear_message(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--task", "digits", "--committee", "9", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "--committee" in res.output
    for bad, named in ((["--partners", "1"], "--partners"), (["--rounds", "0"], "--rounds"),
                       (["--lr-factor", "1.5"], "--lr-factor")):
        res = runner.invoke(app, ["demo", "--task", "digits", *bad, "--out", str(tmp_path / "bad")])
        assert res.exit_code == 2 and named in res.output
        # refused before anything starts: no banner, no progress bar, nothing written
        assert "TCLearn demo" not in res.output and "rounds" not in res.output.replace("--rounds", "")
        assert not (tmp_path / "bad").exists()
    res = runner.invoke(app, ["demo", "--task", "nosuch", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "did you mean" in res.output.lower() or "unknown task" in res.output


@pytest.mark.parametrize("attack", ["label-flip", "sign-flip", "noise", "scale", "random-labels", "off-task", "lazy"])
def test_degrading_attack_is_recorded_as_rejected_blocks_under_the_attackers_id(tmp_path: Path, attack: str) -> None:
    # the attack issue's threshold: candidates that lower G by more than 1 point are refused
    report = _run(tmp_path, "--rounds", "8", "--partners", "4", "--malicious", "1", "--attack", attack,
                  "--max-drop", "0.01")
    assert report["attack"] == attack and len(report["malicious"]) == 1 and report["max_drop"] == 0.01
    bad = [b for b in report["blocks"] if b["contributor"] in report["malicious"]]
    assert bad, "the attacker proposed nothing"
    if attack == "lazy":  # an empty increment claims samples for nothing: always refused
        assert all(b["kind"] == "rejected" for b in bad), bad
        return
    degrading = [b for b in bad if b["score_new"] is None or b["score_new"] < b["score_old"] - 0.01]
    assert degrading, "the attack never bit"
    assert all(b["kind"] == "rejected" for b in degrading), degrading
    # a candidate that does not lower G by more than the floor may pass (as ALIE's may): it harms nobody


@pytest.mark.parametrize("attack", ["alie", "replay"])
def test_other_attacks_run_and_are_attributed(tmp_path: Path, attack: str) -> None:
    report = _run(tmp_path, "--rounds", "8", "--partners", "4", "--malicious", "1", "--attack", attack)
    bad = [b for b in report["blocks"] if b["contributor"] in report["malicious"]]
    assert bad and all(b["malicious"] for b in bad)
    if attack == "replay":  # its first batch is honest; every replayed batch after it is refused
        assert all(b["kind"] == "rejected" for b in bad[1:])
        refusals = report["data_ids"]["refusals"]  # by validators, naming the spent sample claimed as new
        assert refusals and all(r["data_id"] and r["data_id"] in r["reason"] for r in refusals), refusals
        assert all("already contributed" in r["reason"] for r in refusals)


def test_every_attack_name_is_known() -> None:
    assert set(ATTACKS) == {"label-flip", "random-labels", "off-task", "noise", "sign-flip", "scale", "alie",
                            "lazy", "replay"}


def test_colluding_validators_cannot_wave_a_degrading_candidate_through(tmp_path: Path) -> None:
    # 2 of 4 partners malicious and colluding, committee 3: some committees have a colluding majority
    report = _run(tmp_path, "--rounds", "8", "--partners", "4", "--malicious", "2", "--attack", "sign-flip",
                  "--collude", "--max-drop", "0.01", "--seed", "1")
    assert report["colluding"] is True and report["max_drop"] == 0.01
    bad = [b for b in report["blocks"] if b["malicious"]]
    assert bad and all(b["kind"] == "rejected" for b in bad), bad
    # the colluders did vote for them: their accepts were outvoted, not absent
    assert any(b["votes_accept"] for b in bad), bad
    chain = list(SQLiteChainStore(tmp_path / "chain.db"))
    verify_chain(chain, certificate_check=check_certificate)


def test_collude_needs_malicious_partners(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--task", "digits", "--out", str(tmp_path), "--collude"])
    assert res.exit_code != 0 and "--collude" in res.output


@pytest.mark.slow
def test_honest_partners_shorten_increments_the_floor_would_refuse(tmp_path: Path) -> None:
    # 10 label-skewed partners, 1-point floor: seed 1 has honest increments that lose more than a point on G
    # (so do seeds 5 and 7 of 0-7 at the digits rate 3e-3)
    args = ("--split", "non-iid", "--partners", "10", "--rounds", "14", "--max-drop", "0.01", "--seed", "1")
    checked = _run(tmp_path / "checked", *args)
    unchecked = _run(tmp_path / "unchecked", *args, "--no-self-check")
    assert unchecked["self_check"] == {"enabled": False, "proposals_checked": 0, "shortened": 0, "still_over_floor": 0}
    sc = checked["self_check"]
    # every committed proposal was checked (the next height's proposer may have trained before the run ended)
    assert sc["enabled"] and sc["proposals_checked"] - (checked["accepted"] + checked["rejected"]) in (0, 1)
    assert sc["shortened"] >= 1
    assert unchecked["rejected"] >= 1  # without the check the committee refuses them
    assert checked["rejected"] < unchecked["rejected"]
