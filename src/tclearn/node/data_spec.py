"""Where a node's data come from, as `node.toml` says: `[data]` (this member's own, D_i) and `[test_set]` (G).

    [data]
    kind = "nifti"        # builtin | npz | nifti
    path = "/srv/scans"   # npz: one .npz file or a folder of them; nifti: a Decathlon folder
                          # (imagesTr/, labelsTr/); a relative path is relative to node.toml

`builtin` (the default, for trials): this partner's share of the task's own
data set, derived from the coalition seed and the node's index (`[node]
seed`, `index`, `partners`), the same on every node; for `[test_set]`, the
task's own G. A node whose G does not hash to genesis's `test_set.hash`
refuses to start (`tclearn.node.data_source`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tclearn.errors import ConfigError

__all__ = ["DATA_KINDS", "DataSpec", "parse_data_spec"]

DATA_KINDS = ("builtin", "npz", "nifti")


@dataclass(frozen=True)
class DataSpec:
    """One data source: its kind and, unless built in, its path."""

    kind: str = "builtin"
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ConfigError(f"data kind must be one of {', '.join(DATA_KINDS)}, got {self.kind!r}")
        if (self.kind == "builtin") != (self.path is None):
            raise ConfigError(f"data kind {self.kind!r} " + ("takes no path" if self.kind == "builtin"
                                                             else "needs a path"))

    @property
    def builtin(self) -> bool:
        return self.kind == "builtin"

    def to_toml(self, section: str) -> str:
        """The `[section]` table, or "" for the default (built in)."""
        if self.builtin:
            return ""
        return f"[{section}]\nkind = {json.dumps(self.kind)}\npath = {json.dumps(str(self.path))}\n"


def parse_data_spec(table: Any, section: str, config_path: Path) -> DataSpec:
    """`[section]` of node.toml (absent: built in); a relative path is taken from node.toml's folder."""
    if table is None:
        return DataSpec()
    where = f"{config_path}: [{section}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - {"kind", "path"})
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r} (known: kind, path)")
    kind = table.get("kind", "builtin")
    raw = table.get("path")
    if not isinstance(kind, str) or (raw is not None and not isinstance(raw, str)):
        raise ConfigError(f"{where}: kind and path must be strings")
    path = None if raw is None else (Path(raw) if Path(raw).is_absolute() else config_path.parent / raw)
    try:
        return DataSpec(kind, path)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
