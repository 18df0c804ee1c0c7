"""Build a synthetic coalition in one call: identities, genesis, evaluators, trainers.

Identities come from `Identity.from_seed` (deterministic; for tests and the
demo only); genesis is founded as every coalition is (`tclearn.founding`). Members are named `m0`, `m1`, …; `m0` founds the coalition and
may ask for reverts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Mapping

from tclearn.consensus.params import ConsensusParams
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.founding import CoalitionPlan, numbered_names, seeded_identities
from tclearn.ledger.genesis import GenesisConfig, MemberInfo
from tclearn.sim.world import SimCoalition
from tclearn.sim.network import FaultModel
from tclearn.sim.synthetic import ModelRegistry, SyntheticEvaluator, SyntheticTrainer

__all__ = ["SyntheticSetup", "make_identities", "make_genesis", "synthetic_coalition", "T0_MS"]

T0_MS = 1_700_000_000_000
HYPERPARAMS = {"learning_rate": 0.01, "optimizer": "sgd", "epochs": 1, "min_batch_size": 16}


def make_identities(n: int, seed: bytes = b"tclearn-sim") -> list[Identity]:
    return seeded_identities(numbered_names(n), seed)


def make_genesis(identities: list[Identity], committee: int, model_hash: str, *, lam: float = 0.95,
                 revert_authorized: tuple[str, ...] = ("m0",), t0_ms: int = T0_MS,
                 turn_weights: Mapping[str, int] | None = None) -> Block:
    config = GenesisConfig(
        coalition_id="sim", level="A", members=tuple(MemberInfo(i.member_id, i.public_key) for i in identities),
        task="synthetic", architecture="number", model_config={}, model_seed=0, hyperparams=dict(HYPERPARAMS),
        lam=lam, committee_size=committee, test_set_hash="ab" * 32, founder=identities[0].member_id,
        revert_authorized=revert_authorized, turn_weights=None if turn_weights is None else dict(turn_weights),
    )
    return CoalitionPlan(config, identities[0], model_hash, t0_ms, tuple(identities)).genesis()


@dataclass
class SyntheticSetup:
    coalition: SimCoalition
    registry: ModelRegistry
    evaluators: dict[str, SyntheticEvaluator]
    trainers: dict[str, SyntheticTrainer]
    lam: float


def synthetic_coalition(
    members: int = 7,
    committee: int = 4,
    *,
    seed: int = 0,
    byzantine: Mapping[str, set[str]] | None = None,
    faults: FaultModel | None = None,
    params: ConsensusParams | None = None,
    lam: float = 0.95,
    wire: bool = False,
    skews_ms: Mapping[str, int] | None = None,
    shared_verifier: bool = True,
    no_trainer: Iterable[str] = (),
    attacks: Mapping[str, str] | None = None,
    turn_weights: Mapping[str, int] | None = None,
) -> SyntheticSetup:
    """A coalition of synthetic members; `byzantine` maps member ids to behaviours (see `sim.adversary`)."""
    identities = make_identities(members)
    registry = ModelRegistry(seed)
    genesis = make_genesis(identities, committee, registry.genesis_hash, lam=lam, turn_weights=turn_weights)
    byz = {m: set(b) for m, b in (byzantine or {}).items()}
    skip = set(no_trainer)
    evaluators = {i.member_id: SyntheticEvaluator(registry, i.member_id) for i in identities}
    trainers = {i.member_id: SyntheticTrainer(registry, i.member_id,
                                              degrading="degrading-proposer" in byz.get(i.member_id, set()),
                                              attack=(attacks or {}).get(i.member_id))
                for i in identities if i.member_id not in skip}

    def oracle(parent: str, candidate: str, validator: str) -> bool:
        return evaluators[validator].would_accept(parent, candidate, lam)

    coalition = SimCoalition(
        genesis, identities, evaluators=evaluators, trainers=trainers, params=params,
        rng=random.Random(seed), faults=faults, wire=wire,
        byzantine={m: b - {"degrading-proposer"} for m, b in byz.items()}, skews_ms=skews_ms,
        shared_verifier=shared_verifier, oracle=oracle,
        on_commit=lambda member, block: (registry.accept(block.data_ids_root, block.model_hash)
                                         if block.kind == "increment" else None),
    )
    return SyntheticSetup(coalition, registry, evaluators, trainers, lam)
