"""A whole coalition in one process: real drivers on a seeded network and a virtual clock.

* `SimCoalition`: members (each a `tclearn.member.MemberDriver`), network,
  clock, crashes and restarts, and a `Monitor` of the safety invariants.
  Hand it real evaluators and trainers for a one-process coalition (the demo),
  or the synthetic ones (`synthetic_coalition`) for protocol tests.
* `FaultModel`, `SimNetwork`, `VirtualClock`: the simulated world.
* `ByzantineTransport`: adversaries, as lying transports around honest drivers.
* `run_scenario` / `run_many`: seeded fault scenarios (`tclearn sim consensus`).
"""
from tclearn.sim.adversary import BEHAVIOURS, ByzantineTransport
from tclearn.sim.build import make_genesis, make_identities, synthetic_coalition
from tclearn.sim.monitor import Monitor
from tclearn.sim.world import SimCoalition
from tclearn.sim.network import FaultModel, SimNetwork, VirtualClock
from tclearn.sim.runner import Summary, run_many
from tclearn.sim.scenario import ScenarioResult, ScenarioSpec, run_scenario

__all__ = [
    "BEHAVIOURS", "ByzantineTransport", "FaultModel", "Monitor", "ScenarioResult", "ScenarioSpec", "SimCoalition",
    "SimNetwork", "Summary", "VirtualClock", "make_genesis", "make_identities", "run_many", "run_scenario",
    "synthetic_coalition",
]
