"""An honest partner's check before it proposes: will the floor on G reject this?

Validators reject a candidate whose score on the shared global test set G is
more than `max_drop` below the head's (`tclearn.quality.judge`). Every member
holds G (any member may be drawn as a validator), so a partner can see that
coming. A partner whose data covers only some classes is the usual case: one
honest increment can forget what the others taught, and the coalition rightly
refuses it. Rather than spend a committee's evaluations on an increment it
knows will be refused, the partner backtracks along its own increment, as a
line search does: it tries `head + f·increment` for f = 1/2, then 1/4, and
proposes the first that keeps G within the floor. The step keeps its
direction (what the partner's data teaches) and loses only length.

If no step passes, the full increment is proposed anyway and the coalition
decides (and records the rejection): the check never hides a contribution.
An attacker would not run this check, and nothing depends on it: the
committee still scores every candidate itself.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import torch

from tclearn.data.dataset import Dataset
from tclearn.learning.evaluate import evaluate_state, mean_score
from tclearn.learning.serialize import candidate_from, increment_hash, model_hash
from tclearn.learning.tasks import Task
from tclearn.learning.train import TrainResult
from tclearn.quality import g_floor_broken

__all__ = ["BACKTRACK_FACTORS", "SelfCheck", "backtrack_to_floor"]

BACKTRACK_FACTORS: tuple[float, ...] = (0.5, 0.25)


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    """What the check found: the step proposed (1.0: the full increment) and the G scores seen."""

    factor: float
    g_old: float
    g_full: float
    g_proposed: float
    tried: int  # candidates scored on G (the full one included)
    within_floor: bool  # False: no step kept G within the floor, the full increment goes to the committee


def _scaled(head: Mapping[str, torch.Tensor], inc: Mapping[str, torch.Tensor], f: float) -> dict[str, torch.Tensor]:
    # float tensors move by f·increment; integer buffers (counters) keep the trained value
    return {k: (head[k] + f * inc[k]) if inc[k].is_floating_point() else head[k] + inc[k] for k in inc}


def backtrack_to_floor(
    task: Task,
    head: Mapping[str, torch.Tensor],
    result: TrainResult,
    global_test: Dataset,
    max_drop: float,
    *,
    g_old: float | None = None,
    factors: Sequence[float] = BACKTRACK_FACTORS,
    g_scores: Callable[[Mapping[str, torch.Tensor], str], Sequence[float]] | None = None,
) -> tuple[TrainResult, SelfCheck]:
    """`result`, or a shortened copy of it that keeps G within `max_drop` of the head (see the module docstring).

    `g_old`: the head's mean score on G when the caller has it cached.
    `g_scores(state, model_hash)`: how a candidate is scored on G
    (`Evaluator.candidate_g_scores`; default: evaluated on `global_test`).
    The returned result differs from `result` only in its candidate, increment
    and their hashes (same batch, ids and sample count).
    """
    def score(state: Mapping[str, torch.Tensor], state_hash: str) -> float:
        return mean_score(g_scores(state, state_hash) if g_scores else evaluate_state(task, state, global_test))

    if g_old is None:
        g_old = mean_score(evaluate_state(task, head, global_test))
    g_full = score(result.candidate, result.model_hash)
    if not g_floor_broken(g_old, g_full, max_drop):
        return result, SelfCheck(1.0, g_old, g_full, g_full, 1, True)
    tried = 1
    for f in factors:
        if not 0.0 < f < 1.0:
            raise ValueError(f"a backtracking factor must lie in (0, 1), got {f}")
        inc, cand = candidate_from(_scaled(head, result.increment, f), head)
        cand_hash = model_hash(cand)
        g = score(cand, cand_hash)
        tried += 1
        if not g_floor_broken(g_old, g, max_drop):
            shortened = dataclasses.replace(result, candidate=cand, increment=inc, model_hash=cand_hash,
                                            increment_hash=increment_hash(inc))
            return shortened, SelfCheck(f, g_old, g_full, g, tried, True)
    return result, SelfCheck(1.0, g_old, g_full, g_full, tried, False)
