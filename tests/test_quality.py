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
