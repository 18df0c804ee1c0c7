"""The certificate check: every rule, on a chain the protocol really committed.

A short coalition run gives a valid chain; each test alters one block the way
a dishonest general or committee could (re-signing and re-certifying it with
the keys the test holds, so only the rule under test can object).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tclearn.consensus.certificate import check_certificate
from tclearn.consensus.committee import committee_for
from tclearn.errors import InvalidBlockError
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote, Proposal
from tclearn.ledger.verify import verify_block, verify_chain
from tclearn.sim.build import make_identities, synthetic_coalition

IDS = {i.member_id: i for i in make_identities(7)}


@pytest.fixture(scope="module")
def chain() -> list[Block]:
    setup = synthetic_coalition(7, 4, seed=11)
    assert setup.coalition.run_until(3, 300)
    return setup.coalition.chain("m0")


def recertify(block: Block, voters: list[str], general: str | None = None) -> Block:
    general = general or block.general
    unsigned = replace(block, general=general, block_votes=(), general_signature=b"", block_hash="")
    signed = unsigned.signed_by(IDS[general])
    return signed.with_votes([signed.vote(IDS[v]) for v in voters])


def state_before(chain: list[Block], index: int):
    return verify_chain(chain[:index], certificate_check=check_certificate)


def test_the_committed_chain_verifies_with_the_certificate_check(chain):
    state = verify_chain(chain, certificate_check=check_certificate)
    assert state.height == len(chain) - 1 >= 3


def test_a_certificate_needs_two_thirds_of_the_committee(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    block = chain[2]
    short = block.with_votes(list(block.block_votes)[: committee.quorum - 1])
    with pytest.raises(InvalidBlockError, match="certificate needs"):
        verify_block(state, short, check_certificate)


def test_block_votes_come_from_the_committee_drawn_for_the_height(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    outsider = next(m for m in state.members if m not in committee.validators)
    block = chain[2]
    bad = block.with_votes(list(block.block_votes) + [block.vote(IDS[outsider])])
    with pytest.raises(InvalidBlockError, match="not a validator of this height"):
        verify_block(state, bad, check_certificate)


def test_the_general_is_a_member_of_the_committee(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    outsider = next(m for m in committee.proposers if m != chain[2].contributor)
    bad = recertify(chain[2], sorted(committee.validators), general=outsider)
    with pytest.raises(InvalidBlockError, match="general .* is not a validator"):
        verify_block(state, bad, check_certificate)


def test_the_strict_majority_decision_matches_the_kind(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    block = chain[2]
    assert block.kind == "increment"
    flipped = replace(block, kind="rejected", model_hash=state.head_model_hash)
    bad = recertify(flipped, sorted(committee.validators))
    with pytest.raises(InvalidBlockError, match="quality votes decide increment"):
        verify_block(state, bad, check_certificate)


def test_an_increment_needs_a_strict_majority_of_the_committee(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    block = chain[2]
    few = replace(block, quality_votes=block.quality_votes[:1])
    bad = recertify(few, sorted(committee.validators))
    with pytest.raises(InvalidBlockError, match="quality votes decide nothing yet"):
        verify_block(state, bad, check_certificate)


def test_flagged_validators_must_be_those_with_another_g_score(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    bad = recertify(replace(chain[2], payload={**chain[2].payload, "flagged": ["m1"]}), sorted(committee.validators))
    with pytest.raises(InvalidBlockError, match="flagged"):
        verify_block(state, bad, check_certificate)


def test_quality_votes_must_be_signed_by_their_validator(chain):
    state = state_before(chain, 2)
    committee = committee_for(state)
    qv = chain[2].quality_votes[0]
    forged = replace(qv, signature=bytes(64))
    bad = recertify(replace(chain[2], quality_votes=(forged,) + chain[2].quality_votes[1:]),
                    sorted(committee.validators))
    with pytest.raises(InvalidBlockError, match="does not verify"):
        verify_block(state, bad, check_certificate)


def _insider_block(chain, drop_own_vote: bool):
    """Block 2 as if a validator of its height had proposed it (the last-resort fallback)."""
    state = state_before(chain, 2)
    committee = committee_for(state)
    insider = chain[2].quality_votes[0].validator
    assert insider in committee.validators and committee.proposer_rank(insider) >= 0
    p = Proposal.from_dict(chain[2].payload["proposal"])
    own = replace(p, proposer=insider, signature=b"").signed_by(IDS[insider])
    template = chain[2].quality_votes[0]
    voters = sorted(m for m in committee.validators if not (drop_own_vote and m == insider))
    votes = tuple(replace(template, validator=m, proposal_hash=own.proposal_hash, signature=b"").signed_by(IDS[m])
                  for m in voters)
    block = replace(chain[2], contributor=insider, quality_votes=votes,
                    payload={**chain[2].payload, "proposal": own.to_dict()})
    return state, committee, recertify(block, sorted(committee.validators))


def test_the_proposer_is_never_its_own_validator(chain):
    state, committee, bad = _insider_block(chain, drop_own_vote=False)
    with pytest.raises(InvalidBlockError, match="on its own candidate"):
        verify_block(state, bad, check_certificate)


def test_a_validator_may_propose_as_the_last_fallback_and_the_others_decide(chain):
    state, committee, block = _insider_block(chain, drop_own_vote=True)
    # ranked after every member outside the committee
    outside = [m for m in state.members if m not in committee.validators]
    assert committee.proposer_rank(block.contributor) >= len(outside)
    assert len(block.quality_votes) == committee.size - 1 and all(v.accept for v in block.quality_votes)
    verify_block(state, block, check_certificate)  # k − 1 accepting votes still make a strict majority of k
    # one of them turning to reject leaves no majority: the block cannot claim an increment
    flipped = replace(block.quality_votes[0], accept=False, signature=b"").signed_by(IDS[block.quality_votes[0].validator])
    bad = recertify(replace(block, quality_votes=(flipped,) + block.quality_votes[1:]), sorted(committee.validators))
    with pytest.raises(InvalidBlockError, match="quality votes decide"):
        verify_block(state, bad, check_certificate)


def test_no_validator_proposes_in_a_committee_too_small_to_exclude_it():
    setup = synthetic_coalition(4, 2, seed=3)
    assert setup.coalition.run_until(1, 300)
    state = verify_chain(setup.coalition.chain("m0")[:1], certificate_check=check_certificate)
    committee = committee_for(state)
    assert committee.size == 2 and not set(committee.proposers) & committee.validators


def test_a_block_vote_for_another_block_does_not_count(chain):
    state = state_before(chain, 2)
    block = chain[2]
    other = BlockVote(validator=block.block_votes[0].validator, index=2, signing_hash="0" * 64).signed_by(
        IDS[block.block_votes[0].validator])
    bad = block.with_votes([other] + list(block.block_votes[1:]))
    with pytest.raises(InvalidBlockError, match="for another block"):
        verify_block(state, bad, check_certificate)
