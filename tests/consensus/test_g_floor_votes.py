"""Accepting votes that the shared G contradicts do not count (`rules.decide_kind` with max_drop)."""

from tclearn.consensus.rules import decide_kind, flagged_validators
from tclearn.ledger.records import QualityVote


def _vote(v: str, accept: bool, g_old: float, g_new: float) -> QualityVote:
    return QualityVote(validator=v, height=3, proposal_hash="ab" * 32, model_hash="cd" * 32, accept=accept,
                       scores={"g_old": g_old, "g_new": g_new})


def test_accept_votes_for_a_g_collapse_do_not_count():
    votes = [_vote("m1", True, 0.9, 0.5), _vote("m2", True, 0.9, 0.5), _vote("m3", False, 0.9, 0.5)]
    assert decide_kind(votes, 3) == "increment"  # the bare majority rule
    assert decide_kind(votes, 3, 0.01) == "rejected"


def test_forged_g_scores_in_the_minority_do_not_count():
    honest = [_vote("m1", False, 0.9, 0.5), _vote("m2", False, 0.9, 0.5), _vote("m3", False, 0.9, 0.5)]
    forged = [_vote("m4", True, 0.9, 0.9), _vote("m5", True, 0.9, 0.9)]
    votes = honest[:2] + forged
    assert decide_kind(votes, 5, 0.01) == "rejected"
    assert flagged_validators(votes) == []  # no strict majority of G among 4 votes: nobody flagged
    votes = honest + forged
    assert decide_kind(votes, 5, 0.01) == "rejected"
    assert flagged_validators(votes) == ["m4", "m5"]


def test_honest_accepts_still_count():
    votes = [_vote("m1", True, 0.9, 0.905), _vote("m2", True, 0.9, 0.905), _vote("m3", False, 0.9, 0.905)]
    assert decide_kind(votes, 3, 0.01) == "increment"
    small_dip = [_vote("m1", True, 0.9, 0.892), _vote("m2", True, 0.9, 0.892)]
    assert decide_kind(small_dip, 3, 0.01) == "increment"


def test_votes_without_g_scores_are_taken_at_their_word():
    votes = [QualityVote(validator=v, height=3, proposal_hash="ab" * 32, model_hash="cd" * 32, accept=True,
                         scores={}) for v in ("m1", "m2")]
    assert decide_kind(votes, 3, 0.01) == "increment"
