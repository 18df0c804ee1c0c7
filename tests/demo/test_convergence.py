"""The coalition learns to convergence: ids account for contribution, the stopping rule and the LR policy.

Each test is named after the sentence of the convergence issue it checks.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.consensus import check_certificate
from tclearn.consensus.progress import Progress
from tclearn.data.accounting import BatchIds, BatchRefused, SpentIds, check_batch_ids
from tclearn.data.ids import dataset_ids, merkle_root
from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.demo.partners import PartnerTrainer
from tclearn.errors import ConfigError
from tclearn.ledger.policies import StoppingRule
from tclearn.ledger.records import EMPTY_IDS_ROOT, Proposal
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.ledger.verify import verify_chain
from tclearn.learning import get_task

runner = CliRunner()
KEY = b"convergence-test-key-0123456789!"


def _chain(path: Path) -> list:
    store = SQLiteChainStore(path, create=False)
    chain = list(store)
    store.close()
    return chain


# --- the accounting rules, on real ids -------------------------------------------------------------
@pytest.fixture(scope="module")
def ids() -> dict[str, tuple[str, ...]]:
    data = get_task("digits").coalition_data(2, seed=0)
    return {"pool": dataset_ids(KEY, data.partners[0]), "g": dataset_ids(KEY, data.test)}


def _check(new: tuple[str, ...], reused: tuple[str, ...] = (), *, spent=(), g=(), count: int | None = None) -> None:
    check_batch_ids(BatchIds(new, reused), sample_count=len(new) if count is None else count,
                    data_ids_root=merkle_root(new), reused_count=len(reused), reused_ids_root=merkle_root(reused),
                    spent=set(spent), test_ids=set(g))


def test_a_batch_claiming_a_spent_sample_as_new_is_refused_with_the_id_named(ids) -> None:
    pool = ids["pool"]
    _check(pool[:5], spent=pool[10:20])  # honest
    with pytest.raises(BatchRefused, match=pool[3]) as err:
        _check(pool[:5], spent={pool[3]})
    assert err.value.data_id == pool[3]


def test_a_batch_holding_a_sample_of_g_is_refused_with_the_id_named(ids) -> None:
    bad = (*ids["pool"][:4], ids["g"][7])
    with pytest.raises(BatchRefused, match=ids["g"][7]) as err:
        _check(bad, g=ids["g"])
    assert "global test set" in str(err.value) and err.value.data_id == ids["g"][7]


def test_a_wrong_sample_count_is_refused(ids) -> None:
    with pytest.raises(BatchRefused, match="sample_count 6 does not match the 5 new ids"):
        _check(ids["pool"][:5], count=6)


def test_a_reused_sample_must_have_been_contributed_and_is_named_otherwise(ids) -> None:
    pool = ids["pool"]
    _check(pool[:3], pool[3:6], spent=pool[3:6])
    with pytest.raises(BatchRefused, match=pool[5]):
        _check(pool[:3], pool[3:6], spent=pool[3:5])
    with pytest.raises(BatchRefused, match="listed twice"):
        _check(pool[:3], pool[2:4], spent=pool[2:4])


def test_the_ledger_refuses_counts_that_disagree_with_their_roots(ids) -> None:
    fields = dict(proposer="m1", height=1, prev_hash="0" * 64, parent_model_hash="1" * 64, model_hash="2" * 64,
                  increment_hash="3" * 64)
    root = merkle_root(ids["pool"][:2])
    Proposal(**fields, sample_count=0, data_ids_root=EMPTY_IDS_ROOT, reused_count=2, reused_ids_root=root)
    for bad in (dict(sample_count=0, data_ids_root=root),  # a root for no id
                dict(sample_count=2, data_ids_root=EMPTY_IDS_ROOT),  # ids under the empty root
                dict(sample_count=0, data_ids_root=EMPTY_IDS_ROOT)):  # trains on nothing
        with pytest.raises(Exception, match="root|at least one sample"):
            Proposal(**fields, **bad)
    # a proposal without re-used samples encodes exactly as before the field existed
    p = Proposal(**fields, sample_count=2, data_ids_root=root)
    assert "reused_count" not in p.to_dict() and Proposal.from_dict(p.to_dict()) == p


# --- the coalition -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def converged_run(tmp_path_factory) -> dict:
    """3 digits partners: their data is contributed in the first rounds, then trained on again.

    The stopping rule alone (`--no-adaptive-lr`, digits' default before 2026-12-01): with the policy each
    lowering renews the coalition's gains and it runs past the 40-round cap; the two together are tested below.
    """
    out = tmp_path_factory.mktemp("converged")
    res = runner.invoke(app, ["demo", "--task", "digits", "--no-centralized", "--out", str(out), "--partners", "3",
                              "--rounds", "40", "--stop-patience", "6", "--seed", "3", "--no-adaptive-lr"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    report["_chain"] = _chain(out / "chain.db")
    return report


def test_a_reused_sample_is_trained_but_not_counted_twice_in_d_i(converged_run) -> None:
    chain = converged_run["_chain"]
    increments = [Proposal.from_dict(b.payload["proposal"]) for b in chain if b.kind == "increment"]
    assert any(p.reused_count for p in increments), "no increment re-used a contributed sample"
    # D_i is the new samples alone: strengths at the head are recomputed from them
    pool_sizes = {}
    for p in increments:
        pool_sizes[p.proposer] = pool_sizes.get(p.proposer, 0) + p.sample_count
    trained = sum(p.trained_count for p in increments)
    counted = sum(pool_sizes.values())
    assert trained > counted == converged_run["data_ids"]["contributed"] == converged_run["data_ids"]["spent_ids"]
    total = sum(pool_sizes.values())
    n = len(chain[-1].strengths)
    for member, s in chain[-1].strengths.items():
        d_i = pool_sizes.get(member, 0)
        assert s == pytest.approx(1 / n + d_i / total)
    # and far more rounds than one pass over the data would allow
    assert converged_run["accepted"] > 3 * len(pool_sizes)


def test_the_stopping_rule_stops_the_coalition(converged_run) -> None:
    assert converged_run["stopped_because"].startswith("converged"), converged_run["stopped_because"]
    assert converged_run["stopping_rule"] == {"patience": 6, "min_delta": 0.0}
    chain = converged_run["_chain"]
    assert len(chain) - 1 < 40
    progress = Progress()
    for b in chain:
        progress.observe(b)
    rule = StoppingRule(patience=6)
    assert progress.converged(rule)  # every member reads the same verdict off the chain
    early = Progress()
    for b in chain[:-1]:
        early.observe(b)
    assert not early.converged(rule)  # and it fired at the last block, not before
    verify_chain(chain, certificate_check=check_certificate)


def test_with_the_default_adaptive_policy_the_coalition_stops_once_its_rate_is_at_the_floor(tmp_path: Path) -> None:
    """Digits' default since 2026-12-01: each lowering resets the stall, so the stopping rule fires only when
    the policy has nothing left to lower (its patience is half the rule's) and P more increments gained nothing."""
    run = run_coalition(DemoOptions(task="digits", partners=3, rounds=200, seed=3, out=tmp_path, centralized=False,
                                    stop_patience=6))
    policy = run.extra["adaptive_lr"]
    assert policy is not None and policy["patience"] == 3
    assert run.extra["stopped_because"].startswith("converged"), run.extra["stopped_because"]
    chain = _chain(tmp_path / "chain.db")
    assert len(chain) - 1 < 200
    rates = [b.payload["hyperparams"]["learning_rate"] for b in chain if b.kind == "hyperparams"]
    start = get_task("digits").default_hyperparams.learning_rate
    assert rates == pytest.approx([max(start / 2 ** k, policy["min_lr"]) for k in range(1, len(rates) + 1)])
    assert rates[-1] == pytest.approx(policy["min_lr"]) == pytest.approx(start / 100)
    progress = Progress()
    for blk in chain:
        progress.observe(blk)
    assert progress.converged(StoppingRule(patience=6)) and progress.last_hyperparams < chain[-1].index


def test_a_hyperparams_block_from_the_adaptive_policy_is_certified_and_obeyed(tmp_path: Path) -> None:
    opts = DemoOptions(task="digits", partners=3, rounds=30, seed=3, out=tmp_path, centralized=False,
                       stop_patience=8, adaptive_lr=True, lr_patience=2, lr_epochs=2)
    used: list[tuple[int, float, int]] = []
    original = PartnerTrainer._hp

    def spy(self, hyperparams):
        hp = original(self, hyperparams)
        used.append((self.proposed, hp.learning_rate, hp.epochs))
        return hp

    PartnerTrainer._hp = spy  # type: ignore[method-assign]
    try:
        run = run_coalition(opts)
    finally:
        PartnerTrainer._hp = original  # type: ignore[method-assign]
    chain = _chain(tmp_path / "chain.db")
    verify_chain(chain, certificate_check=check_certificate)  # the hyperparams blocks carry certificates
    hp_blocks = [b for b in chain if b.kind == "hyperparams"]
    assert hp_blocks, run.extra["stopped_because"]
    first = hp_blocks[0]
    start = get_task("digits").default_hyperparams.learning_rate
    assert len(first.block_votes) >= 2 and first.payload["hyperparams"]["learning_rate"] == pytest.approx(start / 2)
    assert first.payload["hyperparams"]["epochs"] == 2  # the policy's cap (digits trains 4), in the same block
    assert all("epochs" not in b.payload["hyperparams"] for b in hp_blocks[1:])  # capped once
    assert run.extra["hyperparams_blocks"][0]["learning_rate"] == pytest.approx(start / 2)
    assert run.extra["adaptive_lr"]["epochs"] == 2
    # obeyed: the increments after it were trained with the lower rate and two epochs
    assert (start, 4) in {(lr, e) for _, lr, e in used}
    assert any(lr == pytest.approx(start / 2) and e == 2 for _, lr, e in used)
    assert all(e == 2 for _, lr, e in used if lr < start) and all(e == 4 for _, lr, e in used if lr == start)
    after = [b for b in chain if b.kind == "increment" and b.index > first.index]
    assert after, "no increment after the hyperparams block"


def test_the_adaptive_policy_is_every_demo_task_default_and_can_be_turned_off() -> None:
    from tclearn.learning.task_bladder import NiftiTask

    assert get_task("bladder").adaptive_lr_by_default and NiftiTask.adaptive_lr_by_default
    assert get_task("digits").adaptive_lr_by_default
    hp = get_task("bladder").default_hyperparams
    on = DemoOptions(task="bladder").lr_policy(hp, True)
    assert on is not None and on.min_lr == pytest.approx(hp.learning_rate / 100) and on.patience == 6
    assert DemoOptions(task="bladder", adaptive_lr=False).lr_policy(hp, True) is None
    assert DemoOptions(task="digits").lr_policy(hp, False) is None
    assert DemoOptions(task="digits", adaptive_lr=True).lr_policy(hp, False) is not None


def test_bladder_hospitals_train_two_epochs_once_the_rate_comes_down() -> None:
    task, hp = get_task("bladder"), get_task("bladder").default_hyperparams
    assert hp.epochs == 3 and task.epochs_after_lowering == 2
    assert get_task("digits").epochs_after_lowering is None
    assert DemoOptions(task="bladder").lr_policy(hp, True, 2).epochs == 2  # type: ignore[union-attr]
    assert DemoOptions(task="bladder").lr_policy(hp, True, None).epochs is None  # type: ignore[union-attr]
    assert DemoOptions(task="bladder", lr_epochs=0).lr_policy(hp, True, 2).epochs is None  # type: ignore[union-attr]
    assert DemoOptions(task="bladder", lr_epochs=1).lr_policy(hp, True, 2).epochs == 1  # type: ignore[union-attr]
    fewer = dataclasses.replace(hp, epochs=2)  # --max-pool-passes already trains 2: the task's cap is no cap
    assert DemoOptions(task="bladder").lr_policy(fewer, True, 2).epochs is None  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="--lr-epochs"):
        DemoOptions(task="bladder", lr_epochs=-1).check()


def test_the_demo_with_three_partners_gets_a_committee_that_fits(tmp_path: Path) -> None:
    res = runner.invoke(app, ["demo", "--task", "digits", "--partners", "3", "--rounds", "2", "--no-centralized",
                              "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "report.json").read_text())["committee"] == 2


def test_a_partner_pool_spends_nothing_until_the_chain_accepts(ids) -> None:
    spent = SpentIds()
    spent.accept(ids["pool"][:3])
    assert ids["pool"][0] in spent and len(spent) == 3
