"""Put a limit on everything: a flooding peer fills no unbounded buffer and crashes nothing."""

from __future__ import annotations

from tclearn.consensus.messages import RoundVotes, StatusMsg, VoteEntry
from tclearn.sim.build import synthetic_coalition


def test_messages_for_later_heights_and_far_rounds_are_bounded():
    c = synthetic_coalition(5, 3, seed=1).coalition
    core = c.drivers["m1"].core
    h = core.work.h
    for r in range(3000):
        core.on_message("m2", RoundVotes(h + 1, "block", (VoteEntry(r, "prevote", None),)), 0)
        core.on_message("m2", RoundVotes(h + 5, "block", (VoteEntry(r, "prevote", None),)), 0)
    assert len(core.future) <= core.params.future_buffer_max
    validator = next(v for v in core.work.committee.generals)
    target = c.drivers[validator].core
    for r in range(0, 10**6, 997):
        target.on_message(next(v for v in target.work.committee.generals if v != validator),
                          RoundVotes(h, "block", (VoteEntry(r, "prevote", None),)), 0)
    inst = target.work.agreements.block
    if inst.started:
        assert max(inst.rounds) <= inst.round + target.params.round_window


def test_a_flood_of_status_messages_asks_for_blocks_at_most_once_per_retry_period():
    c = synthetic_coalition(5, 3, seed=1).coalition
    core = c.drivers["m1"].core
    asks = 0
    for _ in range(500):
        out = core.on_message("m2", StatusMsg(50, "ab" * 32), 0)
        asks += sum(1 for a in out if type(a).__name__ == "Send")
    assert asks == 1
