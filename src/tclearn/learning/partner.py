"""One partner, everywhere: the honest increment a member proposes, in the node, the demo and the benchmarks.

What a partner does at its turn, in one place:

* batch policy — `batch_params`: a batch its pool can fill (a small hospital
  trains on all it has), never below the coalition's minimum, else it passes;
* seeds — the training seed is drawn from the partner's seed and the turn's
  salt (`seed_for`), so a run replays from its seed;
* training — `train_increment` on one CPU thread, re-using what the coalition
  counted (`spent`) without claiming it as new;
* self-check — given the chain's floor (max_drop), score the candidate on G
  and shorten an increment the floor would refuse (`backtrack_to_floor`);
* local-test share — the batch's held-out samples join the partner's L and
  are never trained on (`keep_local_test`).

Who calls it adds only its own concerns: the node its recovery record and its
propose mode (`tclearn.node.trainer`), the demo its id registry and vault
(`tclearn.demo.partners`), the benchmarks their aggregation baselines
(`bench/attacks.py`); attacks wrap a partner (`tclearn.attacks.partner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Container, Sequence

import numpy as np

from tclearn.data import DataPool
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.self_check import SelfCheck, backtrack_to_floor
from tclearn.learning.serialize import State
from tclearn.learning.tasks import Task
from tclearn.learning.train import TrainResult, batch_params, train_increment

__all__ = ["Partner", "Turn"]


def _untimed(phase: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@dataclass(frozen=True)
class Turn:
    """One trained increment: the result, the self-check (None: not checked) and the hyper-parameters used."""

    result: TrainResult
    check: SelfCheck | None
    hp: HyperParams

    @property
    def step(self) -> float:
        return 1.0 if self.check is None else self.check.factor


class Partner:
    """A partner's pool, its evaluator (G and L) and its training policy (see the module docstring).

    `timed(phase, fn, *args)`: where the time of "training" and "evaluation"
    goes (the demo's timer); by default it is not measured.
    """

    def __init__(self, task: Task, pool: DataPool, evaluator: Any, hp: HyperParams, *, seed: int,
                 self_check_floor: float | None = None, timed: Callable[..., Any] | None = None) -> None:
        self.task, self.pool, self.evaluator, self.hp = task, pool, evaluator, hp
        self.seed, self.self_check_floor = seed, self_check_floor
        self.timed = timed or _untimed

    def hyperparams(self, overrides: dict[str, Any] | None = None) -> HyperParams:
        """The coalition's hyper-parameters, with a hyperparams block's values applied."""
        return self.hp.updated(overrides) if overrides else self.hp

    def seed_for(self, salt: Sequence[int]) -> int:
        """The training seed of a turn: drawn from the partner's seed and the turn's salt (height, …)."""
        return int(np.random.default_rng([self.seed, *salt]).integers(2**31))

    def fits(self, hp: HyperParams, pool: DataPool | None = None, spent: Container[str] = ()) -> HyperParams | None:
        """The batch policy: `hp` with a batch the pool can fill, or None (pass the turn)."""
        return batch_params(self.pool if pool is None else pool, hp, spent)

    def increment(self, head: State, salt: Sequence[int], hp: HyperParams, *, pool: DataPool | None = None,
                  spent: Container[str] = (), g_old: Callable[[], float] | None = None) -> Turn | None:
        """Train one increment of `head` (None: the pool cannot fill a batch).

        `g_old`: the head's score on G, asked for only when the partner self-checks (a floor is set).
        """
        pool = self.pool if pool is None else pool
        fitted = self.fits(hp, pool, spent)
        if fitted is None:
            return None
        res = self.timed("training", train_increment, self.task, head, pool, fitted, seed=self.seed_for(salt),
                         threads=1, spent=spent)
        check = None
        if self.self_check_floor is not None and g_old is not None:
            before = self.timed("evaluation", g_old)
            res, check = self.timed("evaluation", backtrack_to_floor, self.task, head, res,
                                    self.evaluator.global_test, self.self_check_floor, g_old=before,
                                    g_scores=getattr(self.evaluator, "candidate_g_scores", None))
        return Turn(res, check, fitted)

    def keep_local_test(self, res: TrainResult, *, into_l: bool = True) -> None:
        """The batch's local-test share: never trained on again, and (unless poisoned) part of this partner's L."""
        self.pool.hold_out(res.local_test_ids)
        if into_l:
            self.evaluator.add_local_test(res.local_test)
