"""Run many seeded scenarios (in parallel processes) and summarise them.

Each scenario is independent and fully determined by its seed, so they can
run in any order on any number of processes; the summary is the same.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from tclearn.sim.scenario import ScenarioResult, ScenarioSpec, run_scenario

__all__ = ["Summary", "run_many"]


@dataclass
class Summary:
    scenarios: int = 0
    rounds: int = 0
    committed: int = 0
    safety_violations: int = 0
    liveness_failures: int = 0
    evidence: int = 0
    failing_seeds: list[int] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    members: int = 0
    committee: int = 0
    byzantine: int = 0
    malicious: int = 0
    attack: str | None = None
    malicious_increments: int = 0
    malicious_rejected: int = 0

    def add(self, r: ScenarioResult) -> None:
        self.scenarios += 1
        self.malicious_increments += r.malicious_increments
        self.malicious_rejected += r.malicious_rejected
        self.rounds += r.rounds
        self.committed += r.committed
        self.evidence += r.evidence
        self.safety_violations += len(r.safety_violations)
        if r.liveness_failure is not None:
            self.liveness_failures += 1
        if not r.ok:
            self.failing_seeds.append(r.seed)
            self.failures.append({"seed": r.seed, "safety_violations": r.safety_violations[:3],
                                  "liveness_failure": r.liveness_failure, "byzantine": r.byzantine,
                                  "faults": r.faults})

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenarios": self.scenarios, "members": self.members, "committee": self.committee,
            "byzantine": self.byzantine, "malicious": self.malicious, "attack": self.attack,
            "malicious_increments": self.malicious_increments, "malicious_rejected": self.malicious_rejected,
            "rounds": self.rounds, "committed": self.committed,
            "safety_violations": self.safety_violations, "liveness_failures": self.liveness_failures,
            "evidence": self.evidence, "failing_seeds": sorted(self.failing_seeds),
            "failures": sorted(self.failures, key=lambda f: f["seed"]), "seconds": round(self.seconds, 2),
        }


def _one(spec: ScenarioSpec) -> ScenarioResult:
    return run_scenario(spec)


def run_many(
    seeds: Iterable[int],
    *,
    members: int = 7,
    committee: int = 4,
    byzantine: int = 1,
    malicious: int = 0,
    attack: str | None = None,
    jobs: int | None = None,
    progress: Callable[[ScenarioResult], None] | None = None,
) -> Summary:
    specs = [ScenarioSpec(seed=s, members=members, committee=committee, byzantine=byzantine, malicious=malicious,
                          attack=attack) for s in seeds]
    summary = Summary(members=members, committee=committee, byzantine=byzantine, malicious=malicious, attack=attack)
    start = time.perf_counter()
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(specs) <= 1:
        results: Iterable[ScenarioResult] = map(_one, specs)
        for r in results:
            summary.add(r)
            if progress:
                progress(r)
    else:
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with ctx.Pool(jobs) as pool:
            for r in pool.imap_unordered(_one, specs, chunksize=4):
                summary.add(r)
                if progress:
                    progress(r)
    summary.seconds = time.perf_counter() - start
    return summary
