"""What an agreement remembers of a round, and the effects it hands its caller.

Kept apart from the rules (`agreement.py`) so the rules read as rules: a
round's book of votes (`RoundBook`, one `VoteBook` per phase) and the frozen
effects (`VoteOut`, `ProposeOut`, …) the height turns into messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from tclearn.ledger.block import Block

__all__ = ["VoteOut", "ProposeOut", "DecidedOut", "NeedValueOut", "MisbehaviourOut", "Effect", "VoteBook",
           "RoundBook"]


@dataclass(frozen=True, slots=True)
class VoteOut:
    round: int
    phase: str
    value: str | None
    signature: bytes


@dataclass(frozen=True, slots=True)
class ProposeOut:
    round: int
    valid_round: int
    value: Block
    polka: tuple[tuple[str, bytes], ...]  # signed prevotes at valid_round (empty for a fresh value)


@dataclass(frozen=True, slots=True)
class DecidedOut:
    value: Block


@dataclass(frozen=True, slots=True)
class NeedValueOut:
    value_id: str
    holders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MisbehaviourOut:
    kind: str
    member: str
    reason: str


Effect = Union[VoteOut, ProposeOut, DecidedOut, NeedValueOut, MisbehaviourOut]


@dataclass
class VoteBook:
    """One phase of one round.

    `book` holds the first vote seen from each member (it counts who took
    part, and nil votes); `signed` holds every signed vote for a value, by
    value — an equivocating member may appear under two values, which cannot
    hurt: two quorums still share an honest member. A vote its sender gave us
    counts as that member's word (the transport authenticated it) before its
    signature is checked; a relayed vote is checked before it is kept.
    """

    book: dict[str, str | None] = field(default_factory=dict)
    nil: int = 0
    signed: dict[str, dict[str, bytes]] = field(default_factory=dict)
    checked: set[tuple[str, str]] = field(default_factory=set)  # (member, value) whose signature verified

    def count(self, value: str | None) -> int:
        return self.nil if value is None else len(self.signed.get(value, ()))


@dataclass
class RoundBook:
    proposal: str | None = None  # value id proposed by the round's general
    proposal_vr: int = -1
    prevotes: VoteBook = field(default_factory=VoteBook)
    precommits: VoteBook = field(default_factory=VoteBook)
    prevote_timer: bool = False
    precommit_timer: bool = False
    polka_done: bool = False

    def votes(self, phase: str) -> VoteBook:
        return self.prevotes if phase == "prevote" else self.precommits
