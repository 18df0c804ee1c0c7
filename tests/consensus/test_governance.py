"""Governance blocks: revert, hyper-parameters, membership — proposed, certified, verified."""

from __future__ import annotations

import pytest

from tclearn.consensus.certificate import check_certificate
from tclearn.consensus.governance import GovernanceRequest, request_problem
from tclearn.errors import ConsensusError
from tclearn.identity import Identity
from tclearn.ledger.verify import verify_chain
from tclearn.sim.build import synthetic_coalition


def _blocks_of(coalition, kind):
    return [b for b in coalition.chain("m1") if b.kind == kind]


def test_an_authorised_member_reverts_the_head_to_an_earlier_model():
    setup = synthetic_coalition(7, 4, seed=3)
    c = setup.coalition
    assert c.run_until(3, 300)
    target_model = c.chain("m1")[1].model_hash
    c.drivers["m0"].request_revert(1)
    assert c.run_until(c.monitor.height + 2, 300)
    reverts = _blocks_of(c, "revert")
    assert len(reverts) == 1 and reverts[0].payload["target"] == 1 and reverts[0].contributor == "m0"
    state = verify_chain(c.chain("m1"), certificate_check=check_certificate)
    assert state.model_by_index[reverts[0].index] == target_model
    assert not c.monitor.violations


def test_only_authorised_members_may_ask_for_a_revert():
    setup = synthetic_coalition(7, 4, seed=3)
    c = setup.coalition
    assert c.run_until(2, 300)
    with pytest.raises(ConsensusError, match="not authorised"):
        c.drivers["m3"].request_revert(1)


def test_a_hyperparams_update_is_certified_and_changes_the_chain_state():
    setup = synthetic_coalition(7, 4, seed=4)
    c = setup.coalition
    assert c.run_until(2, 300)
    c.drivers["m2"].request_hyperparams({"learning_rate": 0.005, "epochs": 2})
    assert c.run_until(c.monitor.height + 2, 300)
    blocks = _blocks_of(c, "hyperparams")
    assert len(blocks) == 1 and blocks[0].contributor == "m2"
    state = verify_chain(c.chain("m4"), certificate_check=check_certificate)
    assert state.hyperparams["learning_rate"] == 0.005 and state.hyperparams["epochs"] == 2
    with pytest.raises(ConsensusError, match="learning_rate"):
        c.drivers["m2"].request_hyperparams({"learning_rate": -1.0})


def test_the_founder_adds_a_member_by_a_membership_block():
    setup = synthetic_coalition(7, 4, seed=5)
    c = setup.coalition
    assert c.run_until(2, 300)
    newcomer = Identity.from_seed("m7", b"newcomer")
    c.drivers["m0"].request_membership([{"id": "m7", "public_key": newcomer.public_key}], [])
    assert c.run_until(c.monitor.height + 1, 300)
    assert len(_blocks_of(c, "membership")) == 1
    state = verify_chain(c.chain("m1"), certificate_check=check_certificate)
    assert state.members["m7"] == newcomer.public_key
    with pytest.raises(ConsensusError, match="founder"):
        c.drivers["m3"].request_membership([], ["m6"])


def test_a_request_is_bound_to_its_height_and_signed():
    setup = synthetic_coalition(5, 3, seed=1)
    c = setup.coalition
    state = c.drivers["m0"].state
    ident = c.identities["m0"]
    request = GovernanceRequest("revert", "m0", state.height + 2, {"target": 0}).signed_by(ident)
    assert "height" in request_problem(state, request)
    c.run_until(1, 200)
    state = c.drivers["m0"].state
    forged = GovernanceRequest("hyperparams", "m1", state.height + 1, {"hyperparams": {"epochs": 3}},
                               signature=bytes(64))
    verifier = c.drivers["m0"].verifier
    assert "does not verify" in request_problem(state, forged, verifier.verify)
    # a requester the chain does not list (never added, or removed) is refused before its signature is checked
    outsider = Identity.from_seed("m9", b"outsider")
    stranger = GovernanceRequest("hyperparams", "m9", state.height + 1, {"hyperparams": {"epochs": 3}}).signed_by(
        outsider)
    assert request_problem(state, stranger, verifier.verify) == "requester m9 is not a member"


def test_a_trainer_that_asks_for_them_trains_with_the_chains_current_hyperparams():
    setup = synthetic_coalition(7, 4, seed=4)
    c = setup.coalition
    seen: list[dict] = []
    inner = setup.trainers["m5"]

    class Recording:
        def train(self, parent_model_hash, height, hyperparams):
            seen.append(hyperparams)
            return inner.train(parent_model_hash, height)

    c.drivers["m5"].trainer = Recording()
    assert c.run_until(2, 300)
    c.drivers["m2"].request_hyperparams({"learning_rate": 0.005})
    assert c.run_until(13, 1200)
    assert seen and seen[-1]["learning_rate"] == 0.005
