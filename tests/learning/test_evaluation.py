"""Deterministic evaluation and the validator's evaluator."""

from __future__ import annotations

from collections import OrderedDict

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tclearn.data import CoalitionData, Dataset, phantom_dataset
from tclearn.errors import LearningError
from tclearn.learning import (
    Evaluator,
    InvalidModelError,
    MemoryModelStore,
    ModelNotFoundError,
    Task,
    deterministic_mode,
    output_chunks,
    evaluate_state,
    get_task,
    torch_threads,
)
from tclearn.quality import judge

_PROBE = Path(__file__).with_name("_probe.py")


def _load_probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_tclearn_eval_probe", _PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bit_identical_across_processes_and_thread_settings() -> None:
    """A fresh process with 1 thread and this one with 2 threads get the same bits."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(_PROBE), "1"], capture_output=True, text=True, env=env,
                         check=True, timeout=180)
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        here = _load_probe().probe()
    finally:
        torch.set_num_threads(before)
    assert here == fresh


def test_scores_do_not_depend_on_other_samples(digits_task: Task, digits_data: CoalitionData) -> None:
    state = digits_task.initial_state(1)
    g = digits_data.test.subset(range(30))
    full = evaluate_state(digits_task, state, g)
    part = evaluate_state(digits_task, state, g.subset([29, 3, 7]))
    assert part == (full[29], full[3], full[7])


def _outputs(task: Task, model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with deterministic_mode(), torch.inference_mode():
        return [row for _, out in output_chunks(task, model, x) for row in out]


@pytest.mark.parametrize("name", ["digits", "bladder"])
def test_a_samples_outputs_are_the_same_bits_among_any_companions(name: str, digits_data: CoalitionData) -> None:
    """What lets a task evaluate several samples per pass: position and companions never change a sample's bits.

    Digits evaluates 64 at a time; a sample is checked at other positions,
    among other samples, in a pass of its own and at the padded tail.
    """
    task = get_task(name)
    data = digits_data.test if name == "digits" else phantom_dataset(5, seed=4)
    gen = torch.Generator().manual_seed(7)
    state = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in task.initial_state(2).items()}
    model = task.model_from_state(state).eval()
    x = data.x[:150] if name == "digits" else data.x
    base = _outputs(task, model, x)
    assert len(base) == len(x) and len({tuple(o.flatten()[:4].tolist()) for o in base}) > 1  # outputs differ
    for seed in range(3):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[: len(x) - 2 * seed - 1]
        shuffled = _outputs(task, model, x[order])
        assert all(torch.equal(shuffled[j], base[int(i)]) for j, i in enumerate(order))
    alone = _outputs(task, model, x[3:4])[0]
    assert torch.equal(alone, base[3])
    if name == "digits":
        assert task.eval_chunk_size == 64  # several per pass: the property above is what makes that safe


def test_global_settings_restored() -> None:
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    restore = torch.get_num_threads()
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.mkldnn.enabled)
    with deterministic_mode():
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.mkldnn.enabled
    after = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(), torch.backends.mkldnn.enabled)
    assert after == before
    with pytest.raises(RuntimeError), deterministic_mode():
        raise RuntimeError("boom")
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with torch_threads(None):
        assert torch.get_num_threads() == restore
    assert torch.get_num_threads() == restore and not torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(original)


@pytest.fixture()
def evaluator_setup(digits_task: Task, digits_data: CoalitionData) -> tuple[Evaluator, str, str]:
    store = MemoryModelStore()
    parent = store.put_state(digits_task.initial_state(0))
    trained = {k: v.clone() for k, v in digits_task.initial_state(0).items()}
    trained["fc2.bias"] += torch.linspace(0, 1, 10)  # a different model
    candidate = store.put_state(trained)
    ev = Evaluator(digits_task, store, digits_data.test.subset(range(50)), digits_data.partners[0].subset(range(5)))
    return ev, parent, candidate


def test_evaluator_pairs_and_caches(evaluator_setup: tuple[Evaluator, str, str], digits_data: CoalitionData) -> None:
    ev, parent, candidate = evaluator_setup
    scores = ev.evaluate(parent, candidate)
    assert len(scores.g_old) == len(scores.g_new) == 50 and len(scores.l_old) == len(scores.l_new) == 5
    assert ev.evaluations == 2
    assert ev.evaluate(parent, candidate) == scores and ev.evaluations == 2  # cached
    ev.add_local_test(digits_data.partners[0].subset(range(5, 8)))
    grown = ev.evaluate(parent, candidate)
    assert grown.g_old == scores.g_old and grown.l_old[:5] == scores.l_old and len(grown.l_old) == 8
    fresh = Evaluator(ev.task, ev.store, ev.global_test, ev.local_test)
    assert fresh.evaluate(parent, candidate) == grown  # incremental L == L evaluated at once
    with pytest.raises(InvalidModelError, match="unchanged"):
        ev.evaluate(parent, parent)  # an empty increment


def test_evaluator_errors(evaluator_setup: tuple[Evaluator, str, str], bladder_task: Task) -> None:
    ev, parent, _ = evaluator_setup
    with pytest.raises(ModelNotFoundError):
        ev.evaluate(parent, "f" * 64)
    alien = ev.store.put_state(get_task("digits", hidden=16).initial_state(0))
    with pytest.raises(InvalidModelError):
        ev.evaluate(parent, alien)
    with pytest.raises(LearningError):
        Evaluator(bladder_task, ev.store, ev.global_test)  # G does not fit the task


def test_one_model_loaded_state_after_state_scores_as_a_model_built_for_each(
        bladder_task: Task, phantoms: Dataset) -> None:
    """The evaluator loads each state into one U-Net (`Task.load_state`): the same bits as a fresh model's,
    and a state that does not fit is refused before anything is loaded."""
    store = MemoryModelStore()
    hashes = [store.put_state(bladder_task.initial_state(seed)) for seed in (0, 1, 2)]
    fresh = {h: evaluate_state(bladder_task, store.get_state(h), phantoms) for h in hashes}
    assert len(set(fresh.values())) == 3
    ev = Evaluator(bladder_task, store, phantoms, cache_size=2)
    alien = store.put_state(get_task("bladder", channels=(4, 8, 16, 32)).initial_state(0))
    for h in hashes + [alien] + hashes:  # each evicted from the cache by then: scored again on the loaded model
        if h == alien:
            with pytest.raises(InvalidModelError):
                ev.scores(h)
            continue
        assert ev.scores(h)[0] == fresh[h]
    assert ev.evaluations == 6


def test_a_self_checked_candidates_g_scores_are_shared_with_its_validators(
        evaluator_setup: tuple[Evaluator, str, str], digits_data: CoalitionData) -> None:
    """One process, many simulated members: a proposer's G scores are the validators' (the same bits)."""
    ev, parent, candidate = evaluator_setup
    state = ev.store.get_state(candidate)
    shared: OrderedDict[str, tuple[float, ...]] = OrderedDict()
    proposer = Evaluator(ev.task, ev.store, ev.global_test, shared_g=shared, share_candidates=True)
    g = proposer.candidate_g_scores(state, candidate)
    assert g == ev.scores(candidate)[0] and shared[candidate] == g  # the store's model, scored apart: same bits
    validator = Evaluator(ev.task, ev.store, ev.global_test, shared_g=shared)
    assert validator.scores(candidate)[0] == g and validator.evaluations == 0  # no model run for G
    assert proposer.candidate_g_scores(state, candidate) == g and proposer.evaluations == 0
    alone: OrderedDict[str, tuple[float, ...]] = OrderedDict()
    node = Evaluator(ev.task, ev.store, ev.global_test, shared_g=alone)  # a node, or level C: nothing shared
    assert node.candidate_g_scores(state, candidate) == g and not alone


def test_bad_increments_are_rejected(digits_task: Task, digits_data: CoalitionData) -> None:
    """A trained model, then the same model with heavy Gaussian noise on its weights."""
    from tclearn.learning import train_centralized

    hp = digits_task.default_hyperparams
    good = train_centralized(digits_task, digits_data.pooled, digits_data.test, hp, passes=1, seed=0, threads=1).state
    gen = torch.Generator().manual_seed(0)
    noisy = {k: v + torch.randn(v.shape, generator=gen) * float(v.std() if v.numel() > 1 else 1.0)
             for k, v in good.items()}
    store = MemoryModelStore()
    ev = Evaluator(digits_task, store, digits_data.test)
    verdict = judge(ev.evaluate(store.put_state(good), store.put_state(noisy)), 0.97)
    assert not verdict.accept, verdict
