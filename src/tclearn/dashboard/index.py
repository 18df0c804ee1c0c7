"""What the dashboard shows, read off the chain once: one small row per block.

Theory of operation. `ChainIndex` follows a `ChainStore` (the node's SQLite
chain, the demo observer's): `sync()` reads the blocks appended since the last
call, in batches of at most `SYNC_BATCH_BLOCKS`, and folds each into a
`BlockRow` (kind, who, votes, the G scores the committee measured, the reason
of a rejection) and into a `ChainState` (members, contributions). The rows are
what every page and API answer is built from, so a page never decodes a block
it does not show; a block's own page reads that one block from the store.

The score on G of each block's head model comes from the chain alone: honest
validators score both models on the same G deterministically, so the strict
majority's `(g_old, g_new)` of a candidate's quality votes is the score of
the parent and of the candidate (`rules.majority_g_scores`). A head model
whose score no vote carries yet (genesis before the first candidate, a model
restored by a revert and never voted on since) shows no score.

Verification of one block (its page): the state before it is rebuilt from the
nearest checkpoint (every `CHECKPOINT_EVERY` blocks, states kept by the
fold), then `ledger.verify.verify_block` runs with the consensus certificate
check (`consensus.certificate.make_certificate_check`): hash, link, the
general's signature, strengths, the kind's rules, the committee drawn and
the ≥ 2/3 certificate.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable

from tclearn.errors import InvalidBlockError, TCLearnError
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig
from tclearn.ledger.records import QualityVote
from tclearn.ledger.state import ChainState
from tclearn.ledger.store import ChainStore
from tclearn.ledger.verify import verify_block, verify_genesis

__all__ = ["BlockRow", "ChainIndex", "MemberRow", "Verdict", "block_row", "rejection_reason", "CHECKPOINT_EVERY",
           "SYNC_BATCH_BLOCKS"]

CHECKPOINT_EVERY = 256  # a ChainState kept every this many blocks: a block page folds at most this many
SYNC_BATCH_BLOCKS = 512  # blocks read from the store per query while catching up


@dataclass(frozen=True, slots=True)
class BlockRow:
    """One block as the dashboard shows it (no signatures, no payload bytes)."""

    index: int
    timestamp: int
    kind: str
    block_hash: str
    model_hash: str
    contributor: str | None
    general: str
    accepts: int  # quality votes accepting the candidate
    rejects: int
    certificate: int  # block votes
    g_old: float | None  # majority G scores of the parent and of the candidate
    g_new: float | None
    flagged: tuple[str, ...]
    reason: str  # why a candidate was rejected; what a governance block did
    strengths: dict[str, float]

    def to_json(self, head_score: float | None) -> dict[str, Any]:
        return {"index": self.index, "timestamp": self.timestamp, "kind": self.kind, "hash": self.block_hash,
                "contributor": self.contributor, "general": self.general, "accepts": self.accepts,
                "rejects": self.rejects, "certificate": self.certificate, "g_old": self.g_old, "g_new": self.g_new,
                "flagged": list(self.flagged), "reason": self.reason, "score": head_score}


@dataclass
class MemberRow:
    """What the chain says about one member."""

    member: str
    strength: float = 0.0
    contributed: int = 0  # D_i: samples in its accepted increments
    accepted: int = 0
    rejected: int = 0
    votes: int = 0  # quality votes cast
    flagged: int = 0
    last_active_index: int | None = None
    last_active_ms: int | None = None
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "strength": self.strength, "contributed": self.contributed,
                "accepted": self.accepted, "rejected": self.rejected, "votes": self.votes, "flagged": self.flagged,
                "last_active_index": self.last_active_index, "last_active_ms": self.last_active_ms,
                "removed": self.removed}


@dataclass(frozen=True)
class Verdict:
    """Whether a block verifies against the chain before it: the ledger's rules, then the consensus certificate.

    `ledger` covers hash, link, the general's signature, strengths, the kind's
    rules and every vote's signature; `certificate` adds the committee the
    protocol drew for the height, the decision its votes make and the ≥ 2/3
    block votes. An empty reason means the check passed; None: not run.
    """

    ledger: str | None
    certificate: str | None

    @property
    def ok(self) -> bool:
        return self.ledger == "" and self.certificate == ""


def _g(vote: QualityVote, key: str) -> float | None:
    value = vote.scores.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _majority(votes: tuple[QualityVote, ...]) -> tuple[float | None, float | None]:
    """The (g_old, g_new) a strict majority of the votes carries, else the first vote's (None without votes)."""
    pairs = [(_g(v, "g_old"), _g(v, "g_new")) for v in votes]
    for pair in pairs:
        if 2 * pairs.count(pair) > len(pairs):
            return pair
    return pairs[0] if pairs else (None, None)


def rejection_reason(votes: tuple[QualityVote, ...], committee: int, floor: float, lam: float) -> str:
    """Why the committee refused a candidate, in words, from its signed votes alone."""
    if not votes:
        return "no quality vote"
    refusing = [v for v in votes if not v.accept]
    parts = [f"{len(refusing)} of {committee} validators rejected"]
    g_old, g_new = _majority(votes)
    if g_old is not None and g_new is not None:
        if g_old - g_new > floor + 1e-9:
            parts.append(f"G fell from {g_old:.4f} to {g_new:.4f}, more than the floor {floor:g}")
        elif g_new < lam * g_old:
            parts.append(f"G {g_new:.4f} below λ·old = {lam:g} × {g_old:.4f}")
    if any(v.scores.get("non_finite") for v in refusing):
        parts.append("the candidate scored non-finite values")
    merged = [(v.scores.get("merged_old"), v.scores.get("merged_new")) for v in refusing]
    drops = [o - n for o, n in merged if isinstance(o, (int, float)) and isinstance(n, (int, float))]
    if drops and max(drops) > floor + 1e-9:
        parts.append(f"merged G∪L score fell by up to {max(drops):.4f}")
    if any(isinstance(v.scores.get("upper_bound"), (int, float)) and v.scores["upper_bound"] < 0 for v in refusing):
        parts.append("significantly below λ·old (paired test)")
    if not any(v.scores for v in refusing) and refusing:
        parts.append("the candidate could not be evaluated (invalid or unavailable)")
    return "; ".join(parts)


def _governance_reason(block: Block) -> str:
    payload = block.payload
    if block.kind == "hyperparams":
        changes = payload.get("hyperparams", {})
        return "hyper-parameters: " + ", ".join(f"{k} = {changes[k]}" for k in sorted(changes))
    if block.kind == "revert":
        return f"revert to the model of block {payload.get('target')} (asked by {payload.get('requester')})"
    if block.kind == "membership":
        added = [str(m.get("id")) for m in payload.get("add", []) if isinstance(m, dict)]
        removed = [str(m) for m in payload.get("remove", [])]
        return "membership: " + "; ".join(p for p in (f"added {', '.join(added)}" if added else "",
                                                      f"removed {', '.join(removed)}" if removed else "") if p)
    return ""


def block_row(block: Block, config: GenesisConfig) -> BlockRow:
    """The row of one block (its kind's decision in words, the majority G scores of its votes)."""
    votes = block.quality_votes
    g_old, g_new = _majority(votes)
    if block.kind == "rejected":
        reason = rejection_reason(votes, config.committee_size, config.floor, config.lam)
    elif block.kind == "increment":
        reason = f"{sum(v.accept for v in votes)} of {config.committee_size} validators accepted"
    else:
        reason = _governance_reason(block)
    flagged = block.payload.get("flagged", [])
    return BlockRow(
        index=block.index, timestamp=block.timestamp, kind=block.kind, block_hash=block.block_hash,
        model_hash=block.model_hash, contributor=block.contributor, general=block.general,
        accepts=sum(1 for v in votes if v.accept), rejects=sum(1 for v in votes if not v.accept),
        certificate=len(block.block_votes), g_old=g_old, g_new=g_new,
        flagged=tuple(str(f) for f in flagged) if isinstance(flagged, list) else (),
        reason=reason, strengths=dict(block.strengths))


class ChainIndex:
    """Rows, member statistics, G scores and verification checkpoints of one chain (thread-safe)."""

    def __init__(self, store: ChainStore, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.store = store
        self.checkpoint_every = checkpoint_every
        self._lock = threading.RLock()
        self._rows: list[BlockRow] = []
        self._scores: dict[str, float] = {}  # model hash -> G score (majority of the votes)
        self._state: ChainState | None = None
        self._checkpoints: dict[int, ChainState] = {}
        self._checkpoint_heights: list[int] = []
        self._members: dict[str, MemberRow] = {}
        self.kind_counts: dict[str, int] = {}
        # levels B/C: the journal heads (SEQ:HASH) the proposals anchored, in chain order, and genesis's
        # supervisor key: what the audit journal is checked against (tclearn.vault.anchors)
        self._anchors: dict[str, None] = {}
        self.supervisor_key: bytes | None = None
        self._sync_lock = threading.Lock()  # one syncer at a time; `_lock` guards what readers read
        self._config: GenesisConfig | None = None
        self._background: threading.Thread | None = None

    # --- following the store -----------------------------------------------------------------
    def sync(self, max_blocks: int | None = None, *, wait: bool = True) -> int:
        """Fold the blocks appended since the last call (all, or at most `max_blocks`); the height indexed.

        One syncer at a time; with `wait=False` a caller that finds another one
        at work (the first indexing of a long chain) returns at once with the
        height indexed so far, and pages fill what is missing by `preview`.
        Readers only ever wait for one batch to be folded in.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return self.height
        try:
            target = self.store.height()
            if max_blocks is not None:
                target = min(target, self.height + max_blocks)
            while self.height < target:
                start = self.height + 1
                blocks = self.store.blocks_range(start, min(SYNC_BATCH_BLOCKS, target - start + 1))
                if not blocks:
                    break
                with self._lock:
                    for block in blocks:
                        self._fold(block)
            return self.height
        finally:
            self._sync_lock.release()

    def _fold(self, block: Block) -> None:
        if block.index == 0:
            state = ChainState.from_genesis(block)
            self._config = state.config
            key = block.payload.get("config", {}).get("supervisor_key")
            self.supervisor_key = bytes(key) if isinstance(key, (bytes, bytearray)) else None
        else:
            assert self._state is not None
            state = self._state
        row = block_row(block, state.config)
        if block.kind in ("increment", "rejected"):
            proposal = block.payload.get("proposal", {})
            parent, candidate = proposal.get("parent_model_hash"), proposal.get("model_hash")
            if isinstance(parent, str) and row.g_old is not None:
                self._scores.setdefault(parent, row.g_old)
            if isinstance(candidate, str) and row.g_new is not None:
                self._scores.setdefault(candidate, row.g_new)
            anchor = proposal.get("vault_head")
            if isinstance(anchor, str) and anchor:
                self._anchors.setdefault(anchor, None)
        self._rows.append(row)
        self.kind_counts[block.kind] = self.kind_counts.get(block.kind, 0) + 1
        self._state = state if block.index == 0 else state.apply(block)
        if block.index % self.checkpoint_every == 0:
            self._checkpoints[block.index] = self._state
            self._checkpoint_heights.append(block.index)
        self._count_members(block, row)

    def catch_up(self, inline_blocks: int = SYNC_BATCH_BLOCKS) -> int:
        """Index what is new: up to `inline_blocks` now, the rest in a background thread; the height indexed.

        What a request calls: a poll finds a block or two and folds them at
        once, while the first look at a long chain returns after one batch and
        leaves the rest to the thread (pages preview the blocks not yet indexed).
        """
        if inline_blocks > 0:
            self.sync(max_blocks=inline_blocks, wait=False)
        if not self.complete:
            with self._lock:
                if self._background is None or not self._background.is_alive():
                    self._background = threading.Thread(target=self.sync, name="tclearn-dashboard-index",
                                                        daemon=True)
                    self._background.start()
        return self.height

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the background indexing (if any) to end; whether every block is indexed."""
        background = self._background
        if background is not None:
            background.join(timeout_s)
        return self.complete

    # --- before the index has caught up ---------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether every block of the store is indexed."""
        return self.height >= self.store.height()

    def rows_or_preview(self, start: int, count: int) -> list[BlockRow]:
        """Rows `start .. start+count-1`: from the index, and past what it holds, decoded from the store now.

        Lets the first screen of a long chain show while the index is still being
        built; `count` bounds the blocks decoded here.
        """
        start = max(0, start)
        rows = self.rows(start, count)
        nxt = start + len(rows)
        if len(rows) < count and nxt > self.height:
            config = self.genesis_config()
            if config is not None:
                rows += [block_row(b, config) for b in self.store.blocks_range(nxt, count - len(rows))]
        return rows

    def genesis_config(self) -> GenesisConfig | None:
        """The chain's genesis configuration (read from the store if the index has not reached it)."""
        if self._config is None:
            try:
                self._config = ChainState.from_genesis(self.store.get(0)).config
            except (TCLearnError, IndexError, KeyError):
                return None
        return self._config

    def _count_members(self, block: Block, row: BlockRow) -> None:
        assert self._state is not None
        for m in self._state.members:
            self._members.setdefault(m, MemberRow(m))
        for m, info in self._members.items():
            info.removed = m not in self._state.members

        def active(member: str | None) -> None:
            if member in self._members:
                self._members[member].last_active_index = block.index
                self._members[member].last_active_ms = block.timestamp

        if block.kind == "increment" and block.contributor in self._members:
            self._members[block.contributor].accepted += 1
        elif block.kind == "rejected" and block.contributor in self._members:
            self._members[block.contributor].rejected += 1
        for vote in block.quality_votes:
            if vote.validator in self._members:
                self._members[vote.validator].votes += 1
            active(vote.validator)
        for m in row.flagged:
            if m in self._members:
                self._members[m].flagged += 1
        for bv in block.block_votes:
            active(bv.validator)
        active(block.general)
        active(block.contributor)

    # --- reading -------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return len(self._rows) - 1

    def rows(self, start: int, count: int) -> list[BlockRow]:
        """Rows `start .. start+count-1` (clipped to the chain)."""
        with self._lock:
            start = max(0, start)
            return self._rows[start:start + max(0, count)]

    def row(self, index: int) -> BlockRow | None:
        with self._lock:
            return self._rows[index] if 0 <= index < len(self._rows) else None

    def anchors(self) -> list[str]:
        """The audit-journal heads the chain's proposals anchored (levels B/C), in chain order."""
        with self._lock:
            return list(self._anchors)

    def score(self, model_hash: str) -> float | None:
        """The G score the votes carry for a model, if any vote measured it."""
        return self._scores.get(model_hash)

    def head_score(self, row: BlockRow) -> float | None:
        score = self._scores.get(row.model_hash)
        if score is None and row.index > self.height:  # a previewed row: what its own votes say
            return row.g_new if row.kind == "increment" else row.g_old if row.kind == "rejected" else None
        return score

    @property
    def state(self) -> ChainState | None:
        return self._state

    def members(self) -> list[MemberRow]:
        """Members (current first, then removed ones) with their current strength."""
        with self._lock:
            strengths = self._state.strengths() if self._state is not None else {}
            contributions = self._state.contributions if self._state is not None else {}
            out = []
            for m, info in self._members.items():
                info.strength = strengths.get(m, 0.0)
                info.contributed = int(contributions.get(m, 0))
                out.append(MemberRow(**{k: getattr(info, k) for k in info.__dataclass_fields__}))
            return sorted(out, key=lambda r: (r.removed, r.member))

    def series(self, max_points: int) -> dict[str, Any]:
        """G score of the head per block and strengths over time, at most `max_points` blocks (evenly strided)."""
        with self._lock:
            n = len(self._rows)
            stride = max(1, math.ceil(n / max(1, max_points)))
            picked = self._rows[::stride]
            if picked and picked[-1] is not self._rows[-1]:
                picked.append(self._rows[-1])
            members = list(self._state.members) if self._state is not None else []  # current members only
            return {
                "index": [r.index for r in picked],
                "timestamp": [r.timestamp for r in picked],
                "score": [self._scores.get(r.model_hash) for r in picked],
                "candidate": [r.g_new if r.kind in ("increment", "rejected") else None for r in picked],
                "kind": [r.kind for r in picked],
                "members": members,
                "strengths": {m: [r.strengths.get(m) for r in picked] for m in members},
                "stride": stride,
            }

    # --- verification ----------------------------------------------------------------------------
    def state_before(self, index: int) -> ChainState | None:
        """The chain state after block `index - 1`: the nearest checkpoint, folded forward."""
        with self._lock:
            if not 1 <= index <= self.height:
                return None
            at = bisect_right(self._checkpoint_heights, index - 1) - 1
            base = self._checkpoint_heights[at]
            state = self._checkpoints[base]
        for block in self.store.blocks_range(base + 1, index - 1 - base) if index - 1 > base else []:
            state = state.apply(block)
        return state

    def committee(self, index: int) -> tuple[str, ...]:
        """The validators the protocol drew for height `index` (sorted; empty when it cannot be drawn)."""
        from tclearn.consensus.committee import committee_for

        state = self.state_before(index)
        if state is None:
            return ()
        try:
            return tuple(sorted(committee_for(state, index).validators))
        except TCLearnError:
            return ()

    def verify(self, block: Block) -> Verdict:
        """Does `block` verify against the chain before it (ledger rules, then the consensus certificate)?"""
        from tclearn.consensus.certificate import make_certificate_check

        if block.index == 0:
            return Verdict(_reason_of(lambda: verify_genesis(block)), "")
        state = self.state_before(block.index)
        if state is None:
            return Verdict("the chain before this block is not indexed yet", None)
        ledger = _reason_of(lambda: verify_block(state, block))
        certificate = _reason_of(lambda: verify_block(state, block, make_certificate_check())) if not ledger else None
        return Verdict(ledger, certificate)


def _reason_of(check: Callable[[], object]) -> str:
    """'' when `check()` passes, else why it failed (one line)."""
    try:
        check()
    except InvalidBlockError as exc:
        return exc.reason
    except (TCLearnError, ValueError, KeyError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""
