"""Learning tasks: what model, what loss, what per-sample score, what data.

Why a task object: every node must rebuild the same model from genesis alone
(task name + configuration + seed), score samples the same way, and load the
same kind of data. A `Task` bundles exactly that; `get_task(name, **config)`
rebuilds it, and `task.config` is what genesis records.

Initial weights are drawn from the task's own seeded numpy `Generator` (He
normal for convolution and linear weights, zero biases, constant PReLU and
norm parameters), never from torch's global generator: module constructors
run inside `torch.random.fork_rng`, so the caller's global random state is
left as it was, and every parameter is then overwritten from the seed.
Why numpy rather than a torch.Generator: numpy's PCG64 and normal sampler
give the same stream on every platform, while torch's CPU `normal_` takes a
vectorised path on AVX2 machines and a scalar one elsewhere, which may round
differently; the normals are drawn in float64 and rounded once to float32.
Still, a node should check a rebuilt initial model against the genesis hash
and fetch the founder's copy if it differs.

Tasks:
* `bladder` (default): MONAI 3-D U-Net on two channels (CT volume + the mask on
  the bladder's central slice, as in Léger et al.), MONAI Dice loss, per-volume
  Dice (MONAI `compute_dice`) as score. Data: pelvic phantoms.
* `digits`: a small CNN on scikit-learn's 8×8 digits; per-sample 0/1 accuracy.
* `nifti`: the bladder model on a user's Decathlon-layout folder.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from tclearn.data.dataset import Dataset
from tclearn.data.split import CoalitionData
from tclearn.errors import LearningError
from tclearn.learning.errors import InvalidModelError
from tclearn.learning.hyperparams import HyperParams
from tclearn.learning.serialize import State, canonical_state

__all__ = ["Task", "get_task", "register_task", "task_names", "init_weights", "finite_or_zero", "DEFAULT_TASK"]

DEFAULT_TASK = "bladder"

_INIT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
                nn.InstanceNorm3d, nn.GroupNorm, nn.LayerNorm)


def _he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> torch.Tensor:
    fan_in = shape[1] * int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 1 else shape[0]
    values = rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)
    return torch.from_numpy(values.astype(np.float32))


def init_weights(model: nn.Module, rng: np.random.Generator) -> None:
    """Overwrite every parameter of `model` from `rng` (or a constant).

    Raises LearningError if a parameter belongs to a layer type this rule
    does not know, so no parameter is left to the global generator.
    """
    done: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            params = list(module.parameters(recurse=False))
            if isinstance(module, _INIT_LAYERS):
                module.weight.copy_(_he_normal(tuple(module.weight.shape), rng))
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.PReLU):
                module.weight.fill_(0.25)
            elif isinstance(module, _NORM_LAYERS):
                for p in params:
                    p.fill_(1.0 if p is getattr(module, "weight", None) else 0.0)
            elif params:
                raise LearningError(f"no initialisation rule for {type(module).__name__}")
            done.update(id(p) for p in params)
    if any(id(p) not in done for p in model.parameters()):
        raise LearningError("some parameters were not initialised")


class Task(ABC):
    """A model family, its loss and per-sample score, and where its data come from."""

    name: ClassVar[str]
    metric_name: ClassVar[str]
    architecture: ClassVar[str]
    default_hyperparams: ClassVar[HyperParams]
    # the centralised reference's learning-rate grid, searched on its validation split
    # (None: the task's own rate, 3× above and 3× below; see `centralized.train_centralized_converged`)
    centralized_learning_rates: ClassVar[tuple[float, ...] | None] = None
    # whether `tclearn demo` founds its coalition with the adaptive learning-rate policy unless told otherwise
    adaptive_lr_by_default: ClassVar[bool] = False
    # with that policy: the local epochs from its first lowering on, carried by that block (None: the
    # epochs stay). Why only after the first lowering: fewer epochs from the start (`--max-pool-passes`)
    # reach the centralised score later, an increment of fewer epochs doing less training for the same
    # validation and signing; once the rate comes down, fewer passes over a hospital's pool pull the
    # shared model less towards that pool, and the final score gains (`bench/lr_schedule.py late=2`, README)
    epochs_after_lowering: ClassVar[int | None] = None
    # whether `tclearn demo` founds its coalition with proposer turns in proportion to the hospitals' pools
    # (genesis consensus.turn_weights; nothing recorded where the pools are equal) unless told otherwise
    turns_by_pool_by_default: ClassVar[bool] = False
    # samples per evaluation forward pass (`evaluate.evaluate_model`): >1 only for a network whose rows of a
    # batch do not interact in eval mode, and whose `sample_scores` of a row do not depend on the other rows
    eval_chunk_size: ClassVar[int] = 1

    def hyperparams_for(self, pool_sizes: Sequence[int], max_pool_passes: float | None = None) -> HyperParams:
        """The default hyper-parameters, with epochs bounded by the hospitals' pools (`pool_sizes` samples each).

        Why the pools matter: an increment trains `epochs` passes over a batch
        of `batch_size` of the proposer's samples. When a hospital's whole
        trainable pool is little more than one batch, each increment passes
        over nearly all its data `epochs` times and pulls the shared model
        towards that hospital. With `max_pool_passes` (`tclearn demo
        --max-pool-passes`; None: the defaults as they are), the epochs are
        lowered (never below 1, never above the default) so that an increment
        passes at most that many times over the mean hospital's trainable pool
        (its pool less the `local_test_share` kept as L; a pool smaller than a
        batch is drawn whole, so each epoch is one pass over it).
        """
        hp = self.default_hyperparams
        if max_pool_passes is None or not pool_sizes or not hp.batch_size:
            return hp
        trainable = sum(pool_sizes) / len(pool_sizes) * (1.0 - hp.local_test_share)
        if trainable <= 0:
            return hp
        per_epoch = min(hp.batch_size, trainable) / trainable  # passes over the pool per local epoch
        epochs = max(1, min(hp.epochs, math.floor(max_pool_passes / per_epoch + 1e-9)))
        return hp if epochs == hp.epochs else replace(hp, epochs=epochs)

    @property
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Options that rebuild this task with `get_task(self.name, **config)` (genesis-safe types)."""

    @abstractmethod
    def _make_model(self) -> nn.Module:
        """A fresh model (its initial values do not matter: `build_model` overwrites them)."""

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a mini-batch."""

    def label_prior(self, data: "Dataset") -> torch.Tensor | None:
        """Label frequencies of `data` ([C], summing to 1) for logit adjustment; None: not a classifier."""
        return None

    def distill_loss(self, output: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """A term that keeps the student close to the head model (`teacher`'s outputs); None: not offered.

        Used when `HyperParams.distill` > 0 (see `tclearn.learning.train.fit`).
        """
        return None

    @abstractmethod
    def sample_scores(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """One score per sample, in [0, 1], higher is better ([N] float64)."""

    @abstractmethod
    def coalition_data(self, n_partners: int, *, seed: int, **options: Any) -> CoalitionData:
        """Each partner's training pool and the global test set G; `options` are the task's own."""

    def build_model(self, seed: int) -> nn.Module:
        """The model with initial weights drawn from `seed` (same seed, same weights, everywhere)."""
        with torch.random.fork_rng(devices=[]):
            model = self._make_model()
        init_weights(model, np.random.default_rng([int(seed), 0x1417]))
        return model

    def initial_state(self, seed: int) -> State:
        """Canonical state of `build_model(seed)` (its hash is genesis's initial model hash)."""
        return canonical_state(self.build_model(seed).state_dict())

    def model_from_state(self, state: Mapping[str, torch.Tensor]) -> nn.Module:
        """A model of this task holding `state`; InvalidModelError if it does not fit."""
        with torch.random.fork_rng(devices=[]):
            model = self._make_model()
        return self.load_state(model, state)

    def load_state(self, model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
        """`model` (one of this task's) now holding `state`, loaded in place; InvalidModelError if it does not fit.

        Why: building a U-Net costs ten times loading weights into one (2.3 vs
        0.3 ms), and a validator scores thousands of models; a model that was
        loaded computes the same bits as one built for the state (nothing but
        its weights differs between two models of one task). Nothing is loaded
        when the state does not fit.
        """
        expected = model.state_dict()
        if set(state) != set(expected):
            missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
            raise InvalidModelError(f"state does not fit {self.architecture}: missing {missing[:3]}, extra {extra[:3]}")
        for k, v in expected.items():
            if tuple(state[k].shape) != tuple(v.shape):
                raise InvalidModelError(f"tensor {k!r} has shape {tuple(state[k].shape)}, expected {tuple(v.shape)}")
        model.load_state_dict({k: state[k].to(v.dtype) for k, v in expected.items()})
        return model

    def check_data(self, data: Dataset) -> None:
        """Raise LearningError if `data` cannot feed this task's model."""


_REGISTRY: dict[str, Callable[..., Task]] = {}


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Make `get_task(name, **options)` build `factory(**options)`."""
    _REGISTRY[name] = factory


def task_names() -> tuple[str, ...]:
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def get_task(name: str = DEFAULT_TASK, **options: Any) -> Task:
    """The task called `name`, configured by `options` (as recorded in genesis)."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise LearningError(f"unknown task {name!r} (known: {', '.join(sorted(_REGISTRY))}){hint}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        raise LearningError(f"bad options for task {name!r}: {exc}") from None


def _load_builtin() -> None:
    # both, even when one was imported directly first (it registers itself, and the other would be missed)
    if not {"bladder", "digits"} <= set(_REGISTRY):
        from tclearn.learning import task_bladder, task_digits  # noqa: F401  (they register themselves)


def finite_or_zero(scores: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """`scores`, with 0 (the worst score) for every sample whose output is not all finite."""
    finite = torch.isfinite(output.reshape(output.shape[0], -1)).all(dim=1)
    scores = torch.nan_to_num(scores.to(torch.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.where(finite, scores, torch.zeros_like(scores))
