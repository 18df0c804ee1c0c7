"""A real node process whose partner publishes degrading increments: `python degrading_node.py node.toml`.

The node is the production one (`tclearn.node.runtime.serve`); only its
training step is wrapped, the way `tclearn.attacks` wraps an honest partner:
the increment it trained honestly is negated and boosted
(`model_attacks.sign_flip`, gradient ascent), and the candidate is the head
plus that increment. Its first `HONEST_FIRST` increments stay honest, so the
coalition's model is good enough for the attack to show on G. The config
should say `self_check = false` (the honest self-check would shorten the
attack until it is harmless).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
import torch

from tclearn.attacks import model_attacks
from tclearn.learning.serialize import apply_increment, canonical_state, increment_hash, model_hash
from tclearn.node import runtime

HONEST_FIRST = 1


def _sign_flipped(inc: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(model_attacks.sign_flip(v.detach().cpu().numpy().astype(np.float32), boost=5.0))
            for k, v in inc.items()}


def main(config: str) -> None:
    module = sys.modules[runtime.NodeTrainer.__module__]  # wherever the node's trainer looks the function up
    honest = module.train_increment
    calls = [0]

    def degrading(task: Any, head: Any, pool: Any, hp: Any, **kwargs: Any) -> Any:
        res = honest(task, head, pool, hp, **kwargs)
        calls[0] += 1
        if calls[0] <= HONEST_FIRST:
            return res
        inc = canonical_state(_sign_flipped(res.increment))
        candidate = apply_increment(canonical_state(head), inc)
        return dataclasses.replace(res, candidate=candidate, increment=inc, model_hash=model_hash(candidate),
                                   increment_hash=increment_hash(inc))

    module.train_increment = degrading
    runtime.serve(config)


if __name__ == "__main__":
    main(sys.argv[1])
