"""The phase table decides (h11's way): what a height takes depends on our role and its phase, as `phases` says."""

from __future__ import annotations

from typing import Any

import pytest

import tclearn.consensus.phases as phases
from tclearn.consensus import messages
from tclearn.consensus.actions import Evaluate, RecordEvidence
from tclearn.consensus.messages import ProposalMsg, QualityVoteMsg, StatusMsg
from tclearn.consensus.phases import HEIGHT_INPUTS, IGNORED_BY, Admission, HeightPhase, Role, admit
from tclearn.ledger.records import Proposal, QualityVote
from tclearn.sim.build import make_identities, synthetic_coalition


def test_every_kind_in_the_table_is_a_message_of_one_height() -> None:
    named = set().union(*HEIGHT_INPUTS.values(), *IGNORED_BY.values())
    for kind in named:
        cls = getattr(messages, kind)
        assert "height" in cls.__dataclass_fields__ or "proposal" in cls.__dataclass_fields__ \
            or "vote" in cls.__dataclass_fields__ or "request" in cls.__dataclass_fields__, kind
    for role in Role:
        for phase in HeightPhase:
            assert not HEIGHT_INPUTS[(role, phase)] & IGNORED_BY[role], (role, phase)


def test_an_observer_takes_only_the_outcome() -> None:
    assert admit(Role.OBSERVER, HeightPhase.WAITING, "CommittedMsg") is Admission.ACCEPT
    assert admit(Role.OBSERVER, HeightPhase.WAITING, "QualityVoteMsg") is Admission.IGNORE
    assert admit(Role.VALIDATOR, HeightPhase.AGREEING, "QualityVoteMsg") is Admission.ACCEPT
    assert admit(Role.VALIDATOR, HeightPhase.WAITING, "StatusMsg") is Admission.REFUSE


@pytest.fixture
def cast() -> dict[str, Any]:
    c = synthetic_coalition(6, 3, seed=5).coalition
    ids = {i.member_id: i for i in make_identities(6)}
    committee = c.drivers["m0"].core.work.committee
    proposer = committee.proposers[0]
    validator = sorted(committee.validators)[0]
    observer = next(m for m in sorted(c.members) if m not in committee.validators and m != proposer)
    return {"c": c, "ids": ids, "proposer": proposer, "validator": validator, "observer": observer,
            "other": sorted(committee.validators)[1]}


def _proposal(core: Any, ids: dict[str, Any], proposer: str) -> Proposal:
    state = core.state
    return Proposal(proposer=proposer, height=core.work.h, prev_hash=state.head_hash,
                    parent_model_hash=state.head_model_hash, model_hash="aa" * 32, increment_hash="bb" * 32,
                    sample_count=8, data_ids_root="cc" * 32).signed_by(ids[proposer])


def test_an_observer_drops_a_quality_vote_without_blaming_anyone(cast: dict[str, Any]) -> None:
    core = cast["c"].drivers[cast["observer"]].core
    p = _proposal(core, cast["ids"], cast["proposer"])
    sender = cast["validator"]
    vote = QualityVote(validator=sender, height=core.work.h, proposal_hash=p.proposal_hash, model_hash=p.model_hash,
                       accept=True, scores={"g_old": 0.5, "g_new": 0.6}).signed_by(cast["ids"][sender])
    assert core.on_message(sender, QualityVoteMsg(p, vote), core.now_ms) == []


def test_a_message_the_table_does_not_list_is_a_protocol_error_of_the_sender(cast: dict[str, Any]) -> None:
    work = cast["c"].drivers[cast["validator"]].core.work
    work.on_message(cast["other"], StatusMsg(0, "ab" * 32))  # not a message of one height
    evidence = [a.evidence for a in work.drain() if isinstance(a, RecordEvidence)]
    assert [(e.kind, e.member) for e in evidence] == [("invalid-message", cast["other"])]
    assert "not accepted by a validator in phase waiting" in evidence[0].reason


def test_the_table_decides_what_a_validator_evaluates(cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    core = cast["c"].drivers[cast["validator"]].core
    p = _proposal(core, cast["ids"], cast["proposer"])
    assert any(isinstance(a, Evaluate) for a in core.on_message(cast["proposer"], ProposalMsg(p), core.now_ms))
    # a table in which a waiting validator ignores proposals: the same proposal is not even looked at
    row = (Role.VALIDATOR, HeightPhase.WAITING)
    monkeypatch.setitem(phases.HEIGHT_INPUTS, row, HEIGHT_INPUTS[row] - {"ProposalMsg"})
    monkeypatch.setitem(phases.IGNORED_BY, Role.VALIDATOR, frozenset({"ProposalMsg"}))
    fresh = synthetic_coalition(6, 3, seed=5).coalition.drivers[cast["validator"]].core
    assert fresh.on_message(cast["proposer"], ProposalMsg(p), fresh.now_ms) == []
