"""The benchmarks' own arithmetic: pooled clocks of repeated runs, 95 % intervals, where two chains part.

The README's time ratios and intervals come from these two helpers of
`bench/centralized_vs_tclearn.py` (shared by `bench/attacks_report.py`,
`bench/lr_schedule.py` and `bench/best_head.py`), so they are checked here
rather than trusted; so are the five-seed odds of `bench/five_seed_odds.py`.
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from centralized_vs_tclearn import _ci, least_times, t975  # noqa: E402
from five_seed_odds import odds, subset_means, subset_medians  # noqa: E402
from levels import leading_alike  # noqa: E402


def test_least_times_takes_each_points_least_clock_and_keeps_the_rest() -> None:
    a = [[1, 0.50, 0.90], [2, 1.00, 0.95]]
    b = [[1, 0.40, 0.90], [2, 1.20, 0.95]]
    assert least_times([a, b], 1, (0, 2)) == [[1, 0.40, 0.90], [2, 1.00, 0.95]]
    assert a == [[1, 0.50, 0.90], [2, 1.00, 0.95]]  # the inputs are left as they were


def test_least_times_counts_from_each_runs_own_start() -> None:
    # run a's data were ready at 0.10 s, run b's at 0.00 s: from that point a took 0.40 and 0.80, b 0.45 and 0.75
    a = [[1, 0.50, 0.9], [2, 0.90, 0.95]]
    b = [[1, 0.45, 0.9], [2, 0.75, 0.95]]
    out = least_times([a, b], 1, (0, 2), offsets=[0.10, 0.00])
    assert [p[1] for p in out] == pytest.approx([0.40, 0.75])  # the least offset, 0.00, added back
    out = least_times([a, b], 1, (0, 2), offsets=[0.10, 0.05])
    assert [p[1] for p in out] == pytest.approx([0.45, 0.75])  # 0.40 and 0.70 from the start, + 0.05


def test_least_times_refuses_runs_that_are_not_the_same_work() -> None:
    a = [[1, 0.5, 0.90], [2, 1.0, 0.95]]
    with pytest.raises(RuntimeError, match="not deterministic"):
        least_times([a, [[1, 0.4, 0.90], [2, 0.9, 0.96]]], 1, (0, 2))  # another score
    with pytest.raises(RuntimeError, match="not deterministic"):
        least_times([a, a[:1]], 1, (0, 2))  # a shorter curve


@pytest.mark.parametrize(("df", "t"), [(1, 12.706), (4, 2.776), (9, 2.262), (19, 2.093), (29, 2.045)])
def test_t_quantile_is_students_for_any_number_of_seeds(df: int, t: float) -> None:
    assert t975(df) == pytest.approx(t, abs=1e-3)


def test_interval_of_twenty_values_uses_t_not_the_normal_quantile() -> None:
    xs = [float(i % 7) for i in range(20)]
    m, h = _ci(xs)
    assert m == statistics.mean(xs)
    assert h == pytest.approx(2.093 * statistics.stdev(xs) / math.sqrt(20), rel=1e-3)
    assert math.isnan(_ci([1.0])[1])


def test_leading_alike_counts_the_blocks_before_two_chains_part() -> None:
    assert leading_alike(["g", "m1", "m2", "m3"], ["g", "m1", "m2", "m3"]) == 4
    assert leading_alike(["g", "m1", "x", "m3"], ["g", "m1", "m2", "m3"]) == 2
    assert leading_alike(["g", "m1"], ["g", "m1", "m2"]) == 2  # one chain stopped earlier: alike as far as it goes
    assert leading_alike(["x"], ["g"]) == 0


def test_subset_means_cover_every_five_seed_table_once() -> None:
    means = subset_means([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 5)
    assert len(means) == math.comb(6, 5)
    assert sorted(means) == pytest.approx([2.0, 2.2, 2.4, 2.6, 2.8, 3.0])  # each leaves one value out
    with pytest.raises(ValueError):
        subset_means([1.0, 2.0], 5)


def _run(seed: int, gap: float, ours: float, ref: float, held_out: bool) -> dict[str, float]:
    keys = ("gap_held_out_points", "tclearn_held_out", "centralized_held_out") if held_out else (
        "gap_points", "tclearn", "centralized")
    return {"seed": seed, keys[0]: gap, keys[1]: ours, keys[2]: ref}


def test_odds_count_the_tables_within_the_goal_and_rank_seeds_0_to_4() -> None:
    # seeds 0-4 hold the two worst gaps; seed 5 is the best: of the 6 five-seed tables, the one without
    # seed 5 is seeds 0-4 itself, worse than the other 5
    gaps = [1.0, 0.9, 0.0, 0.0, 0.0, -1.0]
    runs = [_run(s, g, 0.9 - g / 100, 0.9, held_out=True) for s, g in enumerate(gaps)]
    out = odds(list(reversed(runs)), goal=0.3)  # the order of the runs does not matter
    assert out["measured_on"] == "T" and out["seeds"] == [0, 1, 2, 3, 4, 5]
    # the six means: leaving out 1.0 -> -0.02, 0.9 -> 0.0, each 0.0 -> 0.18, -1.0 -> 0.38
    assert out["subsets"] == 6 and out["share_within_goal"] == pytest.approx(5 / 6)
    assert out["table_seeds_gap"] == pytest.approx(0.38)
    assert out["table_seeds_worse_than_share"] == pytest.approx(5 / 6)
    assert out["tclearn_sd_points"] == pytest.approx(statistics.stdev(gaps))
    assert out["centralized_sd_points"] == 0.0


def test_odds_read_the_gap_on_g_where_the_bench_has_no_t() -> None:
    runs = [_run(s, 0.5 * s, 0.97, 0.97, held_out=False) for s in range(5)]
    out = odds(runs, goal=0.3)
    assert out["measured_on"] == "G" and out["subsets"] == 1 and out["share_within_goal"] == 0.0


def test_time_odds_take_the_median_of_five_and_count_a_seed_that_never_reached_as_slowest() -> None:
    assert sorted(subset_medians([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 5)) == [3.0, 3.0, 3.0, 4.0, 4.0, 4.0]
    ratios = [2.0, 2.5, None, None, 3.5, 1.0]  # two seeds never reached the centralised score - 1 point
    runs = [{**_run(s, 0.0, 0.9, 0.9, held_out=True), "time_ratio": r} for s, r in enumerate(ratios)]
    out = odds(runs, goal=0.3, time_goal=3.0)
    assert out["unreached"] == 2 and out["time_ratio_median"] == 3.0  # the median of 1, 2, 2.5, 3.5, inf, inf
    # leaving out either never-reached seed or 3.5 leaves a median of 2.5; leaving out 1, 2 or 2.5, one of 3.5
    assert out["share_time_within_goal"] == pytest.approx(3 / 6)
    never = odds([{**r, "time_ratio": None} for r in runs], goal=0.3)
    assert never["time_ratio_median"] is None and never["share_time_within_goal"] == 0.0
