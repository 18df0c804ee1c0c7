"""What a node trains and validates on: this member's own data (D_i) and G, checked before it starts.

The sources are named in `node.toml` (`tclearn.node.data_spec`): the built-in
sets for trials (`partner_data`: derived from the coalition seed, the same on
every node), a folder of `.npz` arrays, or a NIfTI folder in the Decathlon
layout (read onto the task's grid with the task's NIfTI options). Either is
checked against the task genesis fixes — sample shapes, label range, at least
one sample — and G against the hash genesis records (`test_set.hash`: the
bytes of the distributed file or folder, `tclearn data hash`; for the
built-in G, the digest of its samples), so a node never trains or votes on
data its coalition did not agree to. Every refusal is one `DataError` line.
`data_key` keys the pool's sample ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from tclearn.data import Dataset, load_decathlon
from tclearn.data.arrays import load_npz
from tclearn.data.content_hash import data_hash
from tclearn.errors import DataError, LearningError
from tclearn.founding import coalition_data, data_key
from tclearn.learning import get_task
from tclearn.learning.tasks import Task
from tclearn.node.data_spec import DataSpec

__all__ = ["ZERO_TEST_SET_HASH", "check_fits_task", "check_test_set", "data_key", "load_source", "member_data",
           "partner_data", "task_from_genesis"]

ZERO_TEST_SET_HASH = "0" * 64  # genesis "not fixed yet": nothing to check G against


def partner_data(task_name: str, partners: int, seed: int, index: int) -> tuple[Any, Any]:
    """(this partner's pool data, G): derived from the coalition seed, the same on every node (`tclearn.founding`)."""
    data = coalition_data(get_task(task_name), partners, seed)
    return data.partners[index], data.test


def task_from_genesis(payload: Mapping[str, Any]) -> Task:
    """The task genesis fixes, with the options it records (every node rebuilds the same model)."""
    model = payload["model"]
    try:
        task = get_task(str(model["task"]), **dict(model["config"]))
    except LearningError as exc:
        raise DataError(f"genesis names a task this node cannot build: {exc}") from None
    recorded = str(model.get("architecture") or "")
    if recorded and recorded != task.architecture:
        raise DataError(f"genesis records architecture {recorded!r}, but task {task.name!r} builds "
                        f"{task.architecture!r}: this node would train another model than the one on the chain")
    return task


def load_source(spec: DataSpec, task: Task, what: str) -> Dataset:
    """The samples of a npz or NIfTI source (a built-in source has no path: the caller derives it)."""
    assert spec.path is not None, "built-in sources are derived, not loaded"
    if spec.kind == "npz":
        return load_npz(spec.path)
    shape = getattr(task, "shape", None)
    if shape is None:
        raise DataError(f"{what}: task {task.name!r} does not take NIfTI volumes (use kind = \"npz\")")
    return load_decathlon(spec.path, shape=tuple(shape), label_value=getattr(task, "label_value", None),
                          normalisation=getattr(task, "normalisation", "ct"),
                          window=getattr(task, "window", (40.0, 400.0)), modality=getattr(task, "modality", 0))


def _output_classes(task: Task, data: Dataset) -> int:
    with torch.no_grad():
        model = task.build_model(0).eval()
        return int(model(data.x[:1]).shape[1])


def check_fits_task(data: Dataset, task: Task, what: str) -> None:
    """Refuse data the task's model cannot take: sample shapes, label range, no sample at all."""
    if len(data) == 0:
        raise DataError(f"{what} holds no sample")
    try:
        task.check_data(data)
    except LearningError as exc:
        raise DataError(f"{what} does not fit task {task.name!r}: {exc}") from None
    if data.y.ndim == 1:  # class labels: within the model's outputs
        classes = _output_classes(task, data)
        low, high = int(data.y.min()), int(data.y.max())
        if low < 0 or high >= classes:
            raise DataError(f"{what} does not fit task {task.name!r}: labels must lie in 0..{classes - 1}, "
                            f"found {low}..{high}")


def check_test_set(found: str, source: str, recorded: str) -> None:
    """Refuse a G whose hash is not the one genesis records (naming both)."""
    if recorded != ZERO_TEST_SET_HASH and found != recorded:
        raise DataError(f"{source} has hash {found}, but genesis records test_set.hash {recorded}: "
                        f"this node's G is not the coalition's")


def member_data(data: DataSpec, test_set: DataSpec, task: Task, *, recorded_test_hash: str, seed: int,
                partners: int, index: int) -> tuple[Dataset, Dataset]:
    """(this member's pool data, G), each checked; the built-in sources come from the coalition seed."""
    builtin = None
    if data.builtin or test_set.builtin:
        if not 0 <= index < partners:
            raise DataError(f"built-in data: node.index {index} is not in 0..{partners - 1}")
        builtin = task.coalition_data(partners, seed=seed)
    if test_set.builtin:
        assert builtin is not None
        test = builtin.test
        check_test_set(test.digest(), "the built-in G", recorded_test_hash)
    else:  # the files' hash first: a G that is not the coalition's is refused before it is read
        check_test_set(data_hash(test_set.path or Path()), f"G at {test_set.path}", recorded_test_hash)
        test = load_source(test_set, task, f"G ({test_set.path})")
    check_fits_task(test, task, f"G ({'built in' if test_set.builtin else test_set.path})")
    if data.builtin:
        assert builtin is not None
        pool = builtin.partners[index]
    else:
        pool = load_source(data, task, f"the data at {data.path}")
    check_fits_task(pool, task, f"this member's data ({'built in' if data.builtin else data.path})")
    if pool.sample_shape != test.sample_shape or pool.y.shape[1:] != test.y.shape[1:]:
        raise DataError(f"this member's samples {pool.sample_shape} and G's {test.sample_shape} differ in shape")
    return pool, test
