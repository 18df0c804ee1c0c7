"""A node's id lists and spent-id registry: lists checked against the proposal, duplicates named, rebuilt equal."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tclearn.consensus.messages import ProposalMsg
from tclearn.data.accounting import BatchIds
from tclearn.data.ids import merkle_root
from tclearn.errors import DataError
from tclearn.identity import Identity
from tclearn.ledger.block import EMPTY_ROOT, Block
from tclearn.ledger.records import EMPTY_IDS_ROOT, Proposal
from tclearn.learning.errors import InvalidModelError
from tclearn.node.batch_ids import (
    BATCH_CLAIM_BUDGET_S,
    BATCH_FETCH_DEADLINE_S,
    BATCH_IDS_MAX,
    BatchIdRegistry,
    IdCheckingEvaluator,
    ids_from_wire,
    ids_to_wire,
)
from tclearn.transport import PeerUnavailableError


def _id(n: int) -> str:
    return hashlib.sha256(f"sample-{n}".encode()).hexdigest()


def _hash(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def _proposal(proposer: str, model: str, new: list[str], reused: list[str] = ()) -> Proposal:  # type: ignore[assignment]
    return Proposal(proposer=proposer, height=1, prev_hash=_hash("prev"), parent_model_hash=_hash("parent"),
                    model_hash=model, increment_hash=_hash("inc" + model), sample_count=len(new),
                    data_ids_root=merkle_root(new) if new else EMPTY_IDS_ROOT, reused_count=len(reused),
                    reused_ids_root=merkle_root(reused) if reused else EMPTY_IDS_ROOT,
                    ).signed_by(Identity.from_seed(proposer, proposer.encode()))


def _increment(index: int, proposal: Proposal) -> Block:
    """An increment block as the registry reads it (the registry trusts the verified chain it is handed)."""
    return Block(index=index, timestamp=index, kind="increment", prev_hash=_hash(f"b{index - 1}"),
                 model_hash=proposal.model_hash, contributor=proposal.proposer, strengths={"m0": 0.5, "m1": 0.5},
                 data_ids_root=EMPTY_ROOT, quality_votes=(), block_votes=(), general="m0",
                 payload={"proposal": proposal.to_dict()})


class _Peer:
    """A peer's `GET /v1/batches/{hash}` answers, from a dict."""

    def __init__(self, lists: dict[str, BatchIds]) -> None:
        self.lists, self.asked = lists, 0

    def request(self, method: str, path: str, **kw: Any) -> Any:
        self.asked += 1
        import cbor2

        h = path.rsplit("/", 1)[1]
        body = cbor2.dumps(ids_to_wire(self.lists[h])) if h in self.lists else b""

        class R:
            status = 200 if h in self.lists else 404

            def cbor(self) -> Any:
                return cbor2.loads(body)
        return R()


def test_a_claimed_new_sample_already_contributed_is_refused_with_its_id(tmp_path: Path) -> None:
    logged: list[dict[str, Any]] = []
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: logged.append({"event": e, **f}))
    first = _proposal("m1", _hash("c1"), [_id(1), _id(2)])
    reg.put(first.model_hash, BatchIds((_id(1), _id(2))))
    reg.on_commit(_increment(1, first))
    assert reg.snapshot() == {_id(1), _id(2)}
    dup = _proposal("m2", _hash("c2"), [_id(3), _id(2)])
    reg.note(ProposalMsg(dup))
    assert reg.lacks(dup.model_hash)
    peer = _Peer({dup.model_hash: BatchIds((_id(3), _id(2)))})
    reg.fetch_for(dup.model_hash, {"m2": peer, "m3": _Peer({})})
    assert not reg.lacks(dup.model_hash)

    class Inner:
        def evaluate(self, parent: str, candidate: str) -> str:
            return "scored"

    ev = IdCheckingEvaluator(Inner(), reg, lambda e, **f: logged.append({"event": e, **f}))
    with pytest.raises(InvalidModelError, match=_id(2)):
        ev.evaluate(_hash("parent"), dup.model_hash)
    assert logged[-1]["event"] == "batch_refused" and logged[-1]["data_id"] == _id(2)
    assert logged[-1]["proposer"] == "m2"
    # an honest batch passes: a fresh sample and a re-used one the coalition counted
    ok = _proposal("m2", _hash("c3"), [_id(4)], [_id(1)])
    reg.note(ProposalMsg(ok))
    reg.fetch_for(ok.model_hash, {"m2": _Peer({ok.model_hash: BatchIds((_id(4),), (_id(1),))})})
    assert ev.evaluate(_hash("parent"), ok.model_hash) == "scored"


def test_lists_that_do_not_match_the_roots_or_are_missing_are_refused(tmp_path: Path) -> None:
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None, test_ids=[_id(9)])
    liar = _proposal("m1", _hash("c1"), [_id(1), _id(2)])
    reg.note(ProposalMsg(liar))
    # only the proposer's word counts for a candidate: another peer's lists are not asked for
    other = _Peer({liar.model_hash: BatchIds((_id(1), _id(2)))})
    reg.fetch_for(liar.model_hash, {"m1": _Peer({}), "m3": other})
    assert other.asked == 0
    with pytest.raises(Exception, match="served no id lists"):
        reg.check(liar.model_hash)
    reg.fetch_for(liar.model_hash, {"m1": _Peer({liar.model_hash: BatchIds((_id(1), _id(5)))})})
    with pytest.raises(Exception, match="do not match data_ids_root"):
        reg.check(liar.model_hash)
    g = _proposal("m1", _hash("c4"), [_id(9)])
    reg.note(ProposalMsg(g))
    reg.fetch_for(g.model_hash, {"m1": _Peer({g.model_hash: BatchIds((_id(9),))})})
    with pytest.raises(Exception, match="global test set G"):
        reg.check(g.model_hash)
    with pytest.raises(DataError):
        ids_from_wire({"new": [_id(1)] * (BATCH_IDS_MAX + 1), "reused": []})
    with pytest.raises(DataError):
        ids_from_wire({"new": ["../etc"], "reused": []})


def test_the_registry_rebuilt_from_the_chain_and_the_lists_equals_the_one_before(tmp_path: Path) -> None:
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None)
    blocks = []
    peer_lists = {}
    for i in range(1, 6):
        p = _proposal(f"m{i % 2}", _hash(f"c{i}"), [_id(10 * i), _id(10 * i + 1)])
        ids = BatchIds((_id(10 * i), _id(10 * i + 1)))
        if i % 2:
            reg.put(p.model_hash, ids)  # our own, or validated
        else:
            peer_lists[p.model_hash] = ids  # fetched after the commit
        blocks.append(_increment(i, p))
        reg.on_commit(blocks[-1])
    assert len(reg.missing()) == 2
    reg.fetch_for(None, {"m0": _Peer(peer_lists)})
    assert reg.missing() == [] and len(reg.snapshot()) == 10
    again = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None)
    again.rebuild(blocks)
    assert again.snapshot() == reg.snapshot() and again.missing() == []
    # a list on disk that does not match its block's roots is not counted (and is asked for again)
    (tmp_path / "ids" / f"{blocks[0].model_hash}.json").write_text('{"new": [], "reused": []}')
    third = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None)
    third.rebuild(blocks)
    assert third.missing() == [blocks[0].model_hash] and len(third.snapshot()) == 8


class _Clock:
    """A virtual monotonic clock: requests that time out and pauses advance it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, s: float) -> bool:
        self.now += s
        return False


class _FlakyPeer(_Peer):
    """A proposer whose first answers fail in transit (a timeout, then a 503), as a loaded machine's may."""

    def __init__(self, lists: dict[str, BatchIds], clock: _Clock, failures: list[str]) -> None:
        super().__init__(lists)
        self.clock, self.failures, self.deadlines = clock, list(failures), []  # type: list[float]

    def request(self, method: str, path: str, **kw: Any) -> Any:
        self.deadlines.append(kw["deadline_s"])
        if not self.failures:
            return super().request(method, path, **kw)
        self.asked += 1
        failure = self.failures.pop(0)
        if failure == "timeout":
            self.clock.now += kw["deadline_s"]
            raise PeerUnavailableError(f"no complete answer within {kw['deadline_s']:g} s")

        class Busy:
            status = 503
        return Busy()


def test_a_candidates_lists_are_asked_for_again_when_the_answer_fails_in_transit(tmp_path: Path) -> None:
    clock = _Clock()
    logged: list[dict[str, Any]] = []
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: logged.append({"event": e, **f}),
                          wait=clock.wait, clock=clock)
    p = _proposal("m1", _hash("c1"), [_id(1), _id(2)])
    reg.note(ProposalMsg(p))
    peer = _FlakyPeer({p.model_hash: BatchIds((_id(1), _id(2)))}, clock, ["timeout", "503"])
    reg.fetch_for(p.model_hash, {"m1": peer})
    assert peer.asked == 3 and not reg.lacks(p.model_hash)
    reg.check(p.model_hash)  # an honest batch whose lists came late passes
    assert [e["attempt"] for e in logged if e["event"] == "batch_ids_fetch_failed"] == [1, 2]
    assert clock.now <= BATCH_CLAIM_BUDGET_S


def test_a_definite_answer_is_not_asked_again_and_a_stalling_proposer_costs_less_each_time(tmp_path: Path) -> None:
    clock = _Clock()
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: None, wait=clock.wait, clock=clock)
    # "I have no lists" (404) is the proposer's word: one request, and the batch is refused
    none = _proposal("m1", _hash("c0"), [_id(1)])
    reg.note(ProposalMsg(none))
    silent = _Peer({})
    reg.fetch_for(none.model_hash, {"m1": silent})
    assert silent.asked == 1
    with pytest.raises(Exception, match="served no id lists"):
        reg.check(none.model_hash)
    # a proposer that never answers in time: attempts until the budget is spent, then half of it next time
    spent = []
    for k in range(4):
        p = _proposal("m2", _hash(f"s{k}"), [_id(10 + k)])
        reg.note(ProposalMsg(p))
        stalling = _FlakyPeer({}, clock, ["timeout"] * 100)
        t0 = clock.now
        reg.fetch_for(p.model_hash, {"m2": stalling})
        spent.append(clock.now - t0)
        assert all(d <= BATCH_FETCH_DEADLINE_S for d in stalling.deadlines)
        with pytest.raises(Exception, match="served no id lists"):
            reg.check(p.model_hash)
    assert BATCH_CLAIM_BUDGET_S - BATCH_FETCH_DEADLINE_S < spent[0] <= BATCH_CLAIM_BUDGET_S
    assert spent[1] <= BATCH_CLAIM_BUDGET_S / 2 and spent[3] <= BATCH_FETCH_DEADLINE_S + 0.001
    assert spent[0] > spent[1] > spent[3]
    # a quick "I have none" between two stalls earns the stalling proposer no budget back
    quick = _proposal("m2", _hash("s-404"), [_id(19)])
    reg.note(ProposalMsg(quick))
    reg.fetch_for(quick.model_hash, {"m2": _Peer({})})
    p = _proposal("m2", _hash("s-again"), [_id(18)])
    reg.note(ProposalMsg(p))
    t0 = clock.now
    reg.fetch_for(p.model_hash, {"m2": _FlakyPeer({}, clock, ["timeout"] * 100)})
    assert clock.now - t0 <= BATCH_FETCH_DEADLINE_S + 0.001
    # once it serves again, its next candidate gets the whole budget back
    ok = _proposal("m2", _hash("s-ok"), [_id(20)])
    reg.note(ProposalMsg(ok))
    reg.fetch_for(ok.model_hash, {"m2": _Peer({ok.model_hash: BatchIds((_id(20),))})})
    reg.check(ok.model_hash)
    late = _proposal("m2", _hash("s-late"), [_id(21)])
    reg.note(ProposalMsg(late))
    flaky = _FlakyPeer({late.model_hash: BatchIds((_id(21),))}, clock, ["timeout"] * 3)
    reg.fetch_for(late.model_hash, {"m2": flaky})
    reg.check(late.model_hash)


def test_a_node_that_stops_while_its_proposer_is_unreachable_abandons_the_check_without_refusing(tmp_path: Path) -> None:
    # at shutdown the proposer's server often closes first: the validator's pause then finds its own stop set
    clock = _Clock()
    stopped = {"now": False}

    def wait(s: float) -> bool:
        clock.now += s
        return stopped["now"]

    logged: list[dict[str, Any]] = []
    reg = BatchIdRegistry(tmp_path / "ids", lambda e, **f: logged.append({"event": e, **f}), wait=wait, clock=clock)
    scored: list[str] = []

    class Inner:
        def evaluate(self, parent: str, candidate: str) -> str:
            scored.append(candidate)
            return "scores"

    evaluator = IdCheckingEvaluator(Inner(), reg, lambda e, **f: logged.append({"event": e, **f}))
    # while running, an unreachable proposer's batch is refused (and counted against it)
    p = _proposal("m2", _hash("run"), [_id(1)])
    reg.note(ProposalMsg(p))
    reg.fetch_for(p.model_hash, {"m2": _FlakyPeer({}, clock, ["timeout"] * 100)})
    with pytest.raises(InvalidModelError, match="batch refused"):
        evaluator.evaluate(_hash("parent"), p.model_hash)
    assert reg.refusals == 1 and not reg.stopping
    # stopping: one failed attempt, then the pause returns at once; no refusal logged, no strike counted
    stopped["now"] = True
    q = _proposal("m2", _hash("stop"), [_id(2)])
    reg.note(ProposalMsg(q))
    peer = _FlakyPeer({}, clock, ["timeout"] * 100)
    reg.fetch_for(q.model_hash, {"m2": peer})
    assert peer.asked == 1 and reg.stopping
    with pytest.raises(InvalidModelError, match="the node is stopping"):
        evaluator.evaluate(_hash("parent"), q.model_hash)
    assert reg.refusals == 1 and scored == []
    assert [e["event"] for e in logged if e["event"].startswith("batch_")].count("batch_refused") == 1
    assert any(e["event"] == "batch_check_abandoned" and e["candidate"] == q.model_hash for e in logged)
    # lists that came are still judged while stopping: a spent sample claimed as new is refused, its id named
    reg.spent.accept([_id(3)])
    r = _proposal("m2", _hash("dup"), [_id(3)])
    reg.note(ProposalMsg(r))
    reg.fetch_for(r.model_hash, {"m2": _Peer({r.model_hash: BatchIds((_id(3),))})})
    with pytest.raises(InvalidModelError, match="batch refused"):
        evaluator.evaluate(_hash("parent"), r.model_hash)
    assert reg.refusals == 2 and logged[-1]["event"] == "batch_refused" and logged[-1]["data_id"] == _id(3)
    # and lists that came but do not match their proposal's count are refused, not abandoned
    bad = _proposal("m2", _hash("bad-count"), [_id(4), _id(5)])
    reg.note(ProposalMsg(bad))
    reg.fetch_for(bad.model_hash, {"m2": _Peer({bad.model_hash: BatchIds((_id(4),))})})
    with pytest.raises(InvalidModelError, match="batch refused"):
        evaluator.evaluate(_hash("parent"), bad.model_hash)
    assert reg.refusals == 3 and logged[-1]["event"] == "batch_refused"
