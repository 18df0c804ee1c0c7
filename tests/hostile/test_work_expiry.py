"""Finding 4: a failed evaluation is retried a bounded number of times, and never after its height is committed.

Before: `MemberDriver` re-queued an evaluation that raised `ModelNotFoundError`
every 20 ticks for ever, even after its height was committed: one bogus
proposal became a fetch every 2 s for good.
"""

from __future__ import annotations

from typing import Any

from tclearn.learning.errors import ModelNotFoundError
from tclearn.member import driver as driver_module
from tclearn.sim.build import synthetic_coalition
from tclearn.sim.network import FaultModel


class _NeverFound:
    """An evaluator that never gets the candidate's model (a proposer that never serves it)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def evaluate(self, parent: str, candidate: str) -> Any:
        self.calls += 1
        raise ModelNotFoundError(f"{candidate[:12]} not found at any peer yet")


def test_a_failed_evaluation_is_retried_a_bounded_number_of_times_and_expires_with_its_height() -> None:
    setup = synthetic_coalition(4, 3, seed=3, faults=FaultModel(delay_min=1, delay_max=2))
    c = setup.coalition
    stuck = _NeverFound(setup.evaluators["m1"])
    c.drivers["m1"].evaluator = stuck
    assert c.run_until(3, 3000, members=["m0", "m2", "m3"])  # the other validators decide without m1's vote
    c.run(2000)  # 200 s of a 100 ms tick
    driver = c.drivers["m1"]
    retries_max = getattr(driver_module, "EVALUATION_RETRIES_MAX", 3)
    assert driver.height >= 3
    # nothing of a committed height is left to retry
    assert all(action.height > driver.height for _, action in driver._retry), driver._retry
    # each evaluation m1 was asked for (at most one per height) ran at most 1 + retries_max times
    assert stuck.calls <= (driver.height + 1) * (1 + retries_max), (stuck.calls, driver.height)
