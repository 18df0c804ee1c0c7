"""One scenario per rule of the paper (DESIGN.md §1), named after the sentence it checks.

Each runs a small synthetic coalition through the real drivers and cores on
the simulated network; the coalition's monitor checks the safety invariants
at every commit, and every test asserts it found no violation.
"""

from __future__ import annotations

from collections import Counter

from tclearn.consensus.committee import committee_for
from tclearn.consensus.certificate import check_certificate
from tclearn.consensus.rules import g_scores
from tclearn.ledger.records import Proposal
from tclearn.ledger.verify import verify_chain, verify_genesis
from tclearn.sim.build import make_genesis, make_identities, synthetic_coalition
from tclearn.sim.network import FaultModel
from tclearn.sim.synthetic import ModelRegistry

SHORT = FaultModel(delay_min=1, delay_max=2)


def first_committee(members: int, committee: int, seed: int):
    ids = make_identities(members)
    genesis = make_genesis(ids, committee, ModelRegistry(seed).genesis_hash)
    return committee_for(verify_genesis(genesis))


def seed_where(members: int, committee: int, pred) -> int:
    """The first seed whose height-1 committee satisfies `pred` (the draw depends on the genesis)."""
    for seed in range(500):
        if pred(first_committee(members, committee, seed)):
            return seed
    raise AssertionError("no seed found")


def same_chains(c, members) -> None:
    chains = {m: [b.block_hash for b in c.chain(m)] for m in members}
    shortest = min(len(x) for x in chains.values())
    assert len({tuple(x[:shortest]) for x in chains.values()}) == 1


def test_a_byzantine_general_with_a_wrong_model_hash_is_refused_and_the_general_rotates():
    seed = seed_where(7, 4, lambda c: c.generals[0] == "m2")
    setup = synthetic_coalition(7, 4, seed=seed, byzantine={"m2": {"bad-general"}}, faults=SHORT)
    c = setup.coalition
    c.lies["m2"].flaws = ("model_hash",)
    assert c.run_until(1, 300)
    block = c.chain("m1")[1]
    assert block.general != "m2" and block.kind == "increment"
    assert any(e.kind == "invalid-block" and e.member == "m2" for _, e in c.evidence)
    rounds = [c.drivers[m].core.rounds_of.get(1, 0) for m in first_committee(7, 4, seed).validators if m != "m2"]
    assert max(rounds) >= 2  # round 0 failed, a later general's block was committed
    assert not c.monitor.violations


def test_an_equivocating_validator_is_caught():
    seed = seed_where(7, 4, lambda c: "m3" in c.validators)
    setup = synthetic_coalition(7, 4, seed=seed, byzantine={"m3": {"equivocate"}}, faults=SHORT)
    c = setup.coalition
    assert c.run_until(2, 400)
    caught = [e for _, e in c.evidence if e.member == "m3" and e.kind.endswith("equivocation")]
    assert caught, "no evidence against the equivocating validator"
    transferable = [e for e in caught if len(e.records) == 2]
    assert transferable, "two signed records of one validator convince anyone"
    assert not c.monitor.violations


def test_a_partition_heals_and_the_lagging_member_catches_up():
    setup = synthetic_coalition(7, 4, seed=7, faults=FaultModel(delay_min=1, delay_max=2))
    c = setup.coalition
    c.network.faults.groups = [frozenset({"m6"}), frozenset(c.members) - {"m6"}]
    others = [m for m in c.members if m != "m6"]
    c.run(120)
    assert c.drivers["m6"].height < min(c.drivers[m].height for m in others)
    c.network.faults.groups = None
    target = c.monitor.height + 1
    assert c.run_until(target, 400)
    same_chains(c, c.members)
    verify_chain(c.chain("m6"), certificate_check=check_certificate)
    assert not c.monitor.violations


def test_a_crashed_node_restarts_from_its_stored_chain_and_rejoins_without_voting_twice():
    seed = seed_where(7, 4, lambda c: "m1" in c.validators)
    setup = synthetic_coalition(7, 4, seed=seed, faults=SHORT)
    c = setup.coalition
    for _ in range(200):  # crash m1 right after it voted in height 1's agreement
        c.step()
        snap = c.safety["m1"].load()
        if snap is not None and snap.height == 1 and snap.instances.get("block") and snap.instances["block"].votes:
            break
    voted = c.safety["m1"].load()
    c.crash("m1")
    c.run(30)
    c.restart("m1")
    assert c.drivers["m1"].core.work.agreements.block.my_votes.items() >= {
        (r, ph): v for r, ph, v in voted.instances["block"].votes}.items()
    assert c.run_until(c.monitor.height + 2, 400)
    assert not [e for _, e in c.evidence if e.member == "m1"], "the restarted member contradicted itself"
    same_chains(c, c.members)
    assert not c.monitor.violations


def test_always_accept_colluders_cannot_commit_a_degrading_increment_with_an_honest_committee_majority():
    byz = {"m0": {"degrading-proposer"}, "m1": {"always-accept"}, "m2": {"always-accept"}}
    setup = synthetic_coalition(10, 7, seed=1, byzantine=byz, faults=SHORT)
    c = setup.coalition
    assert c.run_until(1, 300)
    block = c.chain("m5")[1]
    assert block.contributor == "m0" and block.kind == "rejected"
    assert block.model_hash == c.chain("m5")[0].model_hash  # the head model is unchanged
    accepts = [v.validator for v in block.quality_votes if v.accept]
    assert set(accepts) <= {"m1", "m2"}
    assert not c.monitor.violations


def test_the_proposer_is_never_its_own_validator():
    setup = synthetic_coalition(7, 4, seed=9, faults=SHORT)
    c = setup.coalition
    assert c.run_until(7, 600)
    state = verify_genesis(c.genesis)
    for block in c.chain("m0")[1:]:
        committee = committee_for(state)
        proposer = Proposal.from_dict(block.payload["proposal"]).proposer
        assert proposer not in committee.validators
        assert proposer not in {v.validator for v in block.quality_votes}
        assert proposer not in {v.validator for v in block.block_votes}
        state = state.apply(block)


def test_partners_take_turns_as_proposers():
    setup = synthetic_coalition(7, 4, seed=2, faults=SHORT)
    c = setup.coalition
    assert c.run_until(7, 600)
    assert [b.contributor for b in c.chain("m3")[1:8]] == [f"m{i}" for i in range(7)]


def test_partners_take_turns_in_proportion_to_their_genesis_turn_weights():
    """consensus.turn_weights: m0 proposes four times as often as each other member; the chains still agree."""
    weights = {"m0": 4, "m1": 1, "m2": 1, "m3": 1, "m4": 1}
    setup = synthetic_coalition(5, 3, seed=2, faults=SHORT, turn_weights=weights)
    c = setup.coalition
    assert c.run_until(16, 1200)
    proposers = [b.contributor for b in c.chain("m3")[1:17]]
    assert Counter(proposers) == {"m0": 8, "m1": 2, "m2": 2, "m3": 2, "m4": 2}
    assert proposers[:8] == ["m0", "m1", "m0", "m2", "m3", "m0", "m4", "m0"]  # spread out, not four in a row
    same_chains(c, [f"m{i}" for i in range(5)])
    assert not c.monitor.violations


def test_a_silent_proposer_is_replaced_by_the_next_in_turn():
    setup = synthetic_coalition(7, 4, seed=4, byzantine={"m0": {"silent"}}, faults=SHORT)
    c = setup.coalition
    assert c.run_until(1, 400)
    block = c.chain("m3")[1]
    committee = first_committee(7, 4, 4)
    assert block.contributor == committee.proposers[1]
    assert not c.monitor.violations


def test_validators_whose_g_score_differs_from_the_majority_are_flagged():
    seed = seed_where(7, 4, lambda c: "m3" in c.validators)
    setup = synthetic_coalition(7, 4, seed=seed, byzantine={"m3": {"lie-scores"}}, faults=SHORT)
    c = setup.coalition
    assert c.run_until(4, 500)
    # m3 lies on the wire; a block it builds as general carries its own, honest vote
    def lied(b) -> bool:
        mine = [v for v in b.quality_votes if v.validator == "m3"]
        return bool(mine) and any(g_scores(v) != g_scores(mine[0]) for v in b.quality_votes if v.validator != "m3")
    with_liar = [b for b in c.chain("m0")[1:] if lied(b)]
    assert with_liar
    assert all(b.payload["flagged"] == ["m3"] for b in with_liar)
    assert all(b.payload["flagged"] == [] for b in c.chain("m0")[1:] if b not in with_liar)
    assert not c.monitor.violations


def test_every_member_checks_the_certificate_before_appending_a_forged_seal_is_refused():
    seed = seed_where(7, 4, lambda c: c.generals[0] == "m4")
    setup = synthetic_coalition(7, 4, seed=seed, byzantine={"m4": {"forge-seal"}}, faults=SHORT)
    c = setup.coalition
    assert c.run_until(4, 500)
    same_chains(c, c.honest)
    assert not c.monitor.violations


def test_rejected_candidates_are_recorded_and_strengths_follow_accepted_samples_only():
    setup = synthetic_coalition(7, 4, seed=6, byzantine={"m1": {"degrading-proposer"}}, faults=SHORT)
    c = setup.coalition
    assert c.run_until(4, 500)
    kinds = Counter((b.contributor, b.kind) for b in c.chain("m2")[1:5])
    assert kinds[("m1", "rejected")] == 1
    state = verify_chain(c.chain("m2"), certificate_check=check_certificate)
    assert state.contributions["m1"] == 0 and state.contributions["m0"] > 0


def test_the_same_blocks_are_committed_with_messages_on_the_wire():
    setup = synthetic_coalition(5, 3, seed=8, wire=True, faults=FaultModel(drop=0.05, duplicate=0.05,
                                                                         delay_min=1, delay_max=3))
    c = setup.coalition
    assert c.run_until(3, 600)
    assert c.network.stats.bytes > 0
    same_chains(c, c.members)
    assert not c.monitor.violations


def test_a_validator_with_data_proposes_when_every_member_outside_the_committee_passes():
    # only m4 has anything to train on; at heights where it is drawn as a validator the members outside
    # the committee all pass, and the height used to stall for good
    setup = synthetic_coalition(5, 3, seed=5, no_trainer=("m0", "m1", "m2", "m3"))
    c = setup.coalition
    assert c.run_until(6, 3000)
    chain = c.chain("m0")
    state = verify_chain(chain, certificate_check=check_certificate)
    assert state.height >= 6 and all(b.contributor == "m4" for b in chain[1:])
    inside = []
    for i, b in enumerate(chain[1:], 1):
        committee = committee_for(verify_chain(chain[:i], certificate_check=check_certificate))
        if "m4" in committee.validators:
            inside.append(i)
            assert "m4" not in {v.validator for v in b.quality_votes}  # never its own validator
    assert inside, "no height drew m4 as a validator: pick another seed"
    assert not c.monitor.violations
