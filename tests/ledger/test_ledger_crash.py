"""kill -9 while appending: every append that returned survives, and the chain still verifies."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tclearn.ledger.sqlite_store import open_store
from tclearn.ledger.verify import verify_chain

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 5


def _run_and_kill(db: Path, rng: random.Random, round_: int) -> list[int]:
    """Start a writer, SIGKILL it after a random number of appends; every index it printed."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(round_)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    printed: list[int] = []
    try:
        assert child.stdout is not None
        wanted = rng.randint(3, 25)
        for line in child.stdout:
            if line.strip() == "ready":
                continue
            printed.append(int(line))
            if len(printed) >= wanted:
                break
        time.sleep(rng.uniform(0, 0.005))  # land anywhere inside the next append
        os.kill(child.pid, signal.SIGKILL)
        rest, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, err
    printed += [int(x) for x in rest.split() if x != "ready"]  # appends that returned before the kill
    return printed


def test_every_returned_append_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "chain.db"
    rng = random.Random(2024)
    acknowledged = -1
    for round_ in range(ROUNDS):
        printed = _run_and_kill(db, rng, round_)
        assert printed, "the writer appended nothing"
        assert printed == list(range(acknowledged + 1, acknowledged + 1 + len(printed)))
        acknowledged = printed[-1]
        with open_store(db) as store:
            height = store.height()
            # everything acknowledged is there; at most the one append in flight beyond it
            assert acknowledged <= height <= acknowledged + 1, f"round {round_}: height {height}"
            state = verify_chain(store)
            assert state.height == height
        acknowledged = height  # the next writer continues from what is stored
