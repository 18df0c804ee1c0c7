"""A real node process whose partner publishes degrading increments: `python degrading_node.py node.toml`.

The node is the production one (`tclearn.node.runtime.serve`); only its
trainer's partner is wrapped, the way a member running a modified node would,
with the library's own attack (`tclearn.attacks.partner.AttackedPartner`,
`sign-flip`: the honest increment negated and boosted, gradient ascent). The
first `HONEST_FIRST` increments stay honest, so the coalition's model is good
enough for the attack to show on G. An attacker never self-checks.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np

from tclearn.attacks.partner import AttackedPartner, flatten, unflatten
from tclearn.learning.serialize import apply_increment, canonical_state, increment_hash, model_hash
from tclearn.node import runtime
from tclearn.node.trainer import NodeTrainer

HONEST_FIRST = 1


class SignFlipping:
    """The node's partner, its increments forged by `AttackedPartner` after `HONEST_FIRST` honest turns."""

    def __init__(self, partner: Any) -> None:
        self._partner = partner
        self._attack = AttackedPartner(partner, "sign-flip", rng=np.random.default_rng(0), key=b"degrading-node")
        self._turns = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._partner, name)

    def increment(self, head: Any, salt: Any, hp: Any, **kwargs: Any) -> Any:
        turn = self._partner.increment(head, salt, hp, **kwargs)
        self._turns += 1
        if turn is None or self._turns <= HONEST_FIRST:
            return turn
        vec, layout = flatten(turn.result.increment)
        inc = canonical_state(unflatten(self._attack.forge(vec, head, hp), layout))
        candidate = apply_increment(canonical_state(head), inc)
        forged = dataclasses.replace(turn.result, candidate=candidate, increment=inc, model_hash=model_hash(candidate),
                                     increment_hash=increment_hash(inc))
        return dataclasses.replace(turn, result=forged)


def _degrading_trainer(*args: Any, **kwargs: Any) -> NodeTrainer:
    trainer = NodeTrainer(*args, **kwargs)
    trainer.partner = SignFlipping(trainer.partner)  # type: ignore[assignment]
    return trainer


def main(config: str) -> None:
    runtime.NodeTrainer = _degrading_trainer  # type: ignore[misc,assignment]
    runtime.serve(config)


if __name__ == "__main__":
    main(sys.argv[1])
