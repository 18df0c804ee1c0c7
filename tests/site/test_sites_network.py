"""Done-when for issue 13: from nothing, three sites on their own loopback addresses, each with its own data.

Each site runs `tclearn site init` on its own address (127.0.0.2-4); the
operator signs the three requests and writes genesis and the kits
(`tclearn init`, signed at the founding site); each site joins from its kit
alone with its own data folder — a NIfTI Decathlon folder for hospital-a,
.npz arrays for the others — and runs its node as a separate process. Blocks
are committed, every chain is the same, and a member predicts a NIfTI mask
with block 2's model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tclearn.data import phantom_coalition
from tclearn.data.arrays import save_npz
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.node.launcher import stop_process_groups

from sites import HOSTS, coalition_toml, enrol, tclearn, write_decathlon

pytestmark = pytest.mark.slow

NAMES = ["hospital-a", "hospital-b", "hospital-c"]
SHAPE = [16, 16, 16]
MODEL = {"shape": SHAPE, "channels": [4, 8], "strides": [2], "num_res_units": 0, "out_channels": 1, "loss": "dice"}
HP = {"learning_rate": 0.01, "optimizer": "adam", "epochs": 1, "min_batch_size": 8}
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _height(site: Path) -> int:
    path = site / "state" / "chain.sqlite"
    if not path.exists():
        return 0
    try:
        with SQLiteChainStore(path, create=False, read_only=True) as chain:
            return chain.height()
    except Exception:  # created but not initialised yet
        return 0


def _start(site: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=SRC + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    with open(site / "stdout.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tclearn.node", "serve", "--config", str(site / "node.toml")],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)


def test_three_sites_from_their_kits_commit_blocks_and_a_member_predicts(tmp_path: Path) -> None:
    root = tmp_path
    phantoms = phantom_coalition(3, seed=2, per_partner=12, test_size=8, shape=tuple(SHAPE))  # type: ignore[arg-type]
    save_npz(phantoms.test, root / "G.npz")  # G, distributed with the kits
    write_decathlon(root / "hospital-a-data", cases=12, seed=1)  # hospital-a's own scans, as NIfTI
    for i, name in enumerate(NAMES[1:], start=1):
        (root / f"{name}-data").mkdir()
        save_npz(phantoms.partners[i], root / f"{name}-data" / "volumes.npz")
    pki, members = enrol(root, NAMES)
    (root / "coalition.toml").write_text(coalition_toml("bladder-sites", "bladder", MODEL, HP, members,
                                                        pki / "ca.crt", root / "G.npz"))
    code, out = tclearn("init", root / "coalition.toml", "--out", root / "operator",
                        "--founder-key", root / "hospital-a" / "identity" / "hospital-a.key")
    assert code == 0, out
    for name in NAMES:
        site = root / name
        shutil.copytree(root / "operator" / "kits" / name, site / "kit")
        kind = "nifti" if name == "hospital-a" else "npz"
        code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", root / f"{name}-data",
                            "--data-kind", kind)
        assert code == 0, out
    procs = [_start(root / name) for name in NAMES]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and min(_height(root / n) for n in NAMES) < 3:
            assert all(p.poll() is None for p in procs), [(root / n / "stdout.log").read_text()[-500:] for n in NAMES]
            time.sleep(1.0)
        heights = [_height(root / n) for n in NAMES]
        assert min(heights) >= 3, heights
    finally:
        stop_process_groups(procs)
    chains = []
    for name in NAMES:
        with SQLiteChainStore(root / name / "state" / "chain.sqlite", create=False, read_only=True) as chain:
            chains.append([b.block_hash for b in chain][:3])
    assert chains[0] == chains[1] == chains[2]
    # each member speaks from its own address: hospital-b saw hospital-a's requests come from 127.0.0.2
    requests = [json.loads(line) for line in (root / "hospital-b" / "state" / "node.log").read_text().splitlines()
                if '"event": "request"' in line]
    peers = {r["caller"]: r["peer"].rsplit(":", 1)[0] for r in requests if r.get("caller") in NAMES}
    assert peers == {"hospital-a": HOSTS[0], "hospital-c": HOSTS[2]}, peers

    # a member (hospital-b) predicts a mask for hospital-a-like scan, guided by one labelled slice
    case = root / "hospital-a-data"
    volume = case / "imagesTr" / "case_000.nii.gz"
    labels = np.asarray(nib.load(str(case / "labelsTr" / "case_000.nii.gz")).dataobj)
    k = int(np.flatnonzero(labels.reshape(-1, labels.shape[2]).sum(axis=0))[0]) + 2
    one_slice = np.zeros_like(labels)
    one_slice[:, :, k] = labels[:, :, k]
    nib.save(nib.Nifti1Image(one_slice, np.eye(4)), str(root / "slice.nii.gz"))
    code, out = tclearn("predict", volume, root / "mask.nii.gz", "--block", "2", "--node", root / "hospital-b",
                        "--slice", root / "slice.nii.gz")
    assert code == 0, out
    mask = nib.load(str(root / "mask.nii.gz"))
    data = np.asarray(mask.dataobj)
    assert data.shape == labels.shape and set(np.unique(data)) <= {0, 1}
    assert np.allclose(mask.affine, np.eye(4))
    code, out = tclearn("model", "get", root / "m2.safetensors", "--block", "2", "--node", root / "hospital-c")
    assert code == 0, out
