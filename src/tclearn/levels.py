"""Which security levels each way of running a coalition supports, and the one refusal for the others.

Genesis may record level A, B or C (`tclearn init` writes any of them).

- `tclearn demo` (one process) runs A, B and C: at B every model and
  increment goes through the supervisor's encrypted vault, journaled and
  anchored in the chain; at C each partner and validator also gets its own
  watermarked copy (`tclearn.demo.vault_models`).
- `tclearn coalition up` and `tclearn node serve` (separate node processes)
  run A and B: a level-B node keeps models only in memory and fetches and
  publishes them through the supervisor's vault service over mutual TLS
  (`tclearn.node.vault_link`; `coalition up --level B` also starts `tclearn
  vault serve`). Level C (watermarked copies) is not built for nodes: the vault
  service hands out clean copies.
- `tclearn demo --network` runs level A only (it has no supervisor).

Running a B or C genesis as level A would silently publish a private model,
so every place that starts a coalition calls `require_runnable_level` first
with the levels it supports.
"""

from __future__ import annotations

from tclearn.errors import ConfigError

__all__ = ["RUNNABLE_LEVELS", "DEMO_LEVELS", "NODE_LEVELS", "require_runnable_level", "require_node_level"]

RUNNABLE_LEVELS = ("A",)  # `demo --network`
NODE_LEVELS = ("A", "B")  # node processes (`coalition up`, `node serve`)
DEMO_LEVELS = ("A", "B", "C")  # the one-process demo


def require_runnable_level(level: str, what: str, runnable: tuple[str, ...] = RUNNABLE_LEVELS) -> None:
    """ConfigError (exit 2) unless `what` can run coalitions of `level` (`runnable`: the levels it supports)."""
    if level in runnable:
        return
    if level in ("B", "C"):
        raise ConfigError(
            f"{what}: level-{level} coalitions do not run here yet ({_WHERE}). Levels B and C run in the "
            f"one-process demo (`tclearn demo --level {level}`)"
            + (", level B also as node processes (`tclearn coalition up --level B`)" if level == "B" else "")
            + "; the vault, its policy, audit journal and S/MIME exchange also work on their own: see "
            "`tclearn vault`, `tclearn audit`, `tclearn smime`")
    raise ConfigError(f"{what}: unknown security level {level!r} (A, B or C)")


_WHERE = "nodes hand out clean models: no watermarked copies, and `demo --network` has no supervisor's vault"


def require_node_level(level: str, what: str, has_vault: bool) -> None:
    """A node process: A without a vault, B with one (node.toml's [vault]); ConfigError (exit 2) otherwise."""
    require_runnable_level(level, what, NODE_LEVELS)
    if level == "B" and not has_vault:
        raise ConfigError(f"{what}: a level-B chain needs the supervisor's vault service: add [vault] (url, "
                          "member_id, fingerprint) to node.toml (`tclearn coalition up --level B` writes it); "
                          "without it the node would serve the private model in the clear")
    if level == "A" and has_vault:
        raise ConfigError(f"{what}: node.toml has a [vault] section but genesis says level A (public models)")
