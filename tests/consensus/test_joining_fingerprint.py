"""A joining certificate already held by a member is refused by every validator, not only the asking desk.

`ChainState.fingerprints` holds every fingerprint genesis or a membership block
recorded (a removed member's too); `request_problem` refuses an addition whose
`cert_fingerprint` is among them, or two additions carrying the same one.
"""

from __future__ import annotations

from tclearn.consensus.governance import GovernanceRequest, build_governance_block, request_problem
from tclearn.identity import Identity
from tclearn.ledger import ChainState, GenesisConfig, MemberInfo, build_genesis
from tclearn.ledger.encoding import sha256_hex

FP = {m: "sha256:" + sha256_hex(m.encode()) for m in ("m0", "m1", "m2", "m3", "m4", "m5")}


def _state() -> tuple[ChainState, dict[str, Identity]]:
    ids = {m: Identity.from_seed(m, b"fingerprints") for m in ("m0", "m1", "m2", "m3")}
    config = GenesisConfig(
        coalition_id="fp", level="A", members=tuple(MemberInfo(m, i.public_key, FP[m]) for m, i in ids.items()),
        task="digits", architecture="tclearn.DigitsCNN", model_config={"channels": [16, 32], "hidden": 64},
        model_seed=1, hyperparams={"learning_rate": 0.05, "optimizer": "sgd", "epochs": 1, "min_batch_size": 8},
        lam=0.95, committee_size=2, test_set_hash=sha256_hex(b"G"), revert_authorized=("m0",))
    return ChainState.from_genesis(build_genesis(config, sha256_hex(b"model 0"), ids["m0"], 1_000)), ids


def _add(state: ChainState, *additions: dict, remove: tuple[str, ...] = ()) -> GovernanceRequest:
    return GovernanceRequest("membership", "m0", state.height + 1, {"add": list(additions), "remove": list(remove)})


def _joiner(mid: str, fp: str) -> dict:
    return {"id": mid, "public_key": Identity.from_seed(mid, b"joiner").public_key, "cert_fingerprint": fp,
            "url": f"https://127.0.0.9:{7000 + int(mid[1:])}"}


def test_genesis_fingerprints_are_in_the_state_and_a_joiner_may_not_reuse_one():
    state, _ = _state()
    assert state.fingerprints == frozenset(FP[m] for m in ("m0", "m1", "m2", "m3"))
    problem = request_problem(state, _add(state, _joiner("m4", FP["m2"])))
    assert problem is not None and "already records" in problem and FP["m2"] in problem
    assert request_problem(state, _add(state, _joiner("m4", FP["m4"]))) is None


def test_a_fingerprint_an_earlier_membership_block_recorded_is_refused_even_after_its_member_left():
    state, ids = _state()
    request = _add(state, _joiner("m4", FP["m4"]))
    state = state.apply(build_governance_block(state, request.signed_by(ids["m0"]), "m1", 2_000).signed_by(ids["m1"]).sealed())
    assert FP["m4"] in state.fingerprints and "m4" in state.members
    assert "already records" in (request_problem(state, _add(state, _joiner("m5", FP["m4"]))) or "")
    removal = _add(state, remove=("m4",))
    state = state.apply(build_governance_block(state, removal.signed_by(ids["m0"]), "m1", 3_000).signed_by(ids["m1"]).sealed())
    assert "m4" not in state.members and FP["m4"] in state.fingerprints  # a certificate stays its member's
    assert "already records" in (request_problem(state, _add(state, _joiner("m5", FP["m4"]))) or "")


def test_two_additions_may_not_carry_the_same_certificate():
    state, _ = _state()
    problem = request_problem(state, _add(state, _joiner("m4", FP["m4"]), _joiner("m5", FP["m4"])))
    assert problem == f"two additions carry the certificate {FP['m4']}"
    assert request_problem(state, _add(state, _joiner("m4", FP["m4"]), _joiner("m5", FP["m5"]))) is None
