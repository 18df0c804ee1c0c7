"""Governing a running coalition of real node processes (mutual TLS on loopback), from the `tclearn` command.

One coalition of four digits nodes: blocks are committed; the founder reverts
to block 2 and training continues from block 2's model; a hyper-parameter
change is obeyed by the increments trained after its block; the genesis
adaptive learning-rate policy (a lower rate, and an epochs cap) is carried
out by the nodes; a member whose data repeats another's (m2 holds m1's
partition) and whose modified node ignores the spent-id registry
(`duplicating_node.py`) has its batch refused with the sample's id named; the founder removes m3, whose node stops at that block;
bad requests are refused with a clear message and exit code; a node killed
mid-run comes back and the spent-id registry rebuilt from any node's chain
and lists is the same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gov_polling import height, wait_until
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.consensus.certificate import check_certificate
from tclearn.identity import load_identity
from tclearn.ledger.block import Block
from tclearn.ledger.genesis import GenesisConfig, build_genesis
from tclearn.ledger.policies import LearningRatePolicy
from tclearn.ledger.records import Proposal
from tclearn.ledger.verify import verify_chain
from tclearn.node import chains, kill_node, setup_coalition, start_node, stop_nodes
from tclearn.node.batch_ids import BatchIdRegistry
from tclearn.node.launcher import _pids, _save_pids
from tclearn.node.config import NodeConfig

pytestmark = pytest.mark.slow

LR_FACTOR = 0.5
HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def _start_duplicating(out: Path, member: str) -> None:
    """Start `member` as a node that claims spent samples as new (a modified node, `duplicating_node.py`)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(SRC) + os.pathsep + str(HERE))
    with open(out / "nodes" / member / "stdout.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, str(HERE / "duplicating_node.py"),
                                 str(out / "nodes" / member / "node.toml")],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    pids = _pids(out)
    pids[member] = proc.pid
    _save_pids(out, pids)


def _with_adaptive_lr(out: Path) -> float:
    """Rewrite genesis (signed by the founder) with an adaptive learning-rate policy; the genesis rate."""
    old = Block.from_bytes((out / "genesis.block").read_bytes())
    config = dataclasses.replace(GenesisConfig.from_payload(old.payload["config"]),
                                 adaptive_lr=LearningRatePolicy(factor=LR_FACTOR, patience=2, min_delta=0.5,
                                                                               epochs=1))
    founder = load_identity(out / "identities" / "m0.key", "m0")
    (out / "genesis.block").write_bytes(build_genesis(config, old.model_hash, founder, old.timestamp).to_bytes())
    return float(config.hyperparams["learning_rate"])


def _events(out: Path, member: str, event: str) -> list[dict[str, Any]]:
    path = out / "nodes" / member / "data" / "node.log"
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == event]



def _moved_past(out: Path, index: int) -> bool:
    """Whether m0's head model is no longer block `index`'s (a revert to it changes something)."""
    chain = chains(out)["m0"]
    return len(chain) > index + 1 and chain[-1].model_hash != chain[index].model_hash



def test_a_running_coalition_is_governed_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "c"
    setup_coalition(out, 4, task="digits", seed=7, committee=2, tick_ms=50)
    genesis_lr = _with_adaptive_lr(out)
    cfg = {m: out / "nodes" / m / "node.toml" for m in ("m0", "m1", "m2", "m3")}
    # m2's data is m1's partition: its batches repeat samples m1 contributed
    cfg["m2"].write_text(dataclasses.replace(NodeConfig.load(cfg["m2"]), index=1).to_toml())
    run = CliRunner().invoke
    try:
        for m in ("m0", "m1", "m3"):
            start_node(out, m)
        _start_duplicating(out, "m2")
        wait_until(lambda: height(out) >= 3 and _moved_past(out, 2), 60, "an increment after block 2")

        # --- revert to block 2 (m0 is the founder, the one member genesis authorises) ---
        r = run(app, ["revert", "--to", "2", "--config", str(cfg["m0"]), "--wait", "30"])
        assert r.exit_code == 0, r.output
        recorded = json.loads(r.output.strip().splitlines()[-1])["recorded"]
        assert recorded["kind"] == "revert" and recorded["payload"]["target"] == 2
        r = run(app, ["revert", "--to", "1", "--config", str(cfg["m1"])])
        assert r.exit_code == 7 and "m1 is not authorised to revert" in r.output
        r = run(app, ["revert", "--to", "999", "--config", str(cfg["m0"])])
        assert r.exit_code == 7 and "block 999 does not exist" in r.output

        # --- a hyper-parameter change, obeyed by the increments after its block ---
        r = run(app, ["hyperparams", "set", "learning_rate=0.0123", "epochs=2", "--config", str(cfg["m1"]),
                      "--wait", "30"])
        assert r.exit_code == 0, r.output
        hp_index = json.loads(r.output.strip().splitlines()[-1])["recorded"]["index"]
        r = run(app, ["hyperparams", "set", "momentum=0.5", "--config", str(cfg["m1"])])
        assert r.exit_code == 2 and "unknown hyper-parameter 'momentum'" in r.output
        r = run(app, ["hyperparams", "set", "learning_rate=-1", "--config", str(cfg["m1"])])
        assert r.exit_code == 2 and "outside the genesis rules" in r.output

        # --- the founder removes m3; m3's node stops at the block, and its operator's requests go nowhere ---
        r = run(app, ["membership", "remove", "--id", "m1", "--config", str(cfg["m2"])])
        assert r.exit_code == 7 and "founder" in r.output
        r = run(app, ["membership", "remove", "--id", "m3", "--config", str(cfg["m0"]), "--wait", "30"])
        assert r.exit_code == 0, r.output
        removed_at = json.loads(r.output.strip().splitlines()[-1])["recorded"]["index"]
        wait_until(lambda: [e["index"] for e in _events(out, "m3", "removed_from_coalition")] == [removed_at], 20,
                   "m3's node to commit its removal")
        wait_until(lambda: height(out, "m3") < 0, 20, "m3's node to stop")
        r = run(app, ["hyperparams", "set", "epochs=3", "--config", str(cfg["m3"])])
        assert r.exit_code == 5, r.output

        # --- a crash: m0 killed and restarted keeps up ---
        kill_node(out, "m0", signal.SIGKILL)
        start_node(out, "m0")
        target = removed_at + 4
        wait_until(lambda: all(height(out, m) >= target for m in ("m0", "m1", "m2")), 60, f"height {target}")
    finally:
        stop_nodes(out, grace_s=3)

    chain = chains(out)["m1"]
    by_index = {b.index: b for b in chain}
    # the revert: the head model became block 2's, and the next candidate was trained from it
    revert = next(b for b in chain if b.kind == "revert")
    assert revert.model_hash == by_index[2].model_hash and revert.payload["target"] == 2
    after = next(b for b in chain if b.index > revert.index and b.kind in ("increment", "rejected"))
    assert Proposal.from_dict(after.payload["proposal"]).parent_model_hash == by_index[2].model_hash
    # strengths and contributions are unchanged by a revert
    before_revert = verify_chain(chain[: revert.index], certificate_check=check_certificate)
    after_revert = verify_chain(chain[: revert.index + 1], certificate_check=check_certificate)
    assert after_revert.contributions == before_revert.contributions
    assert after_revert.strengths() == before_revert.strengths() == revert.strengths
    # every training after the hyperparams block, up to the next one, used its values
    next_hp = min([b.index for b in chain if b.kind == "hyperparams" and b.index > hp_index] + [10**9])
    trained = [e for m in ("m0", "m1", "m2") for e in _events(out, m, "trained") if hp_index < e["height"] < next_hp]
    assert trained and all(e["learning_rate"] == 0.0123 and e["epochs"] == 2 for e in trained)
    before = [e for m in ("m0", "m1", "m2") for e in _events(out, m, "trained") if e["height"] <= 2]
    assert before and all(e["learning_rate"] == genesis_lr for e in before)
    # the genesis adaptive policy: a node asked, and a block by the scheduled proposer recorded a lower rate
    asked = [e for m in ("m0", "m1", "m2", "m3") for e in _events(out, m, "adaptive_lr_requested")]
    adaptive = [b for b in chain if b.kind == "hyperparams" and b.index != hp_index]
    assert asked and adaptive
    # each lowering also caps the epochs at the policy's 1 while more are in force (genesis 4, the change above 2)
    in_force = {0: int(chain[0].payload["config"]["hyperparams"]["epochs"])}
    for b in chain[1:]:
        epochs = b.payload["hyperparams"].get("epochs") if b.kind == "hyperparams" else None
        in_force[b.index] = in_force[b.index - 1] if epochs is None else int(epochs)
    for b in adaptive:
        before_it = in_force[b.index - 1]
        assert b.payload["hyperparams"] == ({"learning_rate": b.payload["hyperparams"]["learning_rate"]}
                                            | ({"epochs": 1} if before_it > 1 else {}))
    assert any("epochs" in b.payload["hyperparams"] for b in adaptive)
    # and obeyed: every training at a height where one epoch was in force trained one
    one = [e for m in ("m0", "m1", "m2") for e in _events(out, m, "trained") if in_force.get(e["height"] - 1) == 1]
    assert one and all(e["epochs"] == 1 for e in one)
    # m3 is gone from the strengths after its removal, and contributes nothing after it
    assert all("m3" not in b.strengths for b in chain if b.index > removed_at)
    assert all(b.contributor != "m3" for b in chain if b.index > removed_at)
    # m2 repeats m1's samples: validators refused its batch, naming a sample m1 contributed
    refused = [e for m in ("m0", "m1", "m3") for e in _events(out, m, "batch_refused") if e["proposer"] == "m2"]
    assert refused and all(e["data_id"] for e in refused)
    # honest trainers count contributions from the chain: no batch lists a never-contributed sample as re-used
    never = [e for m in ("m0", "m1", "m2", "m3") for e in _events(out, m, "batch_refused") if "never contributed" in e["reason"]]
    assert never == []
    m1_ids = BatchIdRegistry(out / "nodes" / "m1" / "data" / "batch_ids", lambda *a, **k: None)
    m1_ids.rebuild(chain)
    claimed = [e for e in refused if "claimed as new but was already contributed" in e["reason"]]
    assert claimed and all(e["data_id"] in m1_ids.snapshot() and e["data_id"] in e["reason"] for e in claimed)
    assert any(b.kind == "rejected" and b.contributor == "m2" for b in chain)
    # the registry rebuilt from the chain and lists is the same on every node (m0 crashed in between),
    # and counts exactly the samples the chain credits
    common = min(len(c) for m, c in chains(out).items() if m != "m3")
    rebuilt = {}
    for m in ("m0", "m1", "m2"):
        reg = BatchIdRegistry(out / "nodes" / m / "data" / "batch_ids", lambda *a, **k: None)
        reg.rebuild(chain[:common])
        assert reg.missing() == [], m
        rebuilt[m] = reg.summary()
    assert len({r["digest"] for r in rebuilt.values()}) == 1
    counted = sum(int(b.payload["proposal"]["sample_count"]) for b in chain[:common] if b.kind == "increment")
    assert rebuilt["m0"]["spent"] == counted > 0
