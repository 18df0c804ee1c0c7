"""A malicious partner: an honest `tclearn.learning.Partner` wrapped by one attack.

The attack changes what the partner trains on or what it publishes, nothing
else: the batch policy, seeds and training are the honest partner's, so the
demo, the benchmarks and a deployed node measure the same partner.

* data attacks (`label-flip`, `random-labels`, `off-task`): a poisoned copy of
  the partner's data replaces it for good before its first batch;
* `replay`: after its first turn, the partner re-trains on the samples the
  coalition already counted and claims them as new again;
* model attacks (`noise`, `sign-flip`, `scale`, `alie`, `lazy`): the honest
  increment, forged before it is published (`forge`).

An attacker never self-checks against the floor and trains plainly (no
distillation, no logit adjustment): its data must bite. Every random draw comes
from the attacker's own seeded generator.
"""

from __future__ import annotations

from typing import Any, Container

import numpy as np

from tclearn.attacks import model_attacks
from tclearn.attacks.data_attacks import poison_batch
from tclearn.data import DataPool
from tclearn.data.accounting import SpentIds
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.partner import Partner
from tclearn.learning.serialize import State
from tclearn.learning.train import train_increment

__all__ = ["ATTACKS", "DATA_ATTACKS", "MODEL_ATTACKS", "AttackedPartner", "flatten", "unflatten"]

DATA_ATTACKS = ("label-flip", "random-labels", "off-task", "replay")
MODEL_ATTACKS = ("noise", "sign-flip", "scale", "alie", "lazy")
ATTACKS = DATA_ATTACKS + MODEL_ATTACKS


def flatten(state: dict[str, Any]) -> tuple[np.ndarray, list[tuple[str, Any]]]:
    """An increment as one float32 vector (tensors in name order), and the layout to undo it."""
    names = sorted(state)
    layout = [(n, state[n].shape) for n in names]
    return np.concatenate([state[n].detach().reshape(-1).numpy().astype(np.float32) for n in names]), layout


def unflatten(vec: np.ndarray, layout: list[tuple[str, Any]]) -> dict[str, Any]:
    import torch

    out, i = {}, 0
    for name, shape in layout:
        n = int(np.prod(shape)) if len(shape) else 1
        out[name] = torch.from_numpy(np.ascontiguousarray(vec[i: i + n], dtype=np.float32)).reshape(shape)
        i += n
    return out


class AttackedPartner:
    """`partner`, running `attack` (see the module docstring); `rng` is the attacker's own generator."""

    def __init__(self, partner: Partner, attack: str, *, rng: np.random.Generator, key: bytes,
                 n_partners: int = 1, n_malicious: int = 1) -> None:
        if attack not in ATTACKS:
            raise ValueError(f"unknown attack {attack!r} (known: {', '.join(ATTACKS)})")
        self.partner, self.attack, self.rng, self.key = partner, attack, rng, key
        self.n_partners, self.n_malicious = n_partners, n_malicious
        partner.self_check_floor = None  # attackers never check

    def hyperparams(self, overrides: dict[str, Any] | None = None) -> HyperParams:
        """Plain training: no distillation or logit adjustment, so the attack bites."""
        return self.partner.hyperparams(overrides).updated({"distill": 0.0, "logit_adjust": False})

    def poison(self) -> None:
        """A data attack's poisoned copy replaces the partner's data (the caller: until its first batch)."""
        if self.attack in DATA_ATTACKS and self.attack != "replay":
            p = self.partner
            p.pool = DataPool(poison_batch(p.task, p.pool.data, self.attack, self.rng), self.key)

    def batch_pool(self, spent: Container[str], contributed: Container[str] | None = None,
                   started: bool = False) -> tuple[DataPool, Container[str]]:
        """What the turn trains on, and what it may not claim as new.

        `replay`, once started: the samples counted already (`contributed`, default `spent`), claimed as new.
        """
        pool = self.partner.pool
        if self.attack == "replay" and started:
            counted = spent if contributed is None else contributed
            keep = [n for n, i in enumerate(pool.ids) if i in counted]
            return DataPool(pool.data.subset(keep), self.key), SpentIds()
        return pool, spent

    def forge(self, honest: np.ndarray, head: State, hp: HyperParams) -> np.ndarray:
        """The increment a model attack publishes instead of the honest one (a flat vector)."""
        a = self.attack
        if a == "noise":
            return model_attacks.noise(honest, self.rng)
        if a == "sign-flip":
            return model_attacks.sign_flip(honest)
        if a == "scale":
            return model_attacks.scale(honest)
        if a == "lazy":
            return model_attacks.lazy(honest)
        if a == "alie":  # estimate the honest spread from extra increments trained on the attacker's own data
            samples = [honest]
            p = self.partner
            for _ in range(2):
                extra = train_increment(p.task, head, DataPool(p.pool.data, self.key), hp,
                                        seed=int(self.rng.integers(2**31)), threads=1)
                samples.append(flatten(extra.increment)[0])
            return model_attacks.alie(np.stack(samples), self.n_partners, max(1, self.n_malicious))
        return honest
