"""Evaluation probe run both in a fresh process and in the test's own process.

Prints (or returns) the SHA-256 of one bladder model's raw output and its
per-sample scores as hex floats: equal lists mean bit-identical evaluation.
"""

from __future__ import annotations

import hashlib
import json
import sys

import torch

from tclearn.data import phantom_dataset
from tclearn.learning import deterministic_mode, evaluate_state, get_task


def probe() -> list[str]:
    task = get_task("bladder")
    data = phantom_dataset(2, seed=9)
    state = {k: v * 1.5 for k, v in task.initial_state(5).items()}
    model = task.model_from_state(state).eval()
    with deterministic_mode(), torch.inference_mode():
        out = model(data.x[:1])
    raw = hashlib.sha256(out.numpy().tobytes()).hexdigest()
    return [raw] + [x.hex() for x in evaluate_state(task, state, data)]


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]))
    print(json.dumps(probe()))
