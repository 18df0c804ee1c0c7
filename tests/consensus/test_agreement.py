"""The agreement alone: k instances wired by a scripted, seeded message loop.

Values are plain objects here (the agreement only sees them through the
`value_id`, `validate` and `build` callbacks), signatures are HMAC-like
stand-ins, so the Tendermint rules are tested without blocks or crypto.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import pytest

from tclearn.consensus.agreement import Agreement, DecidedOut, ProposeOut, VoteOut
from tclearn.consensus.committee import Committee
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import RoundEvent, Step, next_step
from tclearn.errors import ConsensusError

PARAMS = ConsensusParams(propose_timeout_ticks=6, prevote_timeout_ticks=3, precommit_timeout_ticks=3)


@dataclass(frozen=True)
class V:
    name: str
    ok: bool = True


def vid(v: V) -> str:
    return hashlib.sha256(v.name.encode()).hexdigest()


def fake_sig(who: str, r: int, ph: str, value: str) -> bytes:
    return hashlib.sha256(f"{who}|{r}|{ph}|{value}".encode()).digest() * 2


class Net:
    """k agreements, messages delivered after a seeded delay; `liars` equivocate."""

    def __init__(self, k: int = 4, seed: int = 0, liars: set[str] = frozenset(), bad_generals: set[str] = frozenset(),
                 drop: float = 0.0) -> None:
        self.names = [f"v{i}" for i in range(k)]
        self.committee = Committee(1, frozenset(self.names), tuple(self.names), ("p",))
        self.rng = random.Random(seed)
        self.liars, self.bad, self.drop = set(liars), set(bad_generals), drop
        self.tick = 0
        self.queue: list[tuple[int, int, str, str, object]] = []
        self.seq = 0
        self.decided: dict[str, V] = {}
        self.inst: dict[str, Agreement] = {}
        for n in self.names:
            self.inst[n] = Agreement(
                "block", self.committee, n, PARAMS, value_id=vid, validate=lambda v: v.ok,
                build=lambda n=n: V("bad-" + n, ok=False) if n in self.bad else V("value-of-" + n),
                sign=lambda r, ph, val, n=n: fake_sig(n, r, ph, val),
                check=lambda who, r, ph, val, sig: sig == fake_sig(who, r, ph, val),
            )

    def send(self, sender: str, msg: object) -> None:
        for to in self.names:
            if to == sender or (self.drop and self.rng.random() < self.drop):
                continue
            m = msg
            if sender in self.liars and isinstance(msg, VoteOut) and self.rng.random() < 0.5:
                other = vid(V(f"lie-{self.rng.random()}"))
                m = VoteOut(msg.round, msg.phase, other, fake_sig(sender, msg.round, msg.phase, other))
            if sender in self.liars and isinstance(msg, ProposeOut):  # an equivocating general
                m = ProposeOut(msg.round, -1, V(f"lie-{to}-{msg.round}"), ())
            self.seq += 1
            self.queue.append((self.tick + self.rng.randint(1, 3), self.seq, sender, to, m))

    def pump(self, name: str) -> None:
        for e in self.inst[name].drain():
            if isinstance(e, (VoteOut, ProposeOut)):
                self.send(name, e)
            elif isinstance(e, DecidedOut):
                self.decided[name] = e.value

    def run(self, ticks: int) -> None:
        for n in self.names:
            self.inst[n].start(0)
            self.pump(n)
        for _ in range(ticks):
            self.tick += 1
            due = sorted(m for m in self.queue if m[0] <= self.tick)
            self.queue = [m for m in self.queue if m[0] > self.tick]
            for _, _, sender, to, m in due:
                a = self.inst[to]
                if isinstance(m, VoteOut):
                    a.on_votes(sender, [(m.round, m.phase, m.value, m.signature)], self.tick)
                elif isinstance(m, ProposeOut):
                    if m.polka:
                        a.on_certificate(m.valid_round, "prevote", vid(m.value), m.polka, self.tick)
                    a.on_proposal(sender, m.round, m.valid_round, m.value, self.tick)
                elif isinstance(m, tuple):  # a decided member shows its decision (what the height's proofs do)
                    r, value, signers = m
                    a.expect(vid(value))
                    a.on_value(value, self.tick)
                    a.on_certificate(r, "precommit", vid(value), signers, self.tick)
                self.pump(to)
            for n in self.names:
                self.inst[n].on_tick(self.tick)
                self.pump(n)
            for n in self.names:  # resend, as the height does
                if self.tick % 7 == 0 and n not in self.liars:
                    for r, ph, v, sig in self.inst[n].resend_votes():
                        self.send(n, VoteOut(r, ph, v, sig))
                    cur = self.inst[n].current_proposal()
                    if cur is not None:
                        self.send(n, cur)
                    a = self.inst[n]
                    if a.decision is not None:
                        proof = a.certificate(a.decision_round, "precommit", vid(a.decision))
                        self.send(n, (a.decision_round, a.decision, proof))


def test_honest_committee_decides_in_round_zero():
    net = Net()
    net.run(30)
    assert set(net.decided) == set(net.names)
    assert {v.name for v in net.decided.values()} == {"value-of-v0"}
    assert all(a.decision_round == 0 for a in net.inst.values())


def test_an_invalid_proposal_is_refused_and_the_general_rotates():
    net = Net(bad_generals={"v0"})
    net.run(60)
    values = {v.name for n, v in net.decided.items() if n != "v0"}
    assert values == {"value-of-v1"}  # round 1's general
    assert net.inst["v1"].decision_round >= 1


@pytest.mark.parametrize("seed", range(60))
def test_one_equivocating_validator_never_splits_the_decision(seed):
    """It lies in its votes and, as general, proposes a different fresh value to each member."""
    net = Net(seed=seed, liars={"v3"}, drop=0.2)
    net.run(400)
    honest = [n for n in net.names if n not in net.liars]
    decided = {net.decided[n].name for n in honest if n in net.decided}
    assert len(decided) <= 1
    assert all(n in net.decided for n in honest), f"seed {seed}: honest members did not all decide"


def test_a_second_vote_in_a_round_is_a_local_error():
    a = Net().inst["v1"]
    a.start(0)
    a.on_tick(100)  # propose timeout: prevote nil
    with pytest.raises(ConsensusError):
        a._vote("prevote", None)
    with pytest.raises(ConsensusError):
        next_step(Step.PROPOSE, RoundEvent.PRECOMMITTED)


def test_restore_keeps_votes_and_lock():
    net = Net()
    net.run(30)
    a = net.inst["v1"]
    snap = a.snapshot()
    assert snap.locked_round == 0 and snap.votes
    fresh = Net().inst["v1"]
    fresh.restore(snap, 0)
    assert fresh.my_votes == a.my_votes
    assert fresh.locked_id == a.locked_id
    with pytest.raises(ConsensusError):
        fresh._vote("prevote", None)  # round 0 was voted before the "crash"


def _drive_to_lock(a: Agreement) -> str:
    """v1 locks on v0's round-0 value, then two members are seen in round 2 (v1 jumps there)."""
    x = V("value-of-v0")
    a.start(0)
    a.on_proposal("v0", 0, -1, x, 1)
    a.on_votes("v0", [(0, "prevote", vid(x), fake_sig("v0", 0, "prevote", vid(x)))], 1)
    a.on_votes("v2", [(0, "prevote", vid(x), fake_sig("v2", 0, "prevote", vid(x)))], 1)
    assert a.locked_round == 0 and a.locked_id == vid(x)
    a.on_votes("v0", [(2, "prevote", None, b"")], 2)
    a.on_votes("v2", [(2, "prevote", None, b"")], 2)
    assert a.round == 2
    return vid(x)


def test_a_locked_member_prevotes_nil_for_a_fresh_value():
    a = Net().inst["v1"]
    _drive_to_lock(a)
    a.drain()
    a.on_proposal("v2", 2, -1, V("fresh"), 3)
    votes = [e for e in a.drain() if isinstance(e, VoteOut)]
    assert (votes[0].round, votes[0].phase, votes[0].value) == (2, "prevote", None)


def test_a_locked_member_follows_a_later_polka_shown_in_a_re_proposal():
    net = Net()
    a = net.inst["v1"]
    _drive_to_lock(a)
    a.drain()
    y = V("value-of-v3")
    polka = tuple((w, fake_sig(w, 1, "prevote", vid(y))) for w in ("v0", "v2", "v3"))
    a.on_certificate(1, "prevote", vid(y), polka, 3)
    a.on_proposal("v2", 2, 1, y, 3)
    votes = [e for e in a.drain() if isinstance(e, VoteOut)]
    assert [(v.round, v.phase, v.value) for v in votes][0] == (2, "prevote", vid(y))


def test_a_forged_certificate_does_not_unlock():
    a = Net().inst["v1"]
    _drive_to_lock(a)
    a.drain()
    y = V("value-of-v3")
    forged = tuple((w, b"\x00" * 64) for w in ("v0", "v2", "v3"))
    a.on_certificate(1, "prevote", vid(y), forged, 3)
    a.on_proposal("v2", 2, 1, y, 3)
    a.on_tick(1000)
    votes = [e for e in a.drain() if isinstance(e, VoteOut)]
    assert (2, "prevote", None) in [(v.round, v.phase, v.value) for v in votes]
