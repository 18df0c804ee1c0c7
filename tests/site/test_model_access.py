"""`tclearn model get` and `tclearn predict` on a node's directory: hash-checked against the verified chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tclearn.data.digits import load_digits_dataset
from tclearn.identity import Identity
from tclearn.ledger.genesis import GenesisConfig, MemberInfo, build_genesis
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.learning import DirectoryModelStore, get_task, model_hash
from tclearn.learning.serialize import hash_bytes

from sites import snapshot, tclearn


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits node's directory holding genesis (block 0) and its model."""
    root = tmp_path_factory.mktemp("node")
    task = get_task("digits")
    ids = [Identity.generate(m) for m in ("a", "b")]
    config = GenesisConfig(
        coalition_id="models", level="A", members=tuple(MemberInfo(i.member_id, i.public_key) for i in ids),
        task="digits", architecture=task.architecture, model_config=dict(task.config), model_seed=3,
        hyperparams=task.default_hyperparams.genesis_dict(), lam=0.9, committee_size=1, test_set_hash="0" * 64)
    state = task.initial_state(3)
    genesis = build_genesis(config, model_hash(state), ids[0], 1_700_000_000_000)
    with SQLiteChainStore(root / "chain.sqlite", create=True) as chain:
        chain.append(genesis)
    DirectoryModelStore(root / "models").put_state(state)
    return root


def test_model_get_writes_the_model_the_block_records(node_dir: Path, tmp_path: Path) -> None:
    code, out = tclearn("model", "get", tmp_path / "m0.safetensors", "--block", "0", "--node", node_dir)
    assert code == 0, out
    with SQLiteChainStore(node_dir / "chain.sqlite", read_only=True) as chain:
        assert hash_bytes((tmp_path / "m0.safetensors").read_bytes()) == chain.get(0).model_hash
    code, out = tclearn("model", "get", tmp_path / "m5.safetensors", "--block", "5", "--node", node_dir)
    assert code == 3 and "no block 5" in out and not (tmp_path / "m5.safetensors").exists()
    code, out = tclearn("model", "get", tmp_path / "x.safetensors", "--block", "0", "--node", tmp_path / "nowhere")
    assert code == 2 and out.count("\n") == 1


def test_predict_a_digit_from_a_png_and_from_an_array(node_dir: Path, tmp_path: Path) -> None:
    digits = load_digits_dataset()
    np.save(tmp_path / "five.npy", digits.x[:5, 0].numpy())
    Image.fromarray((digits.x[0, 0].numpy() * 255).astype(np.uint8)).resize((32, 32)).save(tmp_path / "one.png")
    code, out = tclearn("predict", tmp_path / "five.npy", tmp_path / "five.json", "--block", "0", "--node", node_dir)
    assert code == 0, out
    record = json.loads((tmp_path / "five.json").read_text())
    assert record["block"] == 0 and len(record["classes"]) == 5 and all(0 <= c <= 9 for c in record["classes"])
    code, out = tclearn("predict", tmp_path / "one.png", tmp_path / "one.json", "--block", "0", "--node", node_dir)
    assert code == 0, out
    assert len(json.loads((tmp_path / "one.json").read_text())["classes"]) == 1
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7, 7), dtype=np.float32))
    code, out = tclearn("predict", tmp_path / "wrong.npy", tmp_path / "w.json", "--block", "0", "--node", node_dir)
    assert code == 6 and "[8, 8]" in out and not (tmp_path / "w.json").exists()


def test_a_model_file_whose_hash_is_not_on_the_chain_is_refused(node_dir: Path, tmp_path: Path) -> None:
    other = get_task("digits").initial_state(4)  # a well-formed model of the same architecture, not this chain's
    store = DirectoryModelStore(tmp_path / "elsewhere")
    h = store.put_state(other)
    np.save(tmp_path / "d.npy", np.zeros((8, 8), dtype=np.float32))
    before = snapshot(node_dir)
    code, out = tclearn("predict", tmp_path / "d.npy", tmp_path / "d.json", "--block", "0", "--node", node_dir,
                        "--model", store.root / h[:2] / f"{h}.safetensors")
    assert code == 6 and h in out and "on no block of this chain" in out and out.count("\n") == 1
    assert not (tmp_path / "d.json").exists() and snapshot(node_dir) == before


def test_a_stored_model_that_changed_is_refused(node_dir: Path, tmp_path: Path) -> None:
    with SQLiteChainStore(node_dir / "chain.sqlite", read_only=True) as chain:
        h = chain.get(0).model_hash
    path = node_dir / "models" / h[:2] / f"{h}.safetensors"
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-4] + b"\x00\x00\x00\x00")
        code, out = tclearn("model", "get", tmp_path / "m.safetensors", "--block", "0", "--node", node_dir)
        assert code == 3 and "corrupted" in out and not (tmp_path / "m.safetensors").exists()
    finally:
        path.write_bytes(original)
