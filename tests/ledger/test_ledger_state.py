"""Chain state: the fast strengths are the exact ones; the model history is shared but never aliased."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from chainmaker import ChainMaker
from tclearn.ledger.state import ChainState, ModelHistory


@given(st.lists(st.integers(0, 10**12), min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_strengths_are_the_exact_fractions_rounded_once(contributions: list[int]) -> None:
    maker = ChainMaker(rng=random.Random(0), n_members=2, committee_size=1)
    maker.genesis()
    assert maker.state is not None
    members = {f"m{i}": bytes(32) for i in range(len(contributions))}
    state = replace(maker.state, members=members, contributions=dict(zip(members, contributions)))
    exact = state.exact_strengths()
    assert state.strengths() == {m: float(s) for m, s in exact.items()}
    assert list(state.strengths()) == list(members)


def test_model_history_grows_in_place_and_forks_by_copying() -> None:
    base = ModelHistory(("g",))
    a = base.appended("a1")
    a2 = a.appended("a2")
    b = base.appended("b1")  # a fork from base: must not see a1
    assert tuple(base) == ("g",) and len(base) == 1
    assert tuple(a) == ("g", "a1") and tuple(a2) == ("g", "a1", "a2")
    assert tuple(b) == ("g", "b1") and b[1] == "b1" and a[1] == "a1"
    assert a2 == ("g", "a1", "a2") and a2[-1] == "a2" and a2[0:2] == ("g", "a1")
    assert a2 + ("x",) == ("g", "a1", "a2", "x")
    try:
        a[2]
    except IndexError:
        pass
    else:
        raise AssertionError("a state must not see its successors' models")


def test_folding_a_chain_twice_gives_equal_states() -> None:
    maker = ChainMaker(rng=random.Random(5))
    maker.genesis()
    for _ in range(30):
        maker.random_block()
    first = ChainState.from_genesis(maker.blocks[0])
    second = ChainState.from_genesis(maker.blocks[0])
    for b in maker.blocks[1:]:
        first = first.apply(b)
    for b in maker.blocks[1:]:
        second = second.apply(b)
    assert first == second
    assert list(first.model_by_index) == [b.model_hash for b in maker.blocks]
