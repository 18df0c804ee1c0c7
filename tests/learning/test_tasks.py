"""Tasks: registry, seeded initialisation, the bladder U-Net, scores."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from tclearn.data import Dataset
from tclearn.errors import LearningError
from tclearn.learning import InvalidModelError, Task, get_task, model_hash, task_names


def test_registry() -> None:
    assert {"bladder", "digits", "nifti"} <= set(task_names())
    assert get_task().name == "bladder"
    with pytest.raises(LearningError, match="did you mean 'digits'"):
        get_task("digit")
    with pytest.raises(LearningError):
        get_task("digits", colour="blue")
    with pytest.raises(LearningError):
        get_task("bladder", shape=(30, 32, 32))  # not a multiple of 8
    with pytest.raises(LearningError):
        get_task("nifti")  # needs a root folder


def test_seeded_init_leaves_global_rng_alone(digits_task: Task) -> None:
    before = torch.random.get_rng_state()
    a = model_hash(digits_task.build_model(3).state_dict())
    torch.manual_seed(1234)  # the global generator must not matter
    b = model_hash(digits_task.build_model(3).state_dict())
    assert a == b
    torch.random.set_rng_state(before)
    digits_task.build_model(3)
    assert torch.equal(torch.random.get_rng_state(), before)
    rebuilt = get_task(digits_task.name, **digits_task.config)
    assert model_hash(rebuilt.initial_state(3)) == a


def test_weights_look_like_a_seeded_normal(digits_task: Task) -> None:
    state = digits_task.initial_state(0)
    w = state["fc1.weight"]
    assert abs(float(w.mean())) < 0.01
    assert float(w.std()) == pytest.approx((2.0 / w.shape[1]) ** 0.5, rel=0.1)
    assert not state["fc1.bias"].any()


def test_bladder_unet_forward_backward(bladder_task: Task, phantoms: Dataset) -> None:
    assert bladder_task.config["shape"] == [32, 32, 32]
    bladder_task.check_data(phantoms)
    model = bladder_task.build_model(0)
    out = model(phantoms.x[:2])
    assert out.shape == (2, 1, 32, 32, 32)
    loss = bladder_task.loss(out, phantoms.y[:2])
    assert torch.isfinite(loss) and 0.0 < float(loss.detach()) <= 1.0
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)
    two = get_task("bladder", out_channels=2, loss="dice_ce").build_model(0)
    out2 = two(phantoms.x[:1])
    assert out2.shape == (1, 2, 32, 32, 32)
    assert torch.isfinite(get_task("bladder", out_channels=2, loss="dice_ce").loss(out2, phantoms.y[:1]))


def test_bladder_scores(bladder_task: Task, phantoms: Dataset) -> None:
    y = phantoms.y[:2]
    perfect = y.float() * 20 - 10  # logits: +10 inside, −10 outside
    assert bladder_task.sample_scores(perfect, y).tolist() == [1.0, 1.0]
    assert bladder_task.sample_scores(-perfect, y).tolist() == [0.0, 0.0]
    empty = torch.zeros_like(y)
    assert bladder_task.sample_scores(torch.full(y.shape, -5.0), empty).tolist() == [1.0, 1.0]
    nan = perfect.clone()
    nan[1, 0, 0, 0, 0] = float("nan")
    assert bladder_task.sample_scores(nan, y).tolist() == [1.0, 0.0]


def test_digits_scores(digits_task: Task) -> None:
    logits = torch.tensor([[0.0, 5.0] + [0.0] * 8, [9.0] + [0.0] * 9, [float("nan")] * 10])
    assert digits_task.sample_scores(logits, torch.tensor([1, 2, 0])).tolist() == [1.0, 0.0, 0.0]


def test_model_from_state_refuses_other_architectures(digits_task: Task, bladder_task: Task) -> None:
    with pytest.raises(InvalidModelError):
        digits_task.model_from_state(bladder_task.initial_state(0))
    wide = get_task("digits", hidden=32).initial_state(0)
    with pytest.raises(InvalidModelError, match="shape"):
        digits_task.model_from_state(wide)


def test_nifti_task_reads_a_folder(tmp_path: Path) -> None:
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.normal(40.0, 10.0, size=(20, 20, 12)).astype(np.float32)
        lab = np.zeros(img.shape, dtype=np.uint8)
        lab[5 : 12 + i, 6:14, 3:9] = 1
        nib.save(nib.Nifti1Image(img, np.eye(4)), str(tmp_path / "imagesTr" / f"p{i}.nii.gz"))
        nib.save(nib.Nifti1Image(lab, np.eye(4)), str(tmp_path / "labelsTr" / f"p{i}.nii.gz"))
    task = get_task("nifti", root=str(tmp_path), shape=[16, 16, 16])
    assert task.metric_name == "dice" and task.config["root"] == str(tmp_path)
    data = task.coalition_data(2, seed=0, test_size=2)
    assert [len(p) for p in data.partners] == [2, 2] and len(data.test) == 2
    task.check_data(data.test)
    out = task.build_model(0)(data.test.x)
    assert out.shape == (2, 1, 16, 16, 16)
    again = get_task("nifti", **task.config)
    assert model_hash(again.initial_state(1)) == model_hash(task.initial_state(1))


def test_initial_weights_are_pinned() -> None:
    """Changing the initialisation or the canonical form changes every chain's genesis: pin it."""
    assert model_hash(get_task("digits").initial_state(0)) == (
        "f8df2510a2f65abf308ce7371f6fe1f20cc673ea6ba2226ec5aa3776b66008f2"
    )
