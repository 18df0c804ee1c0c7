"""Evaluation that gives bit-identical per-sample scores on every node.

Why: validators compare their scores on the global test set G; an honest
validator that evaluates the same model on the same G must produce the very
same floats, or disagreement would look like evidence against somebody.
Floating-point results of a network depend on how reductions are split
(thread count, batch size, which convolution kernel runs), so evaluation:

* runs inside `deterministic_mode()`: one intra-op thread,
  `torch.use_deterministic_algorithms(True)`, and oneDNN (mkldnn) disabled,
  since its convolutions pick kernels by batch shape; everything is restored
  on exit (these are process-wide settings: do not train in another thread
  meanwhile);
* evaluates in data-set order, in float32, in eval mode, in forward passes
  of one fixed shape: `task.eval_chunk_size` samples (1 by default), the last
  chunk padded with zeros to that size. A sample's score must not depend on
  which other samples are evaluated with it (G's scores are the same whatever
  the validator's L). One sample at a time guarantees it by construction;
  a larger chunk is for a task whose network treats the rows of a batch
  independently in eval mode (no batch statistics), where only the shape
  picks the kernels: the BLAS matrix product that takes one row goes another
  way than the one that takes 64, so every pass has the same shape, and
  `tests/learning/test_evaluation.py` checks on the task that a sample's
  outputs are the same bits at every position among any companions.
  Digits evaluates 64 at a time: 64× fewer forward passes, which took
  evaluation from as long as training in a digits coalition to a fraction;
* maps a sample whose output is not finite to score 0, the worst.

Bit-identity is guaranteed for the same torch build on the same CPU family
(what the simulator and a homogeneous coalition run). Measured on an AMD
EPYC (2026-12-01): torch's own kernels give the same evaluation bits under
`ATEN_CPU_CAPABILITY=avx2` as under its AVX-512 default, for both tasks;
MKL's code branch does not (`MKL_CBWR=COMPATIBLE` changes digits' and
bladder's outputs). MKL chooses its branch by CPU (and pins it, per Intel,
only on Intel CPUs except for COMPATIBLE), so an Intel node and an AMD node
may score the same model differently, and `consensus.rules.flagged_validators`
would flag the minority. A mixed-hardware coalition would need every node to
start with `MKL_CBWR=COMPATIBLE`; that is not done here (it changes every
chain, and its cost was not measured beyond one look).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from tclearn.data.dataset import Dataset
from tclearn.learning.tasks import Task

__all__ = ["deterministic_mode", "torch_threads", "output_chunks", "evaluate_model", "evaluate_state", "mean_score"]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the body with `threads` intra-op threads (None: leave as is); restore after.

    Why: on a small shared machine torch's default (one thread per core)
    oversubscribes as soon as anything else runs, and a 3-D U-Net step can
    get tens of times slower; one thread per training process is the safe
    choice for a simulator that runs several members in one process.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError("threads must be ≥ 1")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextmanager
def deterministic_mode(threads: int = 1) -> Iterator[None]:
    """Run the body with fixed threads, deterministic algorithms and no oneDNN; restore after."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_mkldnn = torch.backends.mkldnn.enabled
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = old_mkldnn
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.set_num_threads(old_threads)


def output_chunks(task: Task, model: nn.Module, x: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """`(start, outputs)` of `model` on the samples of `x` in passes of `task.eval_chunk_size`, in order.

    Call inside `deterministic_mode()` and `torch.inference_mode()` with the
    model in eval mode; the padding rows' outputs are dropped.
    """
    chunk = task.eval_chunk_size
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk].to(torch.float32)
        n = part.shape[0]
        if n < chunk:  # every pass has the same shape (see the module docstring)
            part = torch.cat([part, part.new_zeros((chunk - n, *part.shape[1:]))])
        yield start, model(part)[:n]


def evaluate_model(task: Task, model: nn.Module, data: Dataset) -> tuple[float, ...]:
    """Per-sample scores of `model` on `data`, in data order (Python floats)."""
    task.check_data(data)
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        with deterministic_mode(), torch.inference_mode():
            model = model.float()
            for start, out in output_chunks(task, model, data.x):
                scores.extend(task.sample_scores(out, data.y[start : start + out.shape[0]]).tolist())
    finally:
        model.train(was_training)
    return tuple(scores)  # tolist() already gave Python floats


def evaluate_state(task: Task, state: Mapping[str, torch.Tensor], data: Dataset) -> tuple[float, ...]:
    """Per-sample scores of the model holding `state` on `data`."""
    return evaluate_model(task, task.model_from_state(state), data)


def mean_score(scores: Sequence[float]) -> float:
    """Exactly rounded mean (math.fsum), 0.0 for no sample."""
    return math.fsum(scores) / len(scores) if scores else 0.0
