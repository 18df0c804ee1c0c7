"""A meter handed in: where timings and message traces go, instead of patching what is measured.

Why an object passed in: the demo and the benchmarks want to know how long
signing, signature checks, chain appends, training and evaluation take, and
which messages a member sent. The parts that do that work take an optional
meter (`Identity.metered`, `SignatureVerifier(meter=…)`, `MemberDriver(meter=…)`)
and report to it; nothing is wrapped or monkey-patched, and the protocol core
never reads a clock itself — the meter does, and only when one is handed in.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

__all__ = ["Meter", "PhaseMeter"]

T = TypeVar("T")


@runtime_checkable
class Meter(Protocol):
    """Receives timings (by phase) and a trace of the messages sent."""

    def timed(self, phase: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def add(self, phase: str, seconds: float) -> None: ...

    def sent(self, sender: str, to: str, message: object) -> None: ...


class PhaseMeter:
    """Wall time per phase (summed), and messages sent per type."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.totals: dict[str, float] = {}
        self.messages: Counter[str] = Counter()

    def add(self, phase: str, seconds: float) -> None:
        self.totals[phase] = self.totals.get(phase, 0.0) + seconds

    def timed(self, phase: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        t0 = self.clock()
        try:
            return fn(*args, **kwargs)
        finally:
            self.add(phase, self.clock() - t0)

    def sent(self, sender: str, to: str, message: object) -> None:
        self.messages[type(message).__name__] += 1
