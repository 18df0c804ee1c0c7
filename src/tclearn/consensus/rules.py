"""Quorum and decision arithmetic: small pure functions, property-tested.

With k validators of which f < k/3 may be faulty:

* `quorum(k)` = ceil(2k/3). Two quorums share 2q − k ≥ f + 1 members, so at
  least one honest one; and k − f ≥ q honest members can form a quorum alone.
* `skip_threshold(k)` = k − q + 1 ≥ f + 1: that many members seen in later
  rounds include an honest one, so a lagging member may jump ahead.
* Commit announcements are counted against a full quorum q, not f + 1: it
  costs nothing (no signature) and keeps members outside the committee safe
  for up to q − 1 lying validators, beyond the f < k/3 the agreement needs.
* `decide_kind`: a strict majority of the *committee* (2A > k) accepting makes
  an increment. A rejection needs either ceil(k/2) rejections (acceptance can
  no longer win) or a quorum of votes without an accepting majority (so a
  silent validator cannot stall a round where honest votes split).
* An accepting vote counts as one only when its G scores are those of the
  strict majority (if there is one) and do not break the quality rule's G
  floor (`tclearn.quality.g_floor_broken`): G is shared, so that part of the
  rule is checkable by everyone, and validators who accept a candidate that
  G condemns, or who invent G scores to make it pass, are outvoted, not
  followed. This is what stops colluding validators from waving each other's
  degrading candidates through while they are not a majority of the votes.
* `flagged_validators`: the G score is the same on every honest validator
  (deterministic evaluation of the same two models on the same G); those
  whose (g_old, g_new) differ from a strict majority's are flagged.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

from tclearn.ledger.records import QualityVote
from tclearn.quality import g_floor_broken

__all__ = ["quorum", "skip_threshold", "max_faulty", "decide_kind", "flagged_validators", "g_scores", "majority_g_scores"]


def quorum(k: int) -> int:
    """ceil(2k/3), in integers."""
    return (2 * k + 2) // 3


def skip_threshold(k: int) -> int:
    """k − quorum(k) + 1: more than the faulty members a committee of k tolerates."""
    return k - quorum(k) + 1


def max_faulty(k: int) -> int:
    """The most faulty validators a committee of k tolerates (the largest f < k/3)."""
    return (k - 1) // 3


def decide_kind(votes: Iterable[QualityVote], k: int, max_drop: float | None = None) -> str | None:
    """"increment", "rejected", or None (not decided yet) from the votes of distinct validators.

    With `max_drop`, accepting votes that G contradicts count as rejections
    (see the module docstring).
    """
    votes = list(votes)
    majority = _majority_g(votes) if max_drop is not None else None
    accepts = rejects = 0
    for vote in votes:
        if vote.accept and (max_drop is None or _g_supports_accept(vote, majority, max_drop)):
            accepts += 1
        else:
            rejects += 1
    if 2 * accepts > k:
        return "increment"
    if 2 * rejects >= k or accepts + rejects >= quorum(k):
        return "rejected"
    return None


def g_scores(vote: QualityVote) -> tuple[float, float] | None:
    """The vote's (g_old, g_new), or None when it does not carry them."""
    g_old, g_new = vote.scores.get("g_old"), vote.scores.get("g_new")
    if g_old is None or g_new is None:
        return None
    return (float(g_old), float(g_new))


def majority_g_scores(votes: Sequence[QualityVote]) -> tuple[float, float] | None:
    """The (g_old, g_new) that a strict majority of `votes` carries, or None."""
    return _majority_g(votes)


def _majority_g(votes: Sequence[QualityVote]) -> tuple[float, float] | None:
    counts = Counter(g_scores(v) for v in votes)
    if not counts:
        return None
    majority, count = max(counts.items(), key=lambda kv: (kv[1], repr(kv[0])))
    return majority if 2 * count > len(votes) else None


def _g_supports_accept(vote: QualityVote, majority: tuple[float, float] | None, max_drop: float) -> bool:
    g = g_scores(vote)
    if g is None:
        return True  # a vote without G scores (no G in this coalition): nothing to check
    if majority is not None and g != majority:
        return False
    return not g_floor_broken(g[0], g[1], max_drop)


def flagged_validators(votes: Sequence[QualityVote]) -> list[str]:
    """Validators whose G scores differ from those of a strict majority of `votes` (sorted)."""
    if not votes:
        return []
    counts = Counter(g_scores(v) for v in votes)
    majority, count = max(counts.items(), key=lambda kv: (kv[1], repr(kv[0])))
    if 2 * count <= len(votes):
        return []
    return sorted(v.validator for v in votes if g_scores(v) != majority)
