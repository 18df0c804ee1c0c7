from tclearn.quality import PairedScores, judge


def test_non_finite_scores_are_rejected():
    nan = float("nan")
    assert not judge(PairedScores((1.0, 1.0), (nan, nan)), 0.97).accept


def test_equal_models_accepted_and_collapse_rejected():
    same = PairedScores((0.9,) * 50, (0.9,) * 50)
    assert judge(same, 1.0).accept
    collapse = PairedScores((0.9,) * 50, (0.5,) * 50)
    assert not judge(collapse, 0.97).accept


def test_small_noisy_drop_is_not_significant():
    old = tuple([1.0] * 80 + [0.0] * 20)
    new = tuple([1.0] * 79 + [0.0] * 21)
    assert judge(PairedScores(old, new), 0.99).accept


def test_drop_beyond_the_floor_is_rejected_even_when_not_significant():
    old = tuple([1.0] * 20 + [0.0] * 5)
    new = tuple([1.0] * 19 + [0.0] * 6)  # 4 points on 25 samples: noisy, but past max_drop
    assert not judge(PairedScores(old, new), 0.99).accept


def test_a_drop_on_g_is_rejected_even_when_l_hides_it_in_the_merged_score():
    g_old = tuple([1.0] * 90 + [0.0] * 10)
    g_new = tuple([1.0] * 87 + [0.0] * 13)  # 3 points down on G
    big_l = (0.0,) * 400, (1.0,) * 400     # a private L that "improves" by a lot
    scores = PairedScores(g_old, g_new, l_old=big_l[0], l_new=big_l[1])
    assert judge(scores, 0.97, max_drop=0.05).accept  # merged rises; G drop under this floor
    assert not judge(scores, 0.97, max_drop=0.02).accept


def test_the_g_floor_is_exact_at_the_boundary():
    from tclearn.quality import g_floor_broken
    assert not g_floor_broken(0.95, 0.94, 0.01)  # 3 samples of 300: exactly one point, float noise aside
    assert g_floor_broken(0.95, 0.9366, 0.01)
    old = tuple([1.0] * 285 + [0.0] * 15)
    new = tuple([1.0] * 282 + [0.0] * 18)
    assert judge(PairedScores(old, new), 0.97, max_drop=0.01).accept
    new4 = tuple([1.0] * 281 + [0.0] * 19)
    assert not judge(PairedScores(old, new4), 0.97, max_drop=0.01).accept


def test_max_drop_out_of_range_is_refused():
    import pytest
    with pytest.raises(ValueError):
        judge(PairedScores((1.0,), (1.0,)), 0.97, max_drop=1.5)
