"""One agreement among a height's committee: Tendermint, sans-IO.

Theory of operation. This is Algorithm 1 of Buchman, Kwon and Milosevic,
"The latest gossip on BFT consensus" (2018), for one height, with k
validators, quorum q = ceil(2k/3) and f < k/3 faulty:

* Round r has a general, `committee.general_of(r)`. It proposes its *valid
  value* (the latest value it saw a polka for) if it has one — re-proposing
  the locked block, as the issue asks — otherwise a fresh value (`build`).
* Prevote: for the proposal if it is valid and we are not locked on another
  value, or the proposal carries a valid round vr ≥ our lock's round with a
  polka (q prevotes) at vr; else nil (also on the propose timeout).
* Precommit: for v after a polka for v in this round (lock on v); nil after q
  nil prevotes or on the prevote timeout.
* Decide v on q precommits for v in one round (any round), once the value is
  known and valid. Precommit timeout → next round. Seeing k − q + 1 members in
  later rounds → jump to the latest round that many have reached.

Safety (any timing, messages lost, duplicated or reordered): two quorums share
more than f members, so an honest one; an honest member prevotes and
precommits once a round (its votes are persisted before they leave) and, once
locked on v at round r, prevotes another value only on a polka for it at a
round ≥ r. Hence if q precommit v at round r, no other value has a polka in a
later round, and at most one value is ever decided. Liveness: after the
network settles, timeouts (growing with the round, capped above the message
delay) let an honest general's round succeed; the general re-proposes its
valid value, which honest locked members accept.

Where this differs from the paper, and why:

* Votes travel on authenticated channels and are counted for their sender;
  votes for a value are also signed (`sign`), and their signatures are checked
  (`check`) only when a quorum of them is about to be acted on — a polka we
  lock on, a polka that unlocks us, a decision that must be provable — so a
  forged signature can never become part of a certificate we show.
* There is no gossip layer: each member re-sends its own votes of the height
  now and then, a general re-proposing its valid value attaches the polka
  that made it valid (`on_certificate` adds those signed prevotes to ours), and
  a member that sees a quorum of precommits for a value it does not hold asks
  the voters for it (values are self-authenticating: their id is their hash).
* An unlocked member prevotes any valid proposal, whatever its valid round:
  that is what the paper's rule does for valid round −1, and with no lock
  there is nothing to protect. Without this, honest members that saw
  different polkas (an equivocating validator shows each its own) could wait
  for each other forever.

The class is a pure state machine: inputs carry the tick (`now`); outputs are
effects the core turns into messages. Steps change only through the table of
`tclearn.consensus.phases`.
"""

from __future__ import annotations

from typing import Callable

from tclearn.consensus.committee import Committee
from tclearn.consensus.params import ConsensusParams
from tclearn.consensus.phases import RoundEvent, Step, next_step
from tclearn.consensus.snapshot import InstanceSnapshot
from tclearn.consensus.tally import (
    DecidedOut, Effect, MisbehaviourOut, NeedValueOut, ProposeOut, RoundBook, VoteOut,
)
from tclearn.errors import ConsensusError
from tclearn.ledger.block import Block

__all__ = ["Agreement", "VoteOut", "ProposeOut", "DecidedOut", "NeedValueOut", "MisbehaviourOut", "Effect",
           "MAX_ROUNDS"]

MAX_ROUNDS = 10_000  # rounds of one height beyond which messages are ignored


class Agreement:
    """Tendermint for one value among `committee`, seen from `me`."""

    def __init__(
        self,
        name: str,
        committee: Committee,
        me: str,
        params: ConsensusParams,
        *,
        value_id: Callable[[Block], str],
        validate: Callable[[Block], bool],
        build: Callable[[], Block | None],
        sign: Callable[[int, str, str], bytes],
        check: Callable[[str, int, str, str, bytes], bool],
        provable_decisions: bool = False,
    ) -> None:
        if me not in committee.validators:
            raise ConsensusError(f"{me} is not a validator of height {committee.height}")
        self.name = name
        self.committee = committee
        self.me = me
        self.params = params
        self.q = committee.quorum
        self.skip = committee.skip
        self._value_id = value_id
        self._validate = validate
        self._build = build
        self._sign = sign
        self._check = check
        self.provable = provable_decisions  # check precommit signatures before deciding
        self.decision_round = -1
        self.started = False
        self.round = 0
        self.step = Step.PROPOSE
        self.now = 0
        self.locked_round, self.locked_id, self.locked_value = -1, "", None  # type: int, str, Block | None
        self.valid_round, self.valid_id, self.valid_value = -1, "", None  # type: int, str, Block | None
        self.decision: Block | None = None
        self.rounds: dict[int, RoundBook] = {}
        self.values: dict[str, Block] = {}
        self.my_votes: dict[tuple[int, str], str | None] = {}
        self.proposed: tuple[int, int, Block] | None = None
        self.max_round_of: dict[str, int] = {}
        self._decidable: set[tuple[int, str]] = set()
        self._asked: set[str] = set()
        self._deadline = {"propose": 0, "prevote": 0, "precommit": 0}
        self.dirty = False  # safety state changed since the last snapshot
        self.out: list[Effect] = []

    # --- inputs --------------------------------------------------------------
    def start(self, now: int) -> None:
        self.now = max(self.now, now)
        if not self.started:
            self.started = True
            self._enter_round(self.round, initial=True)
            self._advance()

    def on_proposal(self, sender: str, round_: int, valid_round: int, value: Block, now: int) -> None:
        self.now = max(self.now, now)
        if not self._round_ok(round_):
            return
        if sender != self.committee.general_of(round_):
            self.out.append(MisbehaviourOut("invalid-message", sender, f"{self.name} proposal for round {round_} "
                                                                      "from a member who is not its general"))
            return
        self._seen_round(sender, round_)
        vid = self._value_id(value)
        rd = self._rd(round_)
        if rd.proposal is not None:
            if rd.proposal != vid:
                self.out.append(MisbehaviourOut("round-proposal-equivocation", sender,
                                                f"{self.name}: two proposals in round {round_}"))
            self._store_value(vid, value)
            return
        rd.proposal, rd.proposal_vr = vid, valid_round
        self._store_value(vid, value)
        self._advance()

    def on_votes(self, sender: str, votes: list[tuple[int, str, str | None, bytes]], now: int) -> None:
        """Votes `sender` sent us itself (the transport authenticated it)."""
        self.now = max(self.now, now)
        for round_, phase, value, sig in votes:
            if self._round_ok(round_):
                self._seen_round(sender, round_)
                self._record(sender, round_, phase, value, sig)
        self._advance()

    def on_certificate(self, round_: int, phase: str, value: str, signers: tuple[tuple[str, bytes], ...],
                       now: int) -> None:
        """Signed votes relayed by someone else: counted like any vote, checked before any use."""
        self.now = max(self.now, now)
        if not self._round_ok(round_):
            return
        for who, sig in signers:
            if who in self.committee.validators and who != self.me:
                votes = self._rd(round_).votes(phase)
                if (who, value) in votes.checked or self._check(who, round_, phase, value, sig):
                    self._record(who, round_, phase, value, sig)
                    votes.checked.add((who, value))
                else:
                    self.out.append(MisbehaviourOut("invalid-message", who,
                                                    f"{self.name}: relayed {phase} with a bad signature"))
        self._advance()

    def _record(self, sender: str, round_: int, phase: str, value: str | None, sig: bytes) -> None:
        votes = self._rd(round_).votes(phase)
        if sender not in votes.book:
            votes.book[sender] = value
            if value is None:
                votes.nil += 1
        elif votes.book[sender] != value:
            held = votes.book[sender]
            held_sig = votes.signed.get(held, {}).get(sender, b"") if held is not None else b""
            if self._signed_or_nil(sender, round_, phase, value, sig) and \
                    self._signed_or_nil(sender, round_, phase, held, held_sig):
                self.out.append(MisbehaviourOut("vote-equivocation", sender,
                                                f"{self.name}: two {phase}s in round {round_}"))
        if value is not None:
            per = votes.signed.setdefault(value, {})
            if sender not in per or (sender, value) not in votes.checked:
                per[sender] = sig
                if phase == "precommit" and len(per) >= self.q:
                    self._decidable.add((round_, value))

    def _signed_or_nil(self, who: str, round_: int, phase: str, value: str | None, sig: bytes) -> bool:
        """A nil vote (unsigned: we saw it on `who`'s own channel), or a vote whose signature verifies."""
        if value is None:
            return True
        votes = self._rd(round_).votes(phase)
        if (who, value) in votes.checked or self._check(who, round_, phase, value, sig):
            votes.checked.add((who, value))
            return True
        return False

    def _certified(self, round_: int, phase: str, vid: str) -> bool:
        """Check the signatures of the votes for `vid` (once each); drop forged ones; is there still a quorum?"""
        votes = self._rd(round_).votes(phase)
        per = votes.signed.get(vid, {})
        if len(per) < self.q:
            return False
        for who, sig in list(per.items()):
            if (who, vid) in votes.checked:
                continue
            if who == self.me or self._check(who, round_, phase, vid, sig):
                votes.checked.add((who, vid))
            else:
                del per[who]
                self.out.append(MisbehaviourOut("invalid-message", who,
                                                f"{self.name}: {phase} in round {round_} with a bad signature"))
        return len(per) >= self.q

    def decision_certificate(self) -> tuple[int, tuple[tuple[str, bytes], ...]]:
        """(round, signed precommits) that decided, to show a member that missed the decision."""
        if self.decision is None:
            return -1, ()
        vid = self._value_id(self.decision)
        return self.decision_round, self.certificate(self.decision_round, "precommit", vid)

    def certificate(self, round_: int, phase: str, vid: str) -> tuple[tuple[str, bytes], ...]:
        """The checked signed votes for `vid` (empty unless they make a quorum)."""
        if not self._certified(round_, phase, vid):
            return ()
        return tuple(sorted(self._rd(round_).votes(phase).signed[vid].items()))

    def on_value(self, value: Block, now: int) -> None:
        """A value fetched from a peer: kept if we asked for its id."""
        self.now = max(self.now, now)
        vid = self._value_id(value)
        if vid in self._asked:
            self._store_value(vid, value)
            self._advance()

    @property
    def fetching(self) -> bool:
        """Whether we ever asked peers for a value: until then a fetched value is not even looked at."""
        return bool(self._asked)

    def expect(self, value_id: str) -> None:
        """Accept a fetched value with this id (the caller asked a peer for it)."""
        self._asked.add(value_id)

    def on_tick(self, now: int) -> None:
        self.now = max(self.now, now)
        self._advance()

    def poke(self, now: int) -> None:
        """Something the callbacks depend on changed (a value can now be built or validated)."""
        self.now = max(self.now, now)
        self._advance()

    def drain(self) -> list[Effect]:
        out, self.out = self.out, []
        return out

    # --- persistence ---------------------------------------------------------
    def snapshot(self) -> InstanceSnapshot:
        return InstanceSnapshot(
            locked_round=self.locked_round, locked_value=self.locked_value,
            valid_round=self.valid_round, valid_value=self.valid_value,
            votes=tuple((r, ph, v) for (r, ph), v in sorted(self.my_votes.items(), key=lambda kv: kv[0])),
            proposed=self.proposed,
        )

    def restore(self, snap: InstanceSnapshot, now: int) -> None:
        """Resume after a restart: never vote again where we voted, keep the lock."""
        if self.started:
            raise ConsensusError("restore an agreement before it starts")
        self.now = now
        for r, ph, v in snap.votes:
            self.my_votes[(r, ph)] = v
            sig = self._sign(r, ph, v) if v is not None else b""
            self._record(self.me, r, ph, v, sig)
        if snap.locked_value is not None:
            self.locked_round, self.locked_value = snap.locked_round, snap.locked_value
            self.locked_id = self._value_id(snap.locked_value)
            self._store_value(self.locked_id, snap.locked_value)
        if snap.valid_value is not None:
            self.valid_round, self.valid_value = snap.valid_round, snap.valid_value
            self.valid_id = self._value_id(snap.valid_value)
            self._store_value(self.valid_id, snap.valid_value)
        self.proposed = snap.proposed
        rounds = [r for r, _ in self.my_votes] + ([snap.proposed[0]] if snap.proposed else [])
        self.round = max(rounds, default=0)
        if snap.proposed is not None and snap.proposed[0] == self.round:
            pid = self._value_id(snap.proposed[2])
            self._store_value(pid, snap.proposed[2])
            rd = self._rd(self.round)
            rd.proposal, rd.proposal_vr = pid, snap.proposed[1]
        self.started = True
        self.step = Step.PROPOSE
        self._deadline["propose"] = now + self.params.timeout(self.params.propose_timeout_ticks, self.round)
        if (self.round, "prevote") in self.my_votes:
            self.step = next_step(self.step, RoundEvent.PREVOTED)
        if (self.round, "precommit") in self.my_votes:
            self.step = next_step(self.step, RoundEvent.PRECOMMITTED)
        self._advance()

    # --- re-sending ----------------------------------------------------------
    def resend_votes(self) -> list[tuple[int, str, str | None, bytes]]:
        """Our votes worth repeating: every non-nil one, and all of the last two rounds."""
        keep = [(r, ph, v) for (r, ph), v in self.my_votes.items() if v is not None or r >= self.round - 1]
        keep.sort(key=lambda t: (t[0], t[1]))
        return [(r, ph, v, self._rd(r).votes(ph).signed.get(v, {}).get(self.me, b"") if v is not None else b"")
                for r, ph, v in keep[-512:]]

    def current_proposal(self) -> ProposeOut | None:
        if self.proposed is not None and self.proposed[0] == self.round:
            r, vr, value = self.proposed
            polka = self.certificate(vr, "prevote", self._value_id(value)) if vr >= 0 else ()
            return ProposeOut(r, vr, value, polka)
        return None

    # --- the rules -------------------------------------------------------------
    def _round_ok(self, round_: int) -> bool:
        return 0 <= round_ < MAX_ROUNDS and round_ <= self.round + self.params.round_window

    def _rd(self, round_: int) -> RoundBook:
        rd = self.rounds.get(round_)
        if rd is None:
            rd = self.rounds[round_] = RoundBook()
        return rd

    def _seen_round(self, sender: str, round_: int) -> None:
        if sender != self.me and round_ > self.max_round_of.get(sender, -1):
            self.max_round_of[sender] = round_

    def _store_value(self, vid: str, value: Block) -> None:
        held = self.values.get(vid)
        if held is None or (held is not value and not self._validate(held)):
            self.values[vid] = value

    def _valid(self, vid: str) -> bool:
        value = self.values.get(vid)
        return value is not None and self._validate(value)

    def _advance(self) -> None:
        if not self.started:
            return
        guard = 0
        while self.decision is None:
            guard += 1
            if guard > 10_000:
                raise ConsensusError(f"{self.name}: the agreement rules do not settle")
            if self._try_decide() or self._try_skip():
                continue
            if not self._step_rules():
                break

    def _try_decide(self) -> bool:
        for round_, vid in sorted(self._decidable):
            value = self.values.get(vid)
            if value is None:
                if vid not in self._asked:
                    self._asked.add(vid)
                    holders = tuple(s for s in self.rounds[round_].precommits.signed.get(vid, {}) if s != self.me)
                    self.out.append(NeedValueOut(vid, holders))
                continue
            if self.provable and not self._certified(round_, "precommit", vid):
                self._decidable.discard((round_, vid))
                continue
            if self._validate(value):
                self.decision = value
                self.decision_round = round_
                self.step = next_step(self.step, RoundEvent.DECIDED)
                self.out.append(DecidedOut(value))
                return True
        return False

    def _try_skip(self) -> bool:
        ahead = sorted((r for r in self.max_round_of.values() if r > self.round), reverse=True)
        if len(ahead) >= self.skip:
            self._enter_round(ahead[self.skip - 1])
            return True
        return False

    def _enter_round(self, round_: int, initial: bool = False) -> None:
        if not initial:
            if round_ <= self.round:
                raise ConsensusError(f"{self.name}: rounds only go forward ({self.round} → {round_})")
            self.step = next_step(self.step, RoundEvent.NEW_ROUND)
        self.round = round_
        self._deadline["propose"] = self.now + self.params.timeout(self.params.propose_timeout_ticks, round_)

    def _vote(self, phase: str, value: str | None) -> None:
        key = (self.round, phase)
        if key in self.my_votes:
            raise ConsensusError(f"{self.name}: second {phase} in round {self.round}")
        self.my_votes[key] = value
        sig = self._sign(self.round, phase, value) if value is not None else b""
        self._record(self.me, self.round, phase, value, sig)
        self.step = next_step(self.step, RoundEvent.PREVOTED if phase == "prevote" else RoundEvent.PRECOMMITTED)
        self.dirty = True
        self.out.append(VoteOut(self.round, phase, value, sig))

    def _propose_if_general(self) -> bool:
        if self.committee.general_of(self.round) != self.me:
            return False
        if self.proposed is not None and self.proposed[0] >= self.round:
            return False
        if self.valid_value is not None:
            value, vr, vid = self.valid_value, self.valid_round, self.valid_id
        else:
            built = self._build()
            if built is None:
                return False
            value, vr, vid = built, -1, self._value_id(built)
        self.proposed = (self.round, vr, value)
        self.dirty = True
        self._store_value(vid, value)
        rd = self._rd(self.round)
        if rd.proposal is None:
            rd.proposal, rd.proposal_vr = vid, vr
        polka = self.certificate(vr, "prevote", vid) if vr >= 0 else ()
        self.out.append(ProposeOut(self.round, vr, value, polka))
        return True

    def _step_rules(self) -> bool:
        rd = self._rd(self.round)
        p = self.params
        if self.step is Step.PROPOSE:
            if self._propose_if_general():
                return True
            if rd.proposal is not None:
                vid, vr = rd.proposal, rd.proposal_vr
                if self.locked_round == -1 or self.locked_id == vid:
                    self._vote("prevote", vid if self._valid(vid) else None)
                    return True
                if vr == -1:  # locked on another value, and nothing shown to unlock us
                    self._vote("prevote", None)
                    return True
                if vr < self.round and self._certified(vr, "prevote", vid):
                    ok = self._valid(vid) and self.locked_round <= vr
                    self._vote("prevote", vid if ok else None)
                    return True
            if self.now >= self._deadline["propose"]:
                self._vote("prevote", None)
                return True
            return False
        # prevote or precommit step
        vid = rd.proposal  # type: ignore[assignment]  # None is tested next
        if vid is not None and not rd.polka_done and rd.prevotes.count(vid) >= self.q and self._valid(vid) \
                and self._certified(self.round, "prevote", vid):
            rd.polka_done = True
            value = self.values[vid]
            if self.step is Step.PREVOTE:
                self.locked_round, self.locked_id, self.locked_value = self.round, vid, value
                self._vote("precommit", vid)
            self.valid_round, self.valid_id, self.valid_value = self.round, vid, value
            self.dirty = True
            return True
        if self.step is Step.PREVOTE:
            if rd.prevotes.count(None) >= self.q:
                self._vote("precommit", None)
                return True
            if not rd.prevote_timer and len(rd.prevotes.book) >= self.q:
                rd.prevote_timer = True
                self._deadline["prevote"] = self.now + p.timeout(p.prevote_timeout_ticks, self.round)
            if rd.prevote_timer and self.now >= self._deadline["prevote"]:
                self._vote("precommit", None)
                return True
        if not rd.precommit_timer and len(rd.precommits.book) >= self.q:
            rd.precommit_timer = True
            self._deadline["precommit"] = self.now + p.timeout(p.precommit_timeout_ticks, self.round)
        if rd.precommit_timer and self.now >= self._deadline["precommit"]:
            self._enter_round(self.round + 1)
            return True
        return False
