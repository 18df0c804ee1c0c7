"""Where the dashboard's figures come from: the chain index, member health, the audit journal.

A `DashboardSource` bundles what one server shows: the `ChainIndex` of its
chain, a health probe for the members (a node asks its peers' `/v1/status`
over mutual TLS; the one-process demo reads each member's own chain store),
the level B/C audit journal when there is one, and the centralised reference
score when it is known (the demo trains it; a node may be told it).

Every probe is bounded: a peer gets `PEER_STATUS_TIMEOUT_S` to answer, all
peers are asked at once, and answers are reused for `HEALTH_CACHE_S`, so a
page costs the peers at most one small request each every few seconds
whatever the number of open tabs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tclearn.dashboard.index import ChainIndex
from tclearn.ledger.store import ChainStore
from tclearn.vault.errors import VaultError
from tclearn.vault.journal import Entry, check_anchors, read_journal, verify_journal

__all__ = ["DashboardSource", "HealthRow", "JournalView", "PeerHealth", "StatusProbe", "StoreHealth", "HEALTH_CACHE_S",
           "PEER_STATUS_TIMEOUT_S", "MAX_JOURNAL_BYTES"]

HEALTH_CACHE_S = 3.0
PEER_STATUS_TIMEOUT_S = 1.5
MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # a journal larger than this is not parsed for a page


@dataclass
class HealthRow:
    """One member as seen from here: its head, when it last answered, how far behind it is."""

    member: str
    reachable: bool
    height: int | None = None
    head: str | None = None
    last_seen_ms: int | None = None
    lag: int | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "reachable": self.reachable, "height": self.height, "head": self.head,
                "last_seen_ms": self.last_seen_ms, "lag": self.lag, "note": self.note}


StatusProbe = Callable[[], Mapping[str, Any]]  # a member's /v1/status answer (raises when unreachable)


class PeerHealth:
    """A node's view of its peers: each peer's `/v1/status`, asked in parallel, cached a few seconds."""

    def __init__(self, me: str, own_status: StatusProbe, peers: Mapping[str, StatusProbe],
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.me, self.own_status, self.peers, self.clock_ms = me, own_status, dict(peers), clock_ms
        self._lock = threading.Lock()
        self._rows: dict[str, HealthRow] = {m: HealthRow(m, False, note="not asked yet") for m in self.peers}
        self._asked_at = -1e9

    def rows(self) -> list[HealthRow]:
        with self._lock:
            if time.monotonic() - self._asked_at >= HEALTH_CACHE_S:
                self._refresh()
                self._asked_at = time.monotonic()
            own = self.own_status()
            height = int(own.get("height", 0))
            head = own.get("head") or {}
            rows = [HealthRow(self.me, True, height, head.get("hash"), self.clock_ms(), 0, "this node")]
            for row in self._rows.values():
                lag = height - row.height if row.height is not None else None
                rows.append(HealthRow(row.member, row.reachable, row.height, row.head, row.last_seen_ms, lag,
                                      row.note))
            return rows

    def _refresh(self) -> None:
        answers: dict[str, Mapping[str, Any] | str] = {}

        def ask(member: str, probe: StatusProbe) -> None:
            try:
                answers[member] = probe()
            except Exception as exc:  # a peer down or refusing is what this page is for
                answers[member] = f"{type(exc).__name__}: {str(exc)[:120]}"

        threads = [threading.Thread(target=ask, args=item, daemon=True) for item in self.peers.items()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + PEER_STATUS_TIMEOUT_S + 0.5
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for member in self.peers:
            answer = answers.get(member, "no answer in time")
            old = self._rows[member]
            if isinstance(answer, str):
                self._rows[member] = HealthRow(member, False, old.height, old.head, old.last_seen_ms, None, answer)
            else:
                head = answer.get("head") or {}
                self._rows[member] = HealthRow(member, True, int(answer.get("height", 0)), head.get("hash"),
                                               self.clock_ms(), None, "ready" if answer.get("ready") else "warming up")


class StoreHealth:
    """The one-process demo's members: each one's own chain store, its height and when it last grew."""

    def __init__(self, me: str, stores: Mapping[str, ChainStore],
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.me, self.stores, self.clock_ms = me, dict(stores), clock_ms
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, int]] = {}  # member -> (height, wall ms when it reached it)

    def rows(self) -> list[HealthRow]:
        with self._lock:
            heights: dict[str, int | None] = {}
            for member, store in self.stores.items():
                try:
                    heights[member] = store.height()
                except Exception:  # a store closed at the end of the run
                    heights[member] = None
            mine = heights.get(self.me)
            rows = []
            for member, height in heights.items():
                if height is not None and self._seen.get(member, (-2, 0))[0] != height:
                    self._seen[member] = (height, self.clock_ms())
                seen = self._seen.get(member)
                rows.append(HealthRow(member, height is not None, height, None, seen[1] if seen else None,
                                      mine - height if mine is not None and height is not None else None,
                                      "observer" if member == self.me else "in-process member"))
            return rows


class JournalView:
    """A level B/C audit journal read for a page: parsed once per change, verified, checked against the chain.

    The key that must have signed it is the supervisor key genesis records
    when the chain has one (a key file beside the journal must agree), else
    the key given here; without either the entries are shown unverified.
    Every journal head the chain's proposals anchored must still be in it
    (`vault.journal.check_anchors`): a journal rolled back or rewritten
    together with its signed head fails here, as in `tclearn audit verify --chain`.
    """

    def __init__(self, path: Path, supervisor_key: bytes | None = None) -> None:
        self.path, self.supervisor_key = Path(path), supervisor_key
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, bytes | None] | None = None
        self._entries: list[Entry] = []
        self.status = "not read yet"

    def entries(self, anchors: Sequence[str] = (), genesis_key: bytes | None = None) -> list[Entry]:
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                self._entries, self._stamp, self.status = [], None, f"no journal at {self.path.name}"
                return []
            stamp = (st.st_mtime_ns, st.st_size, len(anchors), genesis_key)
            if stamp == self._stamp:
                return self._entries
            self._stamp = stamp
            if st.st_size > MAX_JOURNAL_BYTES:
                self.status = f"journal of {st.st_size} bytes is over the page limit of {MAX_JOURNAL_BYTES}"
                self._entries = []
                return []
            self._entries, self.status = self._read(list(anchors), genesis_key)
            return self._entries

    def _read(self, anchors: list[str], genesis_key: bytes | None) -> tuple[list[Entry], str]:
        if genesis_key is not None and self.supervisor_key is not None and genesis_key != self.supervisor_key:
            return [], "does NOT verify: the supervisor key given is not the one genesis records"
        key = genesis_key if genesis_key is not None else self.supervisor_key
        try:
            if key is None:
                entries = read_journal(self.path)
                return entries, f"{len(entries)} entries (not verified: no supervisor key in genesis or config)"
            entries = verify_journal(self.path, key)
            check_anchors(entries, anchors)
        except VaultError as exc:
            return [], f"does NOT verify: {exc}"
        whose = "genesis's supervisor key" if genesis_key is not None else "the configured supervisor key"
        anchored = f"; all {len(anchors)} journal heads the chain anchors are in it" if anchors else ""
        return entries, f"verified: {len(entries)} entries, hashes, signatures ({whose}) and signed head{anchored}"


@dataclass
class DashboardSource:
    """What one dashboard shows (see the module docstring)."""

    index: ChainIndex
    title: str
    member: str  # whose view this is (the node's member id, the demo's observer)
    health: PeerHealth | StoreHealth | None = None
    journal: JournalView | None = None
    reference: float | None = None  # the centralised reference score on G, when known
    reference_label: str = "centralised reference"
    notes: list[str] = field(default_factory=list)

    def sync(self) -> int:
        """Index the new blocks (a batch now, a long backlog in the background); the height indexed."""
        return self.index.catch_up()

    @property
    def height(self) -> int:
        """The chain's height (the store's), which the index may still be catching up with."""
        return max(self.index.height, self.index.store.height())

    def journal_entries(self) -> list[Entry]:
        """The audit journal's entries, checked against this chain's supervisor key and anchors (none: [])."""
        if self.journal is None:
            return []
        return self.journal.entries(self.index.anchors(), self.index.supervisor_key)
