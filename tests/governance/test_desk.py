"""The node's governance desk: the operator's requests parsed, checked, handed to the driver, journaled.

Run against an in-process coalition (`sim.build.synthetic_coalition`): the
desk calls the same `MemberDriver.request_*` a node's core thread calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tclearn.consensus.certificate import check_certificate
from tclearn.identity import Identity
from tclearn.ledger.verify import verify_chain
from tclearn.node.governance import GOVERNANCE_BODY_MAX_BYTES, GovernanceDesk, GovernanceRefused
from tclearn.sim.build import synthetic_coalition


def _desk(tmp_path: Path, member: str) -> tuple[GovernanceDesk, list[dict[str, Any]]]:
    logged: list[dict[str, Any]] = []
    desk = GovernanceDesk(member, tmp_path / f"{member}.jsonl", lambda event, **f: logged.append({"event": event, **f}),
                          lambda: None)
    return desk, logged


def _ask(desk: GovernanceDesk, coalition: Any, member: str, request: dict[str, Any]) -> dict[str, Any]:
    future = desk.accept(json.dumps(request).encode())
    driver = coalition.drivers[member]
    desk.run_queued(driver, lambda i: driver.store.get(i).kind)
    return future.result(timeout=0)


def _rid(n: int) -> str:
    return f"{n:032x}"


def _journal(desk: GovernanceDesk) -> list[dict[str, Any]]:
    return [json.loads(line) for line in desk.journal.read_text().splitlines()]


def test_a_revert_through_the_desk_becomes_a_certified_block_and_keeps_strengths(tmp_path: Path) -> None:
    c = synthetic_coalition(5, 3, seed=3).coalition
    assert c.run_until(4, 400)
    chain = c.chain("m1")
    target = next(b.index for b in chain if b.kind == "increment")
    desk, _ = _desk(tmp_path, "m0")
    answer = _ask(desk, c, "m0", {"request_id": _rid(1), "kind": "revert", "target": target})
    assert answer["outcome"] == "accepted" and answer["body"] == {"target": target}
    assert c.run_until(answer["height"] + 1, 400)
    chain = c.chain("m1")
    revert = next(b for b in chain if b.kind == "revert")
    before = verify_chain(chain[: revert.index], certificate_check=check_certificate)
    after = verify_chain(chain[: revert.index + 1], certificate_check=check_certificate)
    assert after.head_model_hash == chain[target].model_hash  # the head model is block `target`'s
    # the rule (ChainState.apply): a revert changes neither D_i nor the strengths the block records
    assert after.contributions == before.contributions and revert.strengths == before.strengths()
    # training continues from the reverted model: the next increment's parent is block `target`'s model
    assert c.run_until(revert.index + 3, 600)
    following = [b for b in c.chain("m1")[revert.index + 1:] if b.kind in ("increment", "rejected")]
    assert following and following[0].payload["proposal"]["parent_model_hash"] == chain[target].model_hash
    assert not c.monitor.violations


def test_bad_requests_are_refused_with_a_reason_journaled_and_nothing_changes(tmp_path: Path) -> None:
    c = synthetic_coalition(4, 2, seed=4).coalition
    assert c.run_until(3, 400)
    chain = c.chain("m0")
    rejected = [b.index for b in chain if b.kind == "rejected"]
    height = c.drivers["m0"].height
    desk, logged = _desk(tmp_path, "m0")
    other, _ = _desk(tmp_path, "m2")

    def refused(d: GovernanceDesk, member: str, request: dict[str, Any], match: str) -> None:
        with pytest.raises(GovernanceRefused, match=match):
            _ask(d, c, member, request)

    refused(other, "m2", {"request_id": _rid(2), "kind": "revert", "target": 1}, "m2 is not authorised to revert")
    refused(desk, "m0", {"request_id": _rid(3), "kind": "revert", "target": 99}, "block 99 does not exist")
    if rejected:
        refused(desk, "m0", {"request_id": _rid(4), "kind": "revert", "target": rejected[0]}, "rejected candidate")
    refused(desk, "m0", {"request_id": _rid(5), "kind": "hyperparams", "hyperparams": {"momentum": 0.5}},
            "unknown hyper-parameter momentum")
    refused(desk, "m0", {"request_id": _rid(6), "kind": "hyperparams", "hyperparams": {"learning_rate": -1}},
            "outside the genesis rules")
    refused(desk, "m0", {"request_id": _rid(7), "kind": "hyperparams", "hyperparams": {"epochs": 0}},
            "outside the genesis rules")
    key = Identity.from_seed("m9", b"x").public_key.hex()
    refused(desk, "m0", {"request_id": _rid(8), "kind": "membership", "add": [{"id": "m1", "public_key": key}],
                         "remove": []}, "m1 is already a member")
    # 4 members, committee of 2: removing two leaves 2 < k + 1
    refused(desk, "m0", {"request_id": _rid(9), "kind": "membership", "add": [], "remove": ["m2", "m3"]},
            "needs at least 3")
    refused(other, "m2", {"request_id": _rid(10), "kind": "membership", "add": [], "remove": ["m3"]}, "founder")
    # a replayed request id is refused before anything else, even one that was accepted
    ok = _ask(desk, c, "m0", {"request_id": _rid(11), "kind": "hyperparams", "hyperparams": {"epochs": 2}})
    assert ok["outcome"] == "accepted"
    with pytest.raises(GovernanceRefused, match="replayed request"):
        desk.accept(json.dumps({"request_id": _rid(11), "kind": "revert", "target": 1}).encode())
    with pytest.raises(GovernanceRefused, match="at most"):
        desk.accept(b"{" + b" " * GOVERNANCE_BODY_MAX_BYTES + b"}")
    # every refusal is journaled with its reason; the chain did not move while they were refused
    outcomes = [(e["request_id"], e["outcome"]) for e in _journal(desk)]
    assert (_rid(11), "accepted") in outcomes and outcomes[-1] == (_rid(11), "refused")
    assert all(e["reason"] for e in _journal(desk) if e["outcome"] == "refused")
    assert c.drivers["m0"].height == height and c.chain("m0") == chain
    assert any(e["event"] == "governance_refused" for e in logged)
    # the journal outlives the process: a new desk refuses the replay too
    again, _ = _desk(tmp_path, "m0")
    with pytest.raises(GovernanceRefused, match="replayed"):
        again.accept(json.dumps({"request_id": _rid(3), "kind": "revert", "target": 1}).encode())


def test_a_hyperparams_block_changes_what_the_next_trainings_are_handed(tmp_path: Path) -> None:
    setup = synthetic_coalition(4, 2, seed=6)
    c = setup.coalition
    handed: list[tuple[int, dict[str, Any]]] = []
    for trainer in setup.trainers.values():
        def recording(parent: str, height: int, hyperparams: Any = None, _inner: Any = trainer.train) -> Any:
            handed.append((height, dict(hyperparams or {})))
            return _inner(parent, height, hyperparams=hyperparams)
        trainer.train = recording  # type: ignore[method-assign]
    assert c.run_until(2, 400)
    genesis_lr = c.drivers["m0"].state.hyperparams["learning_rate"]
    desk, _ = _desk(tmp_path, "m1")
    answer = _ask(desk, c, "m1", {"request_id": _rid(20), "kind": "hyperparams",
                                  "hyperparams": {"learning_rate": 0.004, "epochs": 3}})
    assert c.run_until(answer["height"] + 3, 600)
    hp_block = next(b for b in c.chain("m0") if b.kind == "hyperparams")
    assert hp_block.payload["hyperparams"] == {"learning_rate": 0.004, "epochs": 3}
    before = [hp for h, hp in handed if h <= hp_block.index]
    after = [hp for h, hp in handed if h > hp_block.index]
    assert before and all(hp["learning_rate"] == genesis_lr for hp in before)
    assert after and all(hp["learning_rate"] == 0.004 and hp["epochs"] == 3 for hp in after)


def test_a_joining_site_brings_its_own_certificate_and_a_url(tmp_path: Path) -> None:
    c = synthetic_coalition(4, 2, seed=4).coalition
    assert c.run_until(1, 400)
    desk, _ = _desk(tmp_path, "m0")
    driver = c.drivers["m0"]
    key = Identity.from_seed("m9", b"x").public_key.hex()
    held = "sha256:" + "1" * 64  # m1's certificate, as the chain records it

    def ask(n: int, addition: dict[str, Any]) -> dict[str, Any]:
        future = desk.accept(json.dumps({"request_id": _rid(n), "kind": "membership", "add": [addition],
                                         "remove": []}).encode())
        desk.run_queued(driver, lambda i: driver.store.get(i).kind, {held: "m1"})
        return future.result(timeout=0)

    with pytest.raises(GovernanceRefused, match="the certificate of m9 is member m1's"):
        ask(1, {"id": "m9", "public_key": key, "cert_fingerprint": held, "url": "https://127.0.0.9:7009"})
    with pytest.raises(GovernanceRefused, match="both the certificate fingerprint and the URL"):
        desk.accept(json.dumps({"request_id": _rid(2), "kind": "membership", "remove": [],
                                "add": [{"id": "m9", "public_key": key, "url": "https://127.0.0.9:7009"}]}).encode())
    with pytest.raises(GovernanceRefused, match="https://host:port"):
        desk.accept(json.dumps({"request_id": _rid(3), "kind": "membership", "remove": [],
                                "add": [{"id": "m9", "public_key": key, "cert_fingerprint": "sha256:" + "2" * 64,
                                         "url": "ftp://x"}]}).encode())
    answer = ask(4, {"id": "m9", "public_key": key, "cert_fingerprint": "sha256:" + "2" * 64,
                     "url": "https://127.0.0.9:7009"})
    assert answer["outcome"] == "accepted" and answer["body"]["add"][0]["url"] == "https://127.0.0.9:7009"
    assert c.run_until(answer["height"], 600)
    block = next(b for b in c.chain("m1") if b.kind == "membership")
    assert block.payload["add"][0]["cert_fingerprint"] == "sha256:" + "2" * 64
