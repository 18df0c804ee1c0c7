"""Every validator enforces the governance rules, not only the node that asks.

A requester's own node refuses a revert to a rejected block, a membership
change that leaves the committee impossible, or hyper-parameters outside the
genesis rules; a modified node could still sign and send such a request. These
tests sign the requests directly (bypassing the requester's check) and show
that each validator refuses them (`request_problem`, evidence against the
sender) and that a block carrying one fails the certificate check.
"""

from __future__ import annotations

import pytest

from tclearn.consensus.certificate import check_block_content
from tclearn.consensus.committee import committee_for
from tclearn.consensus.governance import GovernanceRequest, build_governance_block, request_problem
from tclearn.consensus.messages import GovernanceMsg
from tclearn.errors import InvalidBlockError
from tclearn.identity import Identity
from tclearn.sim.build import synthetic_coalition


def _with_a_rejected_block():
    setup = synthetic_coalition(5, 3, seed=2, byzantine={"m4": {"degrading-proposer"}})
    c = setup.coalition
    for _ in range(40):
        if any(b.kind == "rejected" for b in c.chain("m1")):
            break
        assert c.run_until(c.monitor.height + 1, 400)
    rejected = next(b.index for b in c.chain("m1") if b.kind == "rejected")
    return c, rejected


def _refused_by_every_validator(c, request: GovernanceRequest, reason: str) -> None:
    sender = request.requester
    state = c.drivers["m1"].state
    assert reason in (request_problem(state, request, c.drivers["m1"].verifier.verify) or "")
    committee = committee_for(state)
    for member in sorted(committee.validators - {sender}):  # the height's validators take requests
        driver = c.drivers[member]
        assert driver.state.height == state.height
        before = len(driver.evidence)
        driver.receive(sender, GovernanceMsg(request))
        assert len(driver.evidence) == before + 1, member
        assert reason in str(driver.evidence[-1]), member
    # a general who built the block anyway: the certificate check refuses it
    general = sorted(committee.validators)[0]
    block = build_governance_block(state, request, general, state.head_timestamp + 1).signed_by(c.identities[general])
    with pytest.raises(InvalidBlockError, match=reason):
        check_block_content(state, block, committee, c.drivers["m1"].verifier)


def test_every_validator_refuses_a_revert_to_a_rejected_block():
    c, rejected = _with_a_rejected_block()
    state = c.drivers["m0"].state
    request = GovernanceRequest("revert", "m0", state.height + 1, {"target": rejected}).signed_by(c.identities["m0"])
    _refused_by_every_validator(c, request, f"block {rejected} is a rejected candidate")
    assert not any(b.kind == "revert" for b in c.chain("m1"))


def test_every_validator_refuses_a_membership_change_that_leaves_the_committee_impossible():
    setup = synthetic_coalition(5, 3, seed=1)
    c = setup.coalition
    assert c.run_until(1, 300)
    state = c.drivers["m0"].state
    request = GovernanceRequest("membership", "m0", state.height + 1,
                                {"add": [], "remove": ["m3", "m4"]}).signed_by(c.identities["m0"])
    _refused_by_every_validator(c, request, "needs at least 4")
    twice = GovernanceRequest("membership", "m0", state.height + 1,
                              {"add": [], "remove": ["m4", "m4"]}).signed_by(c.identities["m0"])
    assert request_problem(state, twice) == "a member is removed twice"
    one = GovernanceRequest("membership", "m0", state.height + 1, {"add": [], "remove": ["m4"]})
    assert request_problem(state, one) is None  # five members, k = 3: one may go


@pytest.mark.parametrize("values, reason", [
    ({"learning_rate": -0.5}, "learning_rate must be a number > 0"),
    ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"epochs": 10**9}, "epochs must be at most 1000000"),
    ({"momentum": 0.9}, "hyperparams must set some of"),
])
def test_every_validator_refuses_hyperparams_outside_the_genesis_rules(values, reason):
    setup = synthetic_coalition(5, 3, seed=1)
    c = setup.coalition
    assert c.run_until(1, 300)
    state = c.drivers["m2"].state
    request = GovernanceRequest("hyperparams", "m2", state.height + 1,
                                {"hyperparams": values}).signed_by(c.identities["m2"])
    _refused_by_every_validator(c, request, reason)


def test_a_joining_member_may_carry_its_certificate_fingerprint_and_url():
    setup = synthetic_coalition(5, 3, seed=1)
    state = setup.coalition.drivers["m0"].state
    key = Identity.from_seed("m9", b"joiner").public_key
    ok = {"id": "m9", "public_key": key, "cert_fingerprint": "sha256:" + "ab" * 32, "url": "https://127.0.0.9:7000"}

    def problem(addition):
        return request_problem(state, GovernanceRequest("membership", "m0", 1, {"add": [addition], "remove": []}))

    assert problem(ok) is None and problem({"id": "m9", "public_key": key}) is None
    assert "fingerprint" in problem({**ok, "cert_fingerprint": "ab" * 32})
    assert "url" in problem({**ok, "url": "http://127.0.0.9:7000"})
    assert "optionally cert_fingerprint, url" in problem({**ok, "role": "admin"})
    assert "32 bytes" in problem({**ok, "public_key": b"x"})
