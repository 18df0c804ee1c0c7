"""Evaluation probe run both in a fresh process and in the test's own process.

Prints (or returns) the SHA-256 of one bladder model's raw output, of a digits
model's outputs over 100 images (evaluated 64 at a time), and the bladder model's
per-sample scores as hex floats: equal lists mean bit-identical evaluation.
"""

from __future__ import annotations

import hashlib
import json
import sys

import torch

from tclearn.data import phantom_dataset
from tclearn.learning import deterministic_mode, evaluate_state, get_task, output_chunks


def probe() -> list[str]:
    task = get_task("bladder")
    data = phantom_dataset(2, seed=9)
    state = {k: v * 1.5 for k, v in task.initial_state(5).items()}
    model = task.model_from_state(state).eval()
    with deterministic_mode(), torch.inference_mode():
        out = model(data.x[:1])
    raw = hashlib.sha256(out.numpy().tobytes()).hexdigest()
    # digits: several samples per forward pass (`Task.eval_chunk_size`), 100 images = one full pass and a padded one
    digits = get_task("digits")
    images = digits.coalition_data(2, seed=3).test.subset(range(100))
    gen = torch.Generator().manual_seed(1)
    d_state = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in digits.initial_state(6).items()}
    d_model = digits.model_from_state(d_state).eval()
    with deterministic_mode(), torch.inference_mode():
        d_raw = hashlib.sha256(b"".join(o.numpy().tobytes() for _, o in output_chunks(digits, d_model, images.x)))
    return [raw, d_raw.hexdigest()] + [x.hex() for x in evaluate_state(task, state, data)]


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]))
    print(json.dumps(probe()))
