"""Seeded fault scenarios, TigerBeetle style: a safety phase, then a liveness phase.

Everything random in a scenario comes from `random.Random(seed)`: which
members are byzantine and how they lie, the network's loss, duplication and
delay rates, a partition, crashes and restarts, clock skews. Fault rates are
drawn per seed and kept within what the protocol must survive (the
byzantine count is the caller's: F < K/3 is the bound).

1. Safety phase (`safety_ticks`): all faults on. The monitor checks the
   invariants at every commit (see `monitor.Monitor`).
2. Liveness phase: the network heals (no loss, no partition, short delays),
   crashed members restart from their stores; every honest member must reach
   `liveness_blocks` more blocks within `liveness_ticks`, or the scenario
   reports a liveness failure.

A failing scenario is replayed exactly by `run_scenario(ScenarioSpec(seed=…))`
(or `tclearn sim consensus --seed …`).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from tclearn.consensus.params import ConsensusParams
from tclearn.sim.adversary import BEHAVIOURS
from tclearn.sim.build import synthetic_coalition
from tclearn.sim.network import FaultModel

__all__ = ["ScenarioSpec", "ScenarioResult", "run_scenario", "draw_faults"]


@dataclass(frozen=True)
class ScenarioSpec:
    seed: int
    members: int = 7
    committee: int = 4
    byzantine: int = 1
    safety_ticks: int = 150
    liveness_ticks: int = 600
    liveness_blocks: int = 2
    malicious: int = 0  # partners proposing `attack` candidates (validators stay honest)
    attack: str | None = None


@dataclass
class ScenarioResult:
    seed: int
    committed: int  # blocks committed (canonical height at the end)
    rounds: int  # block-agreement rounds those heights took
    safety_violations: list[str]
    liveness_failure: str | None
    evidence: int
    ticks: int
    byzantine: dict[str, list[str]] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    malicious: list[str] = field(default_factory=list)
    malicious_increments: int = 0  # malicious candidates committed as increments
    malicious_rejected: int = 0  # … and recorded as rejected blocks

    @property
    def ok(self) -> bool:
        return not self.safety_violations and self.liveness_failure is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    byzantine: dict[str, set[str]]
    faults: FaultModel
    partition: tuple[int, int, list[frozenset[str]]] | None
    crashes: list[tuple[str, int, int]]  # member, crash tick, restart tick
    skews: dict[str, int]
    malicious: list[str] = field(default_factory=list)


def draw_faults(spec: ScenarioSpec) -> _Plan:
    rng = random.Random(spec.seed)
    members = [f"m{i}" for i in range(spec.members)]
    byz_members = rng.sample(members, spec.byzantine)
    byzantine = {m: set(rng.sample(BEHAVIOURS, rng.randint(1, 3))) for m in byz_members}
    faults = FaultModel(drop=rng.uniform(0.0, 0.2), duplicate=rng.uniform(0.0, 0.1), delay_min=1,
                        delay_max=rng.randint(1, 6))
    partition = None
    if rng.random() < 0.5:
        shuffled = members[:]
        rng.shuffle(shuffled)
        cut = rng.randint(1, len(members) - 1)
        start = rng.randint(0, spec.safety_ticks - 1)
        partition = (start, start + rng.randint(10, 80), [frozenset(shuffled[:cut]), frozenset(shuffled[cut:])])
    crashes = []
    for m in members:
        if m not in byzantine and rng.random() < 0.25:
            at = rng.randint(1, spec.safety_ticks)
            crashes.append((m, at, at + rng.randint(5, 60)))
    skews = {m: rng.randint(-3000, 3000) for m in members}
    others = [m for m in members if m not in byzantine]
    malicious = sorted(random.Random(spec.seed * 7919 + 1).sample(others, min(spec.malicious, len(others))))
    return _Plan(byzantine, faults, partition, crashes, skews, malicious)


def run_scenario(spec: ScenarioSpec, params: ConsensusParams | None = None) -> ScenarioResult:
    plan = draw_faults(spec)
    if spec.malicious and spec.attack is None:
        raise ValueError("malicious partners need an attack")
    setup = synthetic_coalition(spec.members, spec.committee, seed=spec.seed, byzantine=plan.byzantine,
                                faults=plan.faults, params=params, skews_ms=plan.skews,
                                attacks={m: spec.attack for m in plan.malicious if spec.attack})
    c = setup.coalition
    normal_groups = None
    for t in range(1, spec.safety_ticks + 1):
        if plan.partition is not None:
            start, end, groups = plan.partition
            c.network.faults.groups = groups if start <= t < end else normal_groups
        for member, down, up in plan.crashes:
            if t == down:
                c.crash(member)
            elif t == up:
                c.restart(member)
        c.step()
    # liveness phase: heal everything
    c.network.faults = FaultModel(delay_min=1, delay_max=2)
    for member in c.members:
        c.restart(member)
    target = c.monitor.height + spec.liveness_blocks
    live = c.run_until(target, spec.liveness_ticks)
    failure = None
    if not live:
        stuck = {m: c.drivers[m].height for m in sorted(c.honest)}  # type: ignore[union-attr]
        failure = f"honest members did not reach height {target} in {spec.liveness_ticks} ticks: {stuck}"
    faults = {"drop": round(plan.faults.drop, 3), "duplicate": round(plan.faults.duplicate, 3),
              "delay_max": plan.faults.delay_max, "partition": plan.partition is not None,
              "crashes": len(plan.crashes)}
    observer = sorted(c.honest - set(plan.malicious))[0]
    chain = c.chain(observer)
    bad = [b for b in chain if b.contributor in plan.malicious]
    return ScenarioResult(
        seed=spec.seed, committed=c.monitor.height, rounds=c.rounds(),
        safety_violations=list(c.monitor.violations), liveness_failure=failure, evidence=len(c.evidence),
        ticks=c.tick, byzantine={m: sorted(b) for m, b in plan.byzantine.items()}, faults=faults,
        malicious=plan.malicious, malicious_increments=sum(1 for b in bad if b.kind == "increment"),
        malicious_rejected=sum(1 for b in bad if b.kind == "rejected"),
    )
