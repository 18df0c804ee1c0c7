"""Models, local training, increments, evaluation and canonical model hashing.

* `tasks` (+ `task_bladder`, `task_digits`): `get_task(name, **config)`; the
  model, loss, per-sample score and data of a task.
* `hyperparams`: `HyperParams` and the four values genesis records.
* `serialize`: canonical safetensors bytes, `model_hash`, increments.
* `model_store`: content-addressed model storage (memory, directory).
* `train`: `train_increment`, a partner's training step.
* `self_check`: `backtrack_to_floor`, a partner's check on G before it proposes.
* `evaluate`: deterministic per-sample evaluation.
* `evaluator`: `Evaluator.evaluate(parent, candidate) -> PairedScores`.
* `centralized`: the pooled-data baseline.
"""

from tclearn.learning.centralized import (
    CentralizedResult, ConvergedResult, coalition_passes, train_centralized, train_centralized_converged,
)
from tclearn.learning.errors import HashMismatchError, InvalidModelError, ModelNotFoundError
from tclearn.learning.evaluate import (
    deterministic_mode,
    evaluate_model,
    evaluate_state,
    mean_score,
    output_chunks,
    torch_threads,
)
from tclearn.learning.evaluator import Evaluator
from tclearn.learning.hyperparams import GENESIS_KEYS, OPTIMIZERS, HyperParams
from tclearn.learning.model_store import DirectoryModelStore, MemoryModelStore, ModelStore, check_model_hash
from tclearn.learning.serialize import (
    State,
    apply_increment,
    candidate_from,
    canonical_state,
    hash_bytes,
    increment,
    increment_hash,
    model_hash,
    state_from_bytes,
    state_to_bytes,
    states_equal,
)
from tclearn.learning.tasks import DEFAULT_TASK, Task, get_task, init_weights, register_task, task_names
from tclearn.learning.train import TrainResult, fit, make_optimizer, train_increment
from tclearn.learning.self_check import BACKTRACK_FACTORS, SelfCheck, backtrack_to_floor

__all__ = [
    "CentralizedResult",
    "coalition_passes",
    "train_centralized",
    "train_centralized_converged",
    "ConvergedResult",
    "HashMismatchError",
    "InvalidModelError",
    "ModelNotFoundError",
    "deterministic_mode",
    "evaluate_model",
    "output_chunks",
    "evaluate_state",
    "mean_score",
    "torch_threads",
    "Evaluator",
    "GENESIS_KEYS",
    "OPTIMIZERS",
    "HyperParams",
    "DirectoryModelStore",
    "MemoryModelStore",
    "ModelStore",
    "check_model_hash",
    "State",
    "apply_increment",
    "candidate_from",
    "canonical_state",
    "hash_bytes",
    "increment",
    "increment_hash",
    "model_hash",
    "state_from_bytes",
    "state_to_bytes",
    "states_equal",
    "DEFAULT_TASK",
    "Task",
    "get_task",
    "init_weights",
    "register_task",
    "task_names",
    "TrainResult",
    "fit",
    "make_optimizer",
    "train_increment",
    "BACKTRACK_FACTORS",
    "SelfCheck",
    "backtrack_to_floor",
]
