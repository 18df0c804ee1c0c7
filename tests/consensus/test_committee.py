"""The committee draw: deterministic, weighted, without replacement, proposer excluded.

The optimised draw (`weighted_sample`, cumulative walk) is checked against a
naive one (a list of tickets, one per unit of weight) on the same hash
stream; the weighting is checked statistically.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tclearn.consensus.committee import (
    HashStream, committee_for, committee_seed, draw_committee, proposer_of, seeded_permutation, turn_schedule,
    weighted_sample,
)
from tclearn.errors import ConsensusError
from tclearn.consensus.rules import max_faulty, quorum, skip_threshold
from tclearn.sim.build import make_genesis, make_identities
from tclearn.ledger.verify import verify_genesis

PARENT = "ab" * 32


def naive_weighted_sample(weights: list[tuple[str, int]], k: int, stream: HashStream) -> list[str]:
    """One ticket per unit of weight; draw a ticket, drop all of its owner's tickets, repeat."""
    tickets = [name for name, w in weights for _ in range(w)]
    chosen = []
    for _ in range(k):
        owner = tickets[stream.below(len(tickets))]
        chosen.append(owner)
        tickets = [t for t in tickets if t != owner]
    return chosen


weights_strategy = st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=9).map(
    lambda ws: [(f"m{i}", w) for i, w in enumerate(ws)])


@settings(max_examples=200, deadline=None)
@given(weights=weights_strategy, k_frac=st.floats(0, 1), seed=st.binary(min_size=1, max_size=16))
def test_the_weighted_draw_matches_the_naive_draw(weights, k_frac, seed):
    k = round(k_frac * len(weights))
    fast = weighted_sample(weights, k, HashStream(seed))
    slow = naive_weighted_sample(weights, k, HashStream(seed))
    assert fast == slow
    assert len(set(fast)) == k  # without replacement


@settings(max_examples=100, deadline=None)
@given(items=st.lists(st.text(min_size=1, max_size=3), unique=True, max_size=12), seed=st.binary(max_size=8))
def test_the_generals_order_is_a_permutation_of_the_committee(items, seed):
    out = seeded_permutation(items, HashStream(seed))
    assert sorted(out) == sorted(items)
    assert out == seeded_permutation(items, HashStream(seed))


@given(n=st.integers(min_value=1, max_value=2**600), seed=st.binary(max_size=8))
def test_below_stays_below_its_bound_even_past_256_bits(n, seed):
    s = HashStream(seed)
    for _ in range(3):
        assert 0 <= s.below(n) < n


def test_committee_draw_is_deterministic_weighted_without_replacement_and_excludes_the_proposer():
    ids = make_identities(9)
    state = verify_genesis(make_genesis(ids, 4, "cd" * 32))
    a, b = committee_for(state), committee_for(state)
    assert a == b
    assert len(a.validators) == 4 and len(a.generals) == 4
    assert proposer_of(state, 1) == "m0" and a.proposers[0] == "m0"
    assert "m0" not in a.validators
    outside = [m for m in a.proposers if m not in a.validators]
    assert set(a.proposers) == set(state.members)  # validators come last, as fallbacks of last resort
    assert list(a.proposers[: len(outside)]) == outside and set(a.proposers[len(outside):]) == a.validators
    assert set(a.proposers) | a.validators == set(state.members)


def test_without_turn_weights_members_take_equal_turns_in_join_order():
    state = verify_genesis(make_genesis(make_identities(4), 2, "cd" * 32))
    assert [proposer_of(state, h) for h in range(1, 10)] == ["m0", "m1", "m2", "m3", "m0", "m1", "m2", "m3", "m0"]


def test_turn_weights_give_each_member_its_share_of_the_turns_spread_out():
    weights = {"m0": 9, "m1": 12, "m2": 15, "m3": 60}  # a quantity-skewed split's pools
    state = verify_genesis(make_genesis(make_identities(4), 2, "cd" * 32, turn_weights=weights))
    period = [proposer_of(state, h) for h in range(1, 97)]
    assert Counter(period) == weights
    assert [proposer_of(state, h) for h in range(97, 193)] == period  # the schedule repeats with period 96
    assert all(a != b or a == "m3" for a, b in zip(period, period[1:]))  # only the largest pool proposes twice running
    assert max(len(run) for run in "".join("x" if m == "m3" else "." for m in period).split(".")) <= 2
    smallest = [h for h, m in enumerate(period) if m == "m0"]
    assert all(8 <= b - a <= 13 for a, b in zip(smallest, smallest[1:]))  # about every 96 / 9 turns


def test_the_turn_schedule_is_scale_free_and_plain_turns_for_equal_weights():
    assert turn_schedule((1, 1, 1)) == (0, 1, 2)
    assert turn_schedule((5, 5, 5)) == (0, 1, 2) * 5
    assert turn_schedule((2, 4, 6)) == turn_schedule((1, 2, 3)) * 2
    with pytest.raises(ConsensusError):
        turn_schedule((3, 0))


def test_a_member_that_joined_later_takes_the_founders_mean_weight():
    weights = {"m0": 6, "m1": 2, "m2": 1}
    state = verify_genesis(make_genesis(make_identities(3), 2, "cd" * 32, turn_weights=weights))
    state = dataclasses.replace(state, members={**state.members, "m9": b"\x01" * 32})  # as a membership block does
    period = [proposer_of(state, h) for h in range(1, 13)]
    assert Counter(period) == {"m0": 6, "m1": 2, "m2": 1, "m9": 3}  # (6 + 2 + 1) // 3


def test_the_draw_is_proportional_to_strength_statistical():
    """k = 1 draws over many seeds: frequencies ∝ weights (chi-square, 3 dof, p ≈ 0.001 bound)."""
    weights = [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    n = 20_000
    counts = Counter(weighted_sample(weights, 1, HashStream(committee_seed(PARENT, h)))[0] for h in range(1, n + 1))
    total = sum(w for _, w in weights)
    chi2 = sum((counts[name] - n * w / total) ** 2 / (n * w / total) for name, w in weights)
    assert chi2 < 16.27, (chi2, counts)


def test_inclusion_probability_of_successive_sampling_statistical():
    """k = 2 of weights (1, 1, 2): P(include the heavy one) = 1/2 + 2·(1/4)(2/3) = 5/6."""
    weights = [("x", 1), ("y", 1), ("z", 2)]
    n = 12_000
    hits = sum("z" in weighted_sample(weights, 2, HashStream(committee_seed(PARENT, h))) for h in range(1, n + 1))
    p = 5 / 6
    assert abs(hits / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_draw_committee_uses_parent_and_height():
    w = [(f"m{i}", 1) for i in range(10)]
    seen = {tuple(draw_committee(w, 4, PARENT, h)[0]) for h in range(1, 30)}
    assert len(seen) > 20
    assert draw_committee(w, 4, PARENT, 3) == draw_committee(w, 4, PARENT, 3)
    assert draw_committee(w, 4, PARENT, 3) != draw_committee(w, 4, "ef" * 32, 3)


@given(k=st.integers(min_value=1, max_value=300))
def test_quorum_arithmetic(k):
    q, f = quorum(k), max_faulty(k)
    assert 3 * q >= 2 * k and 3 * (q - 1) < 2 * k  # q = ceil(2k/3)
    assert 3 * f < k
    assert 2 * q - k > f  # two quorums share an honest member
    assert q <= k - f  # the honest members alone make a quorum
    assert skip_threshold(k) > f
