"""Where a node keeps its files under `data_dir`: every path a node writes is named here, once.

A restarted node needs exactly these: the chain, the safety snapshot, the model
store and the training record (ids already used, local test ids); the log is
for operators and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["NodeLayout"]


@dataclass(frozen=True)
class NodeLayout:
    """The files of one node's directory (`node.toml`'s `data_dir`)."""

    root: Path

    @property
    def chain(self) -> Path:
        return self.root / "chain.sqlite"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def safety(self) -> Path:
        return self.root / "safety.json"

    @property
    def trained(self) -> Path:
        return self.root / "trained.json"

    @property
    def log(self) -> Path:
        return self.root / "node.log"
