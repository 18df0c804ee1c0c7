"""The coalition's hyper-parameter rules, in one place: what genesis and `hyperparams` blocks may set.

Genesis fixes four hyper-parameters for the whole coalition — learning rate,
optimiser, epochs, minimum batch size — and a certified `hyperparams` block
may change some of them later. Every place that checks such values uses these
rules: the genesis loader (`ledger.genesis`), the chain verifier
(`ledger.verify`), a governance request (`consensus.governance`), and the
partner's training record (`learning.hyperparams`, which adds local knobs on
top). Pure and torch-free, so the protocol core can use it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["OPTIMIZERS", "HYPERPARAM_KEYS", "GENESIS_KEYS", "HYPERPARAM_INT_MAX", "hyperparams_problem"]

OPTIMIZERS = ("sgd", "adam")
GENESIS_KEYS = ("learning_rate", "optimizer", "epochs", "min_batch_size")  # in the order genesis lists them
HYPERPARAM_KEYS = frozenset(GENESIS_KEYS)
HYPERPARAM_INT_MAX = 1_000_000  # epochs and min_batch_size: a bound every validator enforces (no endless training)


def hyperparams_problem(hp: Any, *, prefix: str = "", complete: bool = False) -> str | None:
    """What is wrong with hyper-parameter values, or None when they follow the rules.

    `complete`: all four keys must be there (genesis); otherwise some of them
    (a `hyperparams` block or request). `prefix` goes before a field's name in
    the message (``"hyperparams."`` where the reader knows the TOML section).
    """
    if not isinstance(hp, Mapping) or not hp or set(hp) - HYPERPARAM_KEYS:
        return f"hyperparams must set some of {sorted(HYPERPARAM_KEYS)}"
    if complete:
        missing = [k for k in GENESIS_KEYS if k not in hp]
        if missing:
            return f"{prefix}{missing[0]} is missing"
    lr = hp.get("learning_rate", 1.0)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        return f"{prefix}learning_rate must be a number > 0"
    if not math.isfinite(lr):
        return f"{prefix}learning_rate must be finite"
    if hp.get("optimizer", OPTIMIZERS[0]) not in OPTIMIZERS:
        return f"{prefix}optimizer must be one of {', '.join(OPTIMIZERS)}"
    for name in ("epochs", "min_batch_size"):
        value = hp.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{prefix}{name} must be an integer ≥ 1"
        if value > HYPERPARAM_INT_MAX:
            return f"{prefix}{name} must be at most {HYPERPARAM_INT_MAX}"
    return None
