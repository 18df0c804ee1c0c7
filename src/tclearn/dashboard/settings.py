"""The `[dashboard]` section of `node.toml`.

    [dashboard]
    enabled = true              # pages on the node's mutual-TLS port (default true)
    port = 8080                 # also plain HTTP on 127.0.0.1:8080 (loopback only; default: none)
    journal = "vault/journal.jsonl"   # level B/C: the audit journal to show (default: none)
    supervisor_key = "vault/supervisor.pub"  # verify it with the vault's key (hex; default: unverified)
    reference = 0.912           # the centralised reference score on G, when the coalition knows it
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tclearn.errors import ConfigError

__all__ = ["DashboardSettings", "dashboard_settings"]


@dataclass(frozen=True)
class DashboardSettings:
    enabled: bool = True
    port: int | None = None
    journal: Path | None = None
    supervisor_key: Path | None = None
    reference: float | None = None

    def to_toml(self) -> str:
        """The section as TOML ('' when every value is the default)."""
        if self == DashboardSettings():
            return ""
        lines = ["[dashboard]", f"enabled = {'true' if self.enabled else 'false'}"]
        if self.port is not None:
            lines.append(f"port = {self.port}")
        for key in ("journal", "supervisor_key"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key} = {json.dumps(str(value))}")
        if self.reference is not None:
            lines.append(f"reference = {self.reference!r}")
        return "\n".join(lines) + "\n"


def dashboard_settings(section: Any, config_path: Path) -> DashboardSettings:
    """Parse `[dashboard]` (None: the defaults); paths are relative to the config file's folder."""
    if section is None:
        return DashboardSettings()
    where = f"{config_path}: [dashboard]"
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(section) - {"enabled", "port", "journal", "supervisor_key", "reference"}
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)}")
    enabled = section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where} enabled must be true or false")
    port = section.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535):
        raise ConfigError(f"{where} port must be an integer in [0, 65535]")
    paths: dict[str, Path | None] = {}
    for key in ("journal", "supervisor_key"):
        value = section.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where} {key} must be a path")
        paths[key] = None if value is None else (Path(value) if Path(value).is_absolute()
                                                 else config_path.parent / value)
    reference = section.get("reference")
    if reference is not None and (isinstance(reference, bool) or not isinstance(reference, (int, float))
                                  or not math.isfinite(reference)):
        raise ConfigError(f"{where} reference must be a number")
    return DashboardSettings(enabled, port, paths["journal"], paths["supervisor_key"],
                             None if reference is None else float(reference))
