"""Models a node lacks, fetched from its peers off the core thread, within a size cap and a deadline.

An evaluation (or training) whose models are not all here is handed to the
*fetcher thread*, so the core thread keeps handling messages; each fetch from a
peer is capped at the size the genesis architecture implies (plus
`MODEL_SIZE_SLACK_BYTES`) and has a total deadline (`MODEL_FETCH_BASE_S` plus
the time the cap takes at `MODEL_FETCH_MIN_RATE_BPS`; halved for a peer after
each failed transfer in a row, down to `MODEL_FETCH_FLOOR_S`), the hash and
format checked on receipt. The work then comes back to the core thread; a model
that no peer delivered in time counts as invalid for `FETCH_FAILURE_MEMORY_S`,
so the validator votes reject once instead of waiting: a slow or lying server
costs it one deadline, then its vote. A committed head we lack is prefetched
in the background (we may train on it).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

from tclearn.learning import DirectoryModelStore, Evaluator, ModelNotFoundError
from tclearn.learning.errors import InvalidModelError
from tclearn.transport import HTTPStatusError, PeerClient

__all__ = ["FETCH_FAILURE_MEMORY_S", "MODEL_FETCH_BASE_S", "MODEL_FETCH_FLOOR_S", "MODEL_FETCH_MIN_RATE_BPS",
           "MODEL_SIZE_SLACK_BYTES", "FetchingEvaluator", "ModelFetcher"]

MODEL_SIZE_SLACK_BYTES = 64 * 1024  # over the genesis model's own safetensors size
MODEL_FETCH_BASE_S = 2.0  # a model fetch's deadline: this, plus the size cap at the minimum rate below
MODEL_FETCH_MIN_RATE_BPS = 1 << 20
FETCH_FAILURE_MEMORY_S = 60.0  # a model no peer delivered in time stays "unavailable" this long
# A peer whose transfer failed (too slow, too big, not the model it named; a 404 does not count) gets half
# the deadline next time, down to this floor (plus the cap at the minimum rate); a success resets it.
MODEL_FETCH_FLOOR_S = 0.25


class ModelFetcher:
    """Fetches models from the peers: on demand (`fetch_model`), for deferred work, and committed heads."""

    def __init__(self, models: DirectoryModelStore, clients: dict[str, PeerClient], genesis_model_bytes: int,
                 log: Callable[..., None], stop: threading.Event, wake: Callable[[], None]) -> None:
        self.models, self.clients, self.log, self.stop, self.wake = models, clients, log, stop, wake
        # every model of this chain has the genesis architecture: its size bounds what a peer may send
        self.max_bytes = genesis_model_bytes + MODEL_SIZE_SLACK_BYTES
        self.deadline_s = MODEL_FETCH_BASE_S + self.max_bytes / MODEL_FETCH_MIN_RATE_BPS
        self._failed: dict[str, float] = {}
        self._strikes: dict[str, int] = {}  # peer -> transfers failed in a row
        self._lock = threading.Lock()
        self.prefetch: queue.Queue[tuple[str, str | None]] = queue.Queue(maxsize=64)
        self.to_fetch: queue.Queue[tuple[Any, list[str]]] = queue.Queue()  # (work, missing models): fetcher
        self.fetched: queue.Queue[Any] = queue.Queue()  # work whose models the fetcher is done with: core
        # also run on the fetcher thread before the work goes back (a node fetches a batch's id lists here)
        self.prepare: Callable[[Any], None] | None = None

    def fetch_model(self, h: str, prefer: str | None = None) -> bool:
        """Fetch model `h` from a peer (`prefer` first; hash and format checked); True if we have it now.

        Each peer gets the size cap and the deadline of one model; all together at most two deadlines.
        """
        order = sorted(self.clients.items(), key=lambda kv: kv[0] != prefer)
        deadline = time.monotonic() + 2 * self.deadline_s
        for member, client in order:
            if self.models.has(h):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                data = client.get_model(f"/v1/models/{h}", max_bytes=self.max_bytes,
                                        deadline_s=min(left, self._deadline_for(member)))
                self.models.put(data, expected_hash=h)
                self.log("model_fetched", model=h, peer=member, bytes=len(data))
                with self._lock:
                    self._failed.pop(h, None)
                    self._strikes.pop(member, None)
                return True
            except Exception as exc:
                if not isinstance(exc, HTTPStatusError):  # "I do not have it" is no fault
                    with self._lock:
                        self._strikes[member] = self._strikes.get(member, 0) + 1
                self.log("model_fetch_failed", model=h, peer=member, reason=str(exc)[:200])
        if self.models.has(h):
            return True
        with self._lock:
            now = time.monotonic()
            self._failed = {k: t for k, t in self._failed.items() if now - t < FETCH_FAILURE_MEMORY_S}
            self._failed[h] = now
        return False

    def _deadline_for(self, member: str) -> float:
        """The deadline of a transfer from `member`: halved for each of its failures in a row, down to a floor."""
        with self._lock:
            strikes = self._strikes.get(member, 0)
        floor = MODEL_FETCH_FLOOR_S + self.max_bytes / MODEL_FETCH_MIN_RATE_BPS
        return float(max(floor, self.deadline_s / 2 ** min(strikes, 16)))

    def failed_recently(self, h: str) -> bool:
        with self._lock:
            t = self._failed.get(h)
        return t is not None and time.monotonic() - t < FETCH_FAILURE_MEMORY_S

    def missing_models(self, work: Any) -> list[str]:
        """Models the work needs and we lack: the parent always, a candidate unless it failed a moment ago."""
        action = work.action
        missing = [action.parent_model_hash] if not self.models.has(action.parent_model_hash) else []
        candidate = getattr(action, "candidate_model_hash", None)
        if candidate is not None and not self.models.has(candidate) and not self.failed_recently(candidate):
            missing.append(candidate)
        return missing

    def prefetch_head(self, model_hash: str, contributor: str | None) -> None:
        """A committed head we may train on: fetch it in the background (dropped when the queue is full)."""
        if not self.models.has(model_hash):
            try:
                self.prefetch.put_nowait((model_hash, contributor))
            except queue.Full:
                pass

    def threads(self) -> list[threading.Thread]:
        return [threading.Thread(target=self.run_prefetcher, name="tclearn-prefetch", daemon=True),
                threading.Thread(target=self.run_fetcher, name="tclearn-fetch", daemon=True)]

    def run_prefetcher(self) -> None:
        while not self.stop.is_set():
            try:
                h, contributor = self.prefetch.get(timeout=0.2)
            except queue.Empty:
                continue
            if not self.models.has(h):
                self.fetch_model(h, prefer=contributor)

    def run_fetcher(self) -> None:
        """Fetch the models of work the core thread handed over, then hand the work back (off the core)."""
        while not self.stop.is_set():
            try:
                work, missing = self.to_fetch.get(timeout=0.2)
            except queue.Empty:
                continue
            for h in missing:
                if not self.models.has(h):
                    self.fetch_model(h)
            if self.prepare is not None:
                try:
                    self.prepare(work)
                except Exception as exc:  # the work still goes back: its evaluation refuses what is missing
                    self.log("error", where="prepare", reason=repr(exc)[:300])
            self.fetched.put(work)
            self.wake()


class FetchingEvaluator:
    """The learning evaluator, refusing to wait for a model the fetcher could not get."""

    def __init__(self, inner: Evaluator, store: DirectoryModelStore, fetcher: ModelFetcher,
                 log: Callable[..., None]) -> None:
        self.inner, self.store, self.fetcher, self.log = inner, store, fetcher, log

    def evaluate(self, parent: str, candidate: str) -> Any:
        """Score the pair; the fetcher thread has already fetched what was missing (or failed to)."""
        t0 = time.perf_counter()
        for h in (parent, candidate):
            if not self.store.has(h):
                if h == candidate and self.fetcher.failed_recently(h):  # one deadline spent: vote reject
                    raise InvalidModelError(f"candidate {h[:12]}… could not be fetched from any peer in time")
                raise ModelNotFoundError(f"model {h[:12]}… not found at any peer yet")  # the driver retries
        t1 = time.perf_counter()
        try:
            return self.inner.evaluate(parent, candidate)
        finally:  # the timeline of a round, for bench/network.py and operators
            self.log("evaluated", candidate=candidate, fetch_s=round(t1 - t0, 6),
                     eval_s=round(time.perf_counter() - t1, 6))
