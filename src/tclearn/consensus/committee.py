"""Who works at a height: proposer schedule, committee draw, order of generals.

Theory of operation. Every node must name the same committee for a height from
its copy of the chain alone, on every platform and Python version, so the draw
uses no floats and no random module: only integers and SHA-256.

* **Proposer schedule.** Partners take turns: the proposer of height h is the
  member at position (h − 1) mod N in join order. It is fixed by the chain
  before the round, so the proposer cannot steer the seed. A genesis may
  give each member a share of the turns instead (`consensus.turn_weights`,
  say each hospital's number of cases, so that a hospital with five times
  the data proposes five times as often, as pooled training would visit its
  cases): the turns then follow a smooth weighted round robin over the
  members in join order (`turn_schedule`), whose period is the weights' sum;
  a member that joined later takes the founders' mean weight.
* **Seed.** SHA-256 over a tag, the parent block hash and the height. A
  counter-mode stream `SHA-256(seed ‖ counter)` yields 256-bit integers;
  `HashStream.below(n)` draws uniformly from [0, n) by rejection sampling
  (an unbiased draw for any n, however large the weights grow).
* **Committee.** k validators drawn without replacement among the members
  other than the scheduled proposer, each draw picking member i with
  probability S_i / Σ S_j over the members left (successive sampling), with
  the exact integer weights of `ChainState.integer_weights()`.
* **Generals.** A seeded Fisher–Yates permutation of the committee: the
  general of round r is `generals[r mod k]`.
* **Fallback proposers.** The members outside the committee, in turn order
  starting at the scheduled proposer: if it stays silent, the next one may
  propose after a timeout. Then, as a last resort and only when the committee
  has at least `MIN_SELF_EXCLUDING_COMMITTEE` validators, the committee's own
  members in the same turn order: a validator who proposes never evaluates or
  votes on its own candidate (its quality vote would not count, and a block
  carrying one fails its certificate), so the others decide it by the same
  strict majority of k. Without this, a height whose outside members all
  have nothing to propose (data spent, or an on-demand node nobody asked)
  stalls for good while a validator still has data.

The grinding the parent's general could attempt (choosing among a few
timestamps or vote subsets to shape the parent hash) is a known limit of a
hash-chain seed; a threshold-signature or VRF beacon would remove it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from tclearn.consensus.rules import quorum, skip_threshold
from tclearn.errors import ConsensusError
from tclearn.ledger.state import ChainState

# a validator may propose (as a last resort) only where the k − 1 others can still form a strict majority of k
MIN_SELF_EXCLUDING_COMMITTEE = 3

__all__ = [
    "MIN_SELF_EXCLUDING_COMMITTEE", "Committee", "HashStream", "committee_for", "committee_seed", "draw_committee", "proposer_of",
    "seeded_permutation", "turn_schedule", "weighted_sample",
]

_COMMITTEE_TAG = b"tclearn/committee/v1"
_GENERALS_TAG = b"tclearn/generals/v1"


def committee_seed(parent_hash: str, height: int, tag: bytes = _COMMITTEE_TAG) -> bytes:
    """The seed of a height's draw: SHA-256(tag ‖ 0 ‖ parent hash ‖ height as 8 bytes)."""
    if height < 1:
        raise ConsensusError("committees are drawn for heights ≥ 1")
    return hashlib.sha256(tag + b"\x00" + bytes.fromhex(parent_hash) + height.to_bytes(8, "big")).digest()


class HashStream:
    """A deterministic stream of integers: SHA-256(seed ‖ counter), counter from 0."""

    __slots__ = ("_seed", "_counter")

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def word(self) -> int:
        """The next 256-bit integer."""
        digest = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        return int.from_bytes(digest, "big")

    def below(self, n: int) -> int:
        """A uniform integer in [0, n), by rejection sampling over enough 256-bit words."""
        if n < 1:
            raise ConsensusError("cannot draw below a bound < 1")
        words = max(1, (n.bit_length() + 255) // 256)
        span = 1 << (256 * words)
        limit = span - span % n
        while True:
            x = 0
            for _ in range(words):
                x = (x << 256) | self.word()
            if x < limit:
                return x % n


def weighted_sample(weights: Sequence[tuple[str, int]], k: int, stream: HashStream) -> list[str]:
    """k names drawn without replacement, each draw ∝ weight among those left.

    `weights` is in a canonical order (join order); weights are positive
    integers. Each draw takes one `stream.below(total)` and walks the
    cumulative sums.
    """
    if k < 0 or k > len(weights):
        raise ConsensusError(f"cannot draw {k} of {len(weights)}")
    left = [(name, w) for name, w in weights]
    if any(w <= 0 for _, w in left):
        raise ConsensusError("weights must be positive integers")
    total = sum(w for _, w in left)
    chosen: list[str] = []
    for _ in range(k):
        r = stream.below(total)
        acc = 0
        for i, (name, w) in enumerate(left):
            acc += w
            if r < acc:
                chosen.append(name)
                total -= w
                del left[i]
                break
    return chosen


def seeded_permutation(items: Sequence[str], stream: HashStream) -> list[str]:
    """Fisher–Yates shuffle driven by `stream` (from the last position down)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = stream.below(i + 1)
        out[i], out[j] = out[j], out[i]
    return out


@lru_cache(maxsize=32)
def turn_schedule(weights: tuple[int, ...]) -> tuple[int, ...]:
    """One period of the smooth weighted round robin: index i appears weights[i] times, spread out.

    At each step every index gains its weight; the one holding the most (the
    lowest index on a tie) takes the turn and pays the sum (nginx's upstream
    balancing). Equal weights give plain turns in index order. Integers only,
    so every node computes the same schedule.
    """
    if not weights or min(weights) < 1:
        raise ConsensusError(f"turn weights must be positive integers, got {list(weights)}")
    total = sum(weights)
    current = [0] * len(weights)
    out = []
    for _ in range(total):
        best = 0
        for i, w in enumerate(weights):
            current[i] += w
            if current[i] > current[best]:
                best = i
        current[best] -= total
        out.append(best)
    return tuple(out)


def proposer_of(state: ChainState, height: int) -> str:
    """The scheduled proposer of `height`: members take turns in join order, in proportion to their turn weights."""
    members = list(state.members)
    declared = state.config.turn_weights
    if declared is None:
        return members[(height - 1) % len(members)]
    joiner = max(1, sum(declared.values()) // len(declared))
    schedule = turn_schedule(tuple(declared.get(m, joiner) for m in members))
    return members[schedule[(height - 1) % len(schedule)]]


def draw_committee(
    weights: Sequence[tuple[str, int]], k: int, parent_hash: str, height: int
) -> tuple[list[str], list[str]]:
    """(validators in draw order, generals order) for a height: the pure draw."""
    validators = weighted_sample(weights, k, HashStream(committee_seed(parent_hash, height)))
    generals = seeded_permutation(validators, HashStream(committee_seed(parent_hash, height, _GENERALS_TAG)))
    return validators, generals


@dataclass(frozen=True)
class Committee:
    """Everything a height's draw fixes."""

    height: int
    validators: frozenset[str]
    generals: tuple[str, ...]  # general of round r: generals[r % k]
    proposers: tuple[str, ...]  # scheduled proposer first, then outside fallbacks, then validators (last resort)

    @property
    def size(self) -> int:
        return len(self.generals)

    @property
    def quorum(self) -> int:
        """Block votes (and agreement votes) that commit: ceil(2k/3)."""
        return quorum(self.size)

    @property
    def skip(self) -> int:
        """Members seen in later rounds that move a lagging member ahead: k − q + 1 > f."""
        return skip_threshold(self.size)

    def general_of(self, round_: int) -> str:
        return self.generals[round_ % len(self.generals)]

    def rank_of(self, member: str) -> int:
        """Position in the generals order (−1 for a non-validator)."""
        try:
            return self.generals.index(member)
        except ValueError:
            return -1

    def proposer_rank(self, member: str) -> int:
        """Position in the proposer schedule (−1 if `member` may not propose at this height)."""
        try:
            return self.proposers.index(member)
        except ValueError:
            return -1


def committee_for(state: ChainState, height: int | None = None) -> Committee:
    """The committee of the height after `state` (the only height it can be drawn for)."""
    h = state.height + 1 if height is None else height
    if h != state.height + 1:
        raise ConsensusError(f"the committee of height {h} is drawn from the state after block {h - 1}")
    members = list(state.members)
    if len(members) < 2:
        raise ConsensusError("a committee needs at least two members")
    proposer = proposer_of(state, h)
    all_weights = state.integer_weights()
    pool = [(m, all_weights[m]) for m in members if m != proposer]
    k = min(state.config.committee_size, len(pool))
    validators, generals = draw_committee(pool, k, state.head_hash, h)
    chosen = frozenset(validators)
    start = members.index(proposer)
    rotation = members[start:] + members[:start]
    proposers = tuple(m for m in rotation if m not in chosen)
    if k >= MIN_SELF_EXCLUDING_COMMITTEE:
        proposers += tuple(m for m in rotation if m in chosen)
    return Committee(height=h, validators=chosen, generals=tuple(generals), proposers=proposers)
