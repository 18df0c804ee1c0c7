"""Constants and a fixed clock shared by the vault tests (a module of its own: `conftest` is not importable
by name when several test folders have one)."""

from __future__ import annotations

PASS = b"correct horse battery staple"
T0_MS = 1_790_000_000_000  # 2026-09-21
SCRYPT_N = 2**12  # tests only: the default costs ~0.3 s per opening


class Clock:
    def __init__(self, ms: int = T0_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms
