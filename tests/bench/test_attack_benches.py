"""The attack benchmarks' own bookkeeping: which partners are the attackers, and the paired figures.

`bench/honest_data_ceiling.py` trains a reference on the honest partners'
pools only, so it must drop exactly the partners `run_coalition` makes
attackers; its differences and `bench/attacks_report.py --paired` give the
README's figures, so their arithmetic is checked here rather than trusted.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from attacks import _malicious_indices  # noqa: E402
from attacks_report import paired_table  # noqa: E402
from honest_data_ceiling import summarise  # noqa: E402

from tclearn.founding import hospital_names  # noqa: E402


@pytest.mark.parametrize("n,m", [(5, 1), (5, 2), (10, 3)])
def test_the_benches_attackers_are_the_ones_the_demo_picks(n: int, m: int) -> None:
    names = hospital_names(n)
    for seed in range(20):
        demo = sorted(random.Random(seed).sample(names[1:], m))  # run_coalition's draw
        assert sorted(names[k] for k in _malicious_indices(n, m, seed)) == demo


def _ceiling_run(seed: int, all_score: float, honest_score: float) -> dict:
    return {"split": "non-iid", "fraction": "30%/10", "seed": seed,
            "all": {"score": all_score, "samples": 100}, "honest": {"score": honest_score, "samples": 70},
            "honest_minus_all_points": 100 * (honest_score - all_score)}


def test_the_ceiling_is_set_beside_the_clean_and_the_lazy_run_of_each_seed() -> None:
    raw = {"a": _ceiling_run(0, 0.98, 0.97), "b": _ceiling_run(1, 0.96, 0.96)}
    finals = {("non-iid", "0%/10", None, 0): 0.99, ("non-iid", "0%/10", None, 1): 0.97,
              ("non-iid", "30%/10", "lazy", 0): 0.95, ("non-iid", "30%/10", "lazy", 1): 0.96}
    cell = summarise(raw, finals)["non-iid 30%/10"]
    assert cell["seeds"] == [0, 1]
    assert cell["honest_minus_all_points"]["runs"] == pytest.approx([-1.0, 0.0])
    assert cell["honest_minus_clean_points"]["runs"] == pytest.approx([-2.0, -1.0])
    assert cell["honest_minus_lazy_points"]["runs"] == pytest.approx([2.0, 0.0])
    assert cell["honest_share_of_samples"] == pytest.approx(0.7)
    del finals[("non-iid", "30%/10", "lazy", 1)]  # a seed without its lazy run: no figure rather than a wrong one
    assert "honest_minus_lazy_points" not in summarise(raw, finals)["non-iid 30%/10"]


def _attack_file(path: Path, scores: dict[tuple[str | None, int], float]) -> Path:
    runs = [{"system": "tclearn", "split": "non-iid", "fraction": "0%/10" if attack is None else "30%/10",
             "attack": attack, "seed": seed, "final_score": score, "collude": False}
            for (attack, seed), score in scores.items()]
    path.write_text(json.dumps({"seeds": 2, "runs": runs}))
    return path


def test_paired_table_compares_each_seed_with_its_own_clean_run(tmp_path: Path) -> None:
    before = _attack_file(tmp_path / "a.json", {(None, 0): 0.98, (None, 1): 0.97, ("lazy", 0): 0.96, ("lazy", 1): 0.96})
    after = _attack_file(tmp_path / "b.json", {(None, 0): 0.99, (None, 1): 0.97, ("lazy", 0): 0.98, ("lazy", 1): 0.97})
    row = [line for line in paired_table(before, after).splitlines() if "lazy" in line]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    # before: -2, -1 (mean -1.5); after: -1, 0 (-0.5); change +1, +1; the clean run's own change +1, 0
    assert cells[1] == "2"
    assert cells[2].startswith("-1.50") and cells[3].startswith("-0.50")
    assert cells[4] == "+1.00 ± 0.00" and cells[5].startswith("+0.50")
