"""Which security levels a coalition can run today, and the one refusal for the others.

Genesis may record level A, B or C (`tclearn init` writes any of them), but
only level A coalitions run: at B the partners and validators must fetch and
publish through the supervisor's vault, which the node and the demo do not
do yet (the vault, its policy, audit journal and S/MIME exchange exist on
their own: `tclearn vault`, `tclearn audit`, `tclearn smime`). Running a B or
C genesis as level A would silently publish a private model, so every place
that starts a coalition calls `require_runnable_level` first.
"""

from __future__ import annotations

from tclearn.errors import ConfigError

__all__ = ["RUNNABLE_LEVELS", "require_runnable_level"]

RUNNABLE_LEVELS = ("A",)


def require_runnable_level(level: str, what: str) -> None:
    """ConfigError (exit 2) unless coalitions of `level` can run."""
    if level in RUNNABLE_LEVELS:
        return
    if level in ("B", "C"):
        raise ConfigError(
            f"{what}: level-{level} coalitions do not run yet (models would be served as at level A, in the clear); "
            "only level A runs. The level-B vault, access policy, audit journal and S/MIME exchange work on their "
            "own: see `tclearn vault`, `tclearn audit`, `tclearn smime`")
    raise ConfigError(f"{what}: unknown security level {level!r} (A, B or C)")
