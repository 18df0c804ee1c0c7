"""Finding 6: evidence blames the member who signed, or who sent; never the one a forger names.

Before: a proposal that failed its checks was blamed on the proposer it named
before its signature was checked, so any member could frame another; a block
vote stored unchecked became block-vote equivocation evidence; a governance
request sent by someone other than its requester vanished without a trace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tclearn.consensus.governance import GovernanceRequest
from tclearn.consensus.messages import BlockVoteMsg, GovernanceMsg, ProposalMsg, QualityVoteMsg, RoundVotes, VoteEntry
from tclearn.ledger.block import Block
from tclearn.ledger.records import BlockVote, Proposal, QualityVote
from tclearn.sim.build import make_identities, synthetic_coalition


@pytest.fixture
def cast() -> dict[str, Any]:
    """A fresh coalition at height 1: a validator, the scheduled proposer, another member and a second validator."""
    c = synthetic_coalition(6, 3, seed=5).coalition
    ids = {i.member_id: i for i in make_identities(6)}
    probe = c.drivers["m0"].core
    committee = probe.work.committee
    proposer = committee.proposers[0]
    validator, other_validator = sorted(committee.validators)[:2]
    bystander = next(m for m in sorted(probe.state.members)
                     if m not in committee.validators and m != proposer)
    core = c.drivers[validator].core
    return {"c": c, "ids": ids, "core": core, "proposer": proposer, "validator": validator,
            "other_validator": other_validator, "bystander": bystander}


def evidence_of(actions: list[Any]) -> list[Any]:
    return [a.evidence for a in actions if type(a).__name__ == "RecordEvidence"]


def forged_proposal(core: Any, proposer: str) -> Proposal:
    state = core.state
    return Proposal(proposer=proposer, height=core.work.h, prev_hash=state.head_hash,
                    parent_model_hash=state.head_model_hash, model_hash="aa" * 32, increment_hash="bb" * 32,
                    sample_count=8, data_ids_root="cc" * 32, signature=b"\x07" * 64)


def test_a_forged_proposal_is_held_against_its_sender_not_the_proposer_it_names(cast):
    core, proposer, bystander = cast["core"], cast["proposer"], cast["bystander"]
    out = core.on_message(bystander, ProposalMsg(forged_proposal(core, proposer)), core.now_ms)
    blamed = {e.member for e in evidence_of(out)}
    assert proposer not in blamed
    assert blamed == {bystander}


def test_a_forged_proposal_inside_a_quality_vote_is_held_against_the_validator_who_sent_it(cast):
    core, ids, proposer = cast["core"], cast["ids"], cast["proposer"]
    sender = cast["other_validator"]
    p = forged_proposal(core, proposer)
    vote = QualityVote(validator=sender, height=core.work.h, proposal_hash=p.proposal_hash, model_hash=p.model_hash,
                       accept=True, scores={"g_old": 0.5, "g_new": 0.6}).signed_by(ids[sender])
    out = core.on_message(sender, QualityVoteMsg(p, vote), core.now_ms)
    blamed = {e.member for e in evidence_of(out)}
    assert proposer not in blamed and sender in blamed


def test_a_proposal_its_proposer_signed_twice_still_convicts_the_proposer(cast):
    core, ids, proposer, bystander = cast["core"], cast["ids"], cast["proposer"], cast["bystander"]
    first = replace(forged_proposal(core, proposer), signature=b"").signed_by(ids[proposer])
    second = replace(first, model_hash="dd" * 32, signature=b"").signed_by(ids[proposer])
    core.on_message(proposer, ProposalMsg(first), core.now_ms)
    out = core.on_message(bystander, ProposalMsg(second), core.now_ms)  # relayed: the signatures convict
    kinds = {(e.kind, e.member) for e in evidence_of(out)}
    assert ("proposal-equivocation", proposer) in kinds


def test_an_unchecked_block_vote_makes_no_equivocation_evidence(cast):
    core, ids = cast["core"], cast["ids"]
    sender = cast["other_validator"]
    h = core.work.h
    forged = BlockVote(validator=sender, index=h, signing_hash="11" * 32, signature=b"\x09" * 64)
    core.on_message(sender, BlockVoteMsg(forged), core.now_ms)  # stored unchecked until it counts
    genuine = BlockVote(validator=sender, index=h, signing_hash="22" * 32).signed_by(ids[sender])
    block = Block(index=h, timestamp=1, kind="hyperparams", prev_hash="ab" * 32, model_hash="cd" * 32,
                  contributor=sender, strengths={}, data_ids_root="ef" * 32, quality_votes=(),
                  block_votes=(genuine,), general=sender)
    work = core.work
    work.certification.cross_check(block)  # what a verified sealed block's votes go through
    kinds = [e.kind for e in evidence_of(work.drain())]
    assert "block-vote-equivocation" not in kinds


def test_two_prevotes_make_equivocation_evidence_only_when_both_signatures_verify(cast):
    core = cast["core"]
    sender = cast["other_validator"]
    h = core.work.h
    core.work.agreements.start_block()  # the block agreement runs
    forged = (VoteEntry(0, "prevote", "11" * 32, b"\x05" * 64),)
    out = core.on_message(sender, RoundVotes(h, "block", forged), core.now_ms)
    out += core.on_message(sender, RoundVotes(h, "block", (VoteEntry(0, "prevote", "22" * 32, b"\x06" * 64),)),
                           core.now_ms)
    assert "vote-equivocation" not in [e.kind for e in evidence_of(out)]


def test_a_forged_governance_request_leaves_a_trace(cast):
    core, ids, bystander = cast["core"], cast["ids"], cast["bystander"]
    named = next(m for m in sorted(ids) if m != bystander)
    request = GovernanceRequest("hyperparams", named, core.work.h, {"hyperparams": {"epochs": 3}}, b"\x04" * 64)
    out = core.on_message(bystander, GovernanceMsg(request), core.now_ms)
    evidence = evidence_of(out)
    assert [(e.kind, e.member) for e in evidence] == [("invalid-message", bystander)]
    assert "governance request" in evidence[0].reason
