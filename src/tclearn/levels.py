"""Which security levels each way of running a coalition supports, and the one refusal for the others.

Genesis may record level A, B or C (`tclearn init` writes any of them).

- `tclearn demo` (one process) runs A, B and C: at B every model and
  increment goes through the supervisor's encrypted vault, journaled and
  anchored in the chain; at C each partner and validator also gets its own
  watermarked copy (`tclearn.demo.vault_models`).
- `tclearn demo --network`, `tclearn coalition up` and `tclearn node serve`
  (separate node processes) run level A only: their nodes serve models to
  each other in the clear and do not fetch or publish through the vault yet.

Running a B or C genesis as level A would silently publish a private model,
so every place that starts a coalition calls `require_runnable_level` first
with the levels it supports.
"""

from __future__ import annotations

from tclearn.errors import ConfigError

__all__ = ["RUNNABLE_LEVELS", "DEMO_LEVELS", "require_runnable_level"]

RUNNABLE_LEVELS = ("A",)  # node processes (`coalition up`, `node serve`, `demo --network`)
DEMO_LEVELS = ("A", "B", "C")  # the one-process demo


def require_runnable_level(level: str, what: str, runnable: tuple[str, ...] = RUNNABLE_LEVELS) -> None:
    """ConfigError (exit 2) unless `what` can run coalitions of `level` (`runnable`: the levels it supports)."""
    if level in runnable:
        return
    if level in ("B", "C"):
        raise ConfigError(
            f"{what}: level-{level} coalitions do not run here yet: node processes serve models to each other in "
            "the clear, as at level A, and do not go through the supervisor's vault. Levels B and C run in the "
            f"one-process demo (`tclearn demo --level {level}`); the vault, its policy, audit journal and S/MIME "
            "exchange also work on their own: see `tclearn vault`, `tclearn audit`, `tclearn smime`")
    raise ConfigError(f"{what}: unknown security level {level!r} (A, B or C)")
