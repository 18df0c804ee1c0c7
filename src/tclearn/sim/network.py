"""A seeded network and a virtual clock: the world the simulator hands each driver.

The network delivers each message after a delay drawn from the seed, and
may drop it, duplicate it (the copy takes its own delay, so copies and
messages arrive out of order) or cut it off by a partition. Crashed members
receive nothing. Everything random comes from one `random.Random(seed)`, so a
seed replays the same run message for message.

In `wire` mode a message is encoded when sent and decoded by the receiving
driver (`receive_bytes`), which is what the benchmark measures; otherwise
objects travel as they are, which is faster for thousands of scenarios.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from typing import Any

from tclearn.consensus.messages import Message
from tclearn.consensus.wire import encode_message

__all__ = ["FaultModel", "SimNetwork", "SimTransport", "VirtualClock"]


class VirtualClock:
    """Time in ticks; `now_ms` for block timestamps (each member may be skewed)."""

    def __init__(self, tick_ms: int = 1000, start_ms: int = 1_700_000_000_000) -> None:
        self.tick_ms = tick_ms
        self.start_ms = start_ms
        self.tick = 0

    def now_ms(self) -> int:
        return self.start_ms + self.tick * self.tick_ms

    def skewed(self, skew_ms: int) -> "SkewedClock":
        return SkewedClock(self, skew_ms)


class SkewedClock:
    def __init__(self, base: VirtualClock, skew_ms: int) -> None:
        self.base = base
        self.skew_ms = skew_ms

    def now_ms(self) -> int:
        return max(0, self.base.now_ms() + self.skew_ms)


@dataclass
class FaultModel:
    drop: float = 0.0  # probability a message is lost
    duplicate: float = 0.0  # probability it is delivered twice
    delay_min: int = 1  # ticks
    delay_max: int = 1
    groups: list[frozenset[str]] | None = None  # partition: only members of one group talk

    def allows(self, sender: str, to: str) -> bool:
        if self.groups is None:
            return True
        return any(sender in g and to in g for g in self.groups)


@dataclass
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    bytes: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    bytes_by_type: dict[str, int] = field(default_factory=dict)


class SimNetwork:
    """Messages in flight, ordered by delivery tick (ties by a sequence number)."""

    def __init__(self, rng: random.Random, faults: FaultModel | None = None, wire: bool = False) -> None:
        self.rng = rng
        self.faults = faults or FaultModel()
        self.wire = wire
        self.tick = 0
        self._queue: list[tuple[int, int, str, str, Any]] = []
        self._seq = 0
        self.down: set[str] = set()
        self.stats = NetworkStats()
        self._last_message: Any = None
        self._last_bytes = b""
        self.observers: list[Any] = []  # called with (sender, to, message) for every message sent

    def endpoint(self, member: str) -> "SimTransport":
        return SimTransport(self, member)

    def submit(self, sender: str, to: str, message: Message) -> None:
        for observe in self.observers:
            observe(sender, to, message)
        st = self.stats
        st.sent += 1
        kind = message.TYPE
        st.by_type[kind] = st.by_type.get(kind, 0) + 1
        payload: Any = message
        if self.wire:
            if message is not self._last_message:  # a transport encodes a multicast once
                self._last_message, self._last_bytes = message, encode_message(message)
            payload = self._last_bytes
            st.bytes += len(payload)
            st.bytes_by_type[kind] = st.bytes_by_type.get(kind, 0) + len(payload)
        f = self.faults
        if not f.allows(sender, to) or (f.drop and self.rng.random() < f.drop):
            st.dropped += 1
            return
        self._push(sender, to, payload)
        if f.duplicate and self.rng.random() < f.duplicate:
            st.duplicated += 1
            self._push(sender, to, payload)

    def _push(self, sender: str, to: str, payload: Any) -> None:
        f = self.faults
        delay = f.delay_min if f.delay_max <= f.delay_min else self.rng.randint(f.delay_min, f.delay_max)
        self._seq += 1
        heapq.heappush(self._queue, (self.tick + max(1, delay), self._seq, sender, to, payload))

    def due(self, tick: int) -> list[tuple[str, str, Any]]:
        """Messages to deliver at `tick` (those to crashed members are lost)."""
        self.tick = tick
        out = []
        q = self._queue
        while q and q[0][0] <= tick:
            _, _, sender, to, payload = heapq.heappop(q)
            if to in self.down:
                self.stats.dropped += 1
                continue
            self.stats.delivered += 1
            out.append((sender, to, payload))
        return out


class SimTransport:
    """One member's end of the network."""

    def __init__(self, network: SimNetwork, member: str) -> None:
        self.network = network
        self.member = member

    def send(self, to: str, message: Message) -> None:
        self.network.submit(self.member, to, message)
