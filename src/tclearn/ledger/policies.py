"""The coalition's learning policies that genesis fixes: when to stop, when to lower the learning rate.

Plain validated records, so genesis can carry them; what they mean over a
chain is `tclearn.consensus.progress`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tclearn.errors import ConfigError

__all__ = ["StoppingRule", "LearningRatePolicy", "LEARNING_RATE_POLICY_KEYS"]

# the keys of genesis' [adaptive_lr] table (`tclearn init` refuses any other as a typo)
LEARNING_RATE_POLICY_KEYS = frozenset({"factor", "patience", "min_lr", "min_delta", "epochs"})


def _int(value: Any, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum}")
    return value


def _float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number")
    return float(value)


@dataclass(frozen=True)
class StoppingRule:
    patience: int  # accepted increments without a real improvement
    min_delta: float = 0.0  # an improvement of G by at most this does not count

    def __post_init__(self) -> None:
        _int(self.patience, "consensus.stop_patience", 1)
        if not 0.0 <= self.min_delta < 1.0:
            raise ConfigError("consensus.stop_min_delta must lie in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": float(self.min_delta)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "StoppingRule":
        if not isinstance(d, Mapping):
            raise ConfigError("the stopping rule must be a table")
        return cls(patience=_int(d.get("patience"), "consensus.stop_patience", 1),
                   min_delta=_float(d.get("min_delta", 0.0), "consensus.stop_min_delta"))


@dataclass(frozen=True)
class LearningRatePolicy:
    factor: float = 0.5
    patience: int = 8
    min_lr: float = 1e-5
    min_delta: float = 0.0
    # local epochs from the first lowering on: each lowering block also caps the epochs at this
    # (None: the epochs stay as they are). A later increment is a smaller step on a model that
    # mostly knows its task; fewer passes over a hospital's pool pull it less towards that pool.
    epochs: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.factor < 1.0:
            raise ConfigError("adaptive_lr.factor must lie in (0, 1)")
        _int(self.patience, "adaptive_lr.patience", 1)
        if not self.min_lr > 0:
            raise ConfigError("adaptive_lr.min_lr must be > 0")
        if not 0.0 <= self.min_delta < 1.0:
            raise ConfigError("adaptive_lr.min_delta must lie in [0, 1)")
        if self.epochs is not None:
            _int(self.epochs, "adaptive_lr.epochs", 1)

    def to_dict(self) -> dict[str, Any]:
        """Genesis' form; `epochs` only when set, so a genesis without it hashes as it always did."""
        return {"factor": float(self.factor), "patience": self.patience, "min_lr": float(self.min_lr),
                "min_delta": float(self.min_delta), **({} if self.epochs is None else {"epochs": self.epochs})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "LearningRatePolicy":
        if not isinstance(d, Mapping):
            raise ConfigError("[adaptive_lr] must be a table")
        unknown = sorted(set(d) - LEARNING_RATE_POLICY_KEYS)
        if unknown:
            raise ConfigError(f"unknown adaptive_lr key(s): {', '.join(unknown)}")
        return cls(factor=_float(d.get("factor", 0.5), "adaptive_lr.factor"),
                   patience=_int(d.get("patience", 8), "adaptive_lr.patience", 1),
                   min_lr=_float(d.get("min_lr", 1e-5), "adaptive_lr.min_lr"),
                   min_delta=_float(d.get("min_delta", 0.0), "adaptive_lr.min_delta"),
                   epochs=None if d.get("epochs") is None else _int(d["epochs"], "adaptive_lr.epochs", 1))


