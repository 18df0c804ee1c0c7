"""One way to found a coalition: members, identities, the genesis block and the partners' data.

Every place that starts a coalition goes through here, so that a chain's
block 0 means the same thing wherever it was made:

* `tclearn init` (classic and kit mode, `cli/init.py`, `site/kits.py`):
  `plan_from_config` on the parsed TOML, then `CoalitionPlan.genesis()`;
* `tclearn coalition up` (`node/launcher.py`), the demo (`demo/engine.py`)
  and `bench/network.py`: `plan_for_task` from a learning task;
* the simulator (`sim/build.py`): a `CoalitionPlan` of a synthetic task.

What stays with each caller is where the result goes (a `chain.db` and key
files, kits, `node.toml`s, an in-process `SimCoalition`) and how its keys are
made: `generated_identities` for real members (fresh Ed25519 keys),
`seeded_identities` for the demo, the simulator and tests (derived from a
seed: never for a real coalition). The partners' data, when it is derived
from the coalition seed rather than read from a site, is `coalition_data`.

Torch is imported only when a learning task is touched.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tclearn.errors import ConfigError, LearningError
from tclearn.identity import Identity
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import MAX_TURN_PERIOD, GenesisConfig, MemberInfo, build_genesis
from tclearn.ledger.verify import verify_chain

if TYPE_CHECKING:
    from tclearn.data.split import CoalitionData
    from tclearn.learning.hyperparams import HyperParams
    from tclearn.learning.tasks import Task

__all__ = ["CoalitionPlan", "coalition_data", "data_key", "demo_data_key", "generated_identities", "pool_turn_weights",
           "hospital_names", "now_ms", "numbered_names", "plan_for_task", "plan_from_config",
           "resolve_initial_model", "seeded_identities"]


@dataclass(frozen=True)
class CoalitionPlan:
    """A coalition before block 0 exists: what genesis will fix, who signs it, and when.

    `identities` are the private keys this founding made (all of them for a
    coalition on one machine, the generated ones for `tclearn init`, none in
    kit mode, where every site keeps its own); the config lists every
    member's public key either way.
    """

    config: GenesisConfig
    founder: Identity
    initial_model_hash: str
    timestamp_ms: int
    identities: tuple[Identity, ...] = ()

    @property
    def member_ids(self) -> list[str]:
        return [m.member_id for m in self.config.members]

    def genesis(self) -> Block:
        """Block 0, signed by the founder and checked as every member will check it."""
        block = build_genesis(self.config, self.initial_model_hash, self.founder, self.timestamp_ms)
        verify_chain([block])
        return block


def now_ms() -> int:
    """The wall clock in ms since the epoch: the default genesis time."""
    return int(time.time() * 1000)


# --- members and their keys ------------------------------------------------

def numbered_names(n: int) -> list[str]:
    """`m0`, `m1`, …: the members of `coalition up`, the simulator and the benchmarks."""
    return [f"m{i}" for i in range(n)]


def hospital_names(n: int) -> list[str]:
    """`hospital-a`, `hospital-b`, … (`hospital-00`, … past 26): the demo's members."""
    return [f"hospital-{chr(ord('a') + i)}" if n <= 26 else f"hospital-{i:02d}" for i in range(n)]


def generated_identities(names: Sequence[str]) -> list[Identity]:
    """A fresh Ed25519 key per member: what a real coalition uses."""
    return [Identity.generate(m) for m in names]


def seeded_identities(names: Sequence[str], seed: bytes) -> list[Identity]:
    """Keys derived from `seed` (`Identity.from_seed`): reproducible runs, for the demo and tests only."""
    return [Identity.from_seed(m, seed) for m in names]


# --- genesis -----------------------------------------------------------------

def resolve_initial_model(config: GenesisConfig) -> tuple[GenesisConfig, str]:
    """The config with the task's full model description, and the initial model's hash.

    The task rebuilds its model from `model.config` and draws the weights
    from `model.seed`. Genesis then records the task's normalised options
    (defaults filled in) and architecture, so every node rebuilds the same
    model from block 0 even if a default changes later.
    """
    from tclearn.learning import get_task, model_hash  # torch: imported only when a chain is founded

    try:
        task = get_task(config.task, **config.model_config)
    except LearningError as exc:  # an unknown task or a bad option is the config's fault
        raise ConfigError(f"[model]: {exc}") from None
    if config.architecture and config.architecture != task.architecture:
        raise ConfigError(f"model.architecture {config.architecture!r} is not that of task {config.task!r} "
                          f"({task.architecture!r}); leave it out to use the task's")
    resolved = replace(config, architecture=task.architecture, model_config=dict(task.config))
    return resolved, model_hash(task.initial_state(config.model_seed))


def plan_from_config(config: GenesisConfig, founder: Identity, timestamp_ms: int | None = None,
                     identities: Sequence[Identity] = ()) -> CoalitionPlan:
    """The plan of a coalition written as a TOML config (`tclearn init`): its task's model resolved."""
    resolved, initial = resolve_initial_model(config)
    return CoalitionPlan(resolved, founder, initial, now_ms() if timestamp_ms is None else timestamp_ms,
                         tuple(identities))


def plan_for_task(task: Task, identities: Sequence[Identity], *, coalition_id: str, seed: int, lam: float,
                  committee_size: int, test_set_hash: str, level: str = "A",
                  revert_authorized: Sequence[str] = (), architecture: str | None = None,
                  fingerprints: Mapping[str, str] | None = None, initial_model_hash: str | None = None,
                  timestamp_ms: int | None = None, hyperparams: HyperParams | None = None,
                  **genesis_fields: Any) -> CoalitionPlan:
    """The plan of a coalition of `task` whose members' keys are `identities` (the first founds it).

    The task's default hyper-parameters and options go into genesis; its
    initial weights are drawn from `seed`. `architecture` defaults to the
    task's (the node launcher and `bench/network.py` have always recorded the
    task's name there, and pass it so their chains keep their bytes).
    `hyperparams` defaults to the task's defaults; the demo passes
    `task.hyperparams_for(its pools, --max-pool-passes)`.
    `genesis_fields` are further `GenesisConfig` fields (max_drop, stopping,
    adaptive_lr, supervisor, supervisor_key).
    """
    if initial_model_hash is None:
        from tclearn.learning import model_hash

        initial_model_hash = model_hash(task.initial_state(seed))
    prints = fingerprints or {}
    config = GenesisConfig(
        coalition_id=coalition_id, level=level,
        members=tuple(MemberInfo(i.member_id, i.public_key, *((prints[i.member_id],) if i.member_id in prints
                                                               else ())) for i in identities),
        task=task.name, architecture=task.architecture if architecture is None else architecture,
        model_config=dict(task.config), model_seed=seed,
        hyperparams=(hyperparams or task.default_hyperparams).genesis_dict(),
        lam=float(lam), committee_size=committee_size, test_set_hash=test_set_hash,
        founder=identities[0].member_id, revert_authorized=tuple(revert_authorized), **genesis_fields)
    return CoalitionPlan(config, identities[0], initial_model_hash,
                         now_ms() if timestamp_ms is None else timestamp_ms, tuple(identities))


# --- the partners' data ------------------------------------------------------

def coalition_data(task: Task, partners: int, seed: int, *, split: str = "iid",
                   per_partner: int | None = None) -> CoalitionData:
    """Each partner's pool and G, derived from the coalition seed: the same on every node.

    `split` other than iid asks the task for its non-IID split: label skew
    (digits), quantity skew, Dirichlet 0.5, on top of each hospital's
    scanner (bladder), size skew (nifti). `per_partner`: bladder volumes per
    partner (None: the task's default).
    """
    options: dict[str, Any] = {}
    if task.name == "bladder":
        if per_partner is not None:
            options["per_partner"] = per_partner
        if split != "iid":
            options["size_alpha"] = 0.5
    elif task.name == "digits" and split != "iid":
        options["mode"] = "label_skew"
    elif task.name == "nifti" and split != "iid":
        options["mode"] = "size_skew"
    return task.coalition_data(partners, seed=seed, **options)


def pool_turn_weights(names: Sequence[str], pool_sizes: Sequence[int]) -> dict[str, int] | None:
    """Genesis turn weights in proportion to the pools (in lowest terms); None where the pools are equal.

    None keeps equal turns and records nothing, so an IID coalition's genesis, and so its chain, is what it
    was before turn weights existed. Pools summing past `MAX_TURN_PERIOD` are scaled down (each at least 1).
    """
    if len(set(pool_sizes)) <= 1:
        return None
    divisor = math.gcd(*pool_sizes)
    weights = [n // divisor for n in pool_sizes]
    if sum(weights) > MAX_TURN_PERIOD:
        weights = [max(1, n * MAX_TURN_PERIOD // (2 * sum(pool_sizes))) for n in pool_sizes]
    return dict(zip(names, weights))


def data_key(seed: int) -> bytes:
    """The key of the sample ids of a node's pool (`DataPool`), from the coalition seed."""
    return hashlib.sha256(f"tclearn-node-data-key/{seed}".encode()).digest()


def demo_data_key(seed: int) -> bytes:
    """The key of the demo's sample ids (a different key from the nodes': the demo's chains keep their bytes)."""
    return f"tclearn-demo-data-ids-{seed}".encode().ljust(16, b"\0")
