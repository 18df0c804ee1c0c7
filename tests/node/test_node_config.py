"""node.toml round trip and coalition set-up (no process started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tclearn.errors import ConfigError
from tclearn.ledger.block import Block
from tclearn.ledger.verify import verify_genesis
from tclearn.node import NodeConfig, setup_coalition
from tclearn.errors import DataError
from tclearn.node.data_source import partner_data, task_from_genesis


def test_setup_writes_configs_that_load_back(tmp_path: Path) -> None:
    configs = setup_coalition(tmp_path / "c", 3, task="digits", seed=5)
    assert [c.member_id for c in configs] == ["m0", "m1", "m2"]
    genesis = Block.from_bytes((tmp_path / "c" / "genesis.block").read_bytes())
    verify_genesis(genesis)
    fps = {m["id"]: m["cert_fingerprint"] for m in genesis.payload["config"]["members"]}
    for cfg in configs:
        loaded = NodeConfig.load(tmp_path / "c" / "nodes" / cfg.member_id / "node.toml")
        assert loaded == cfg
        assert fps[cfg.member_id] == cfg.fingerprint
        assert (cfg.identity_key.stat().st_mode & 0o077) == 0
    ports = {c.port for c in configs}
    assert len(ports) == 3
    summary = json.loads((tmp_path / "c" / "coalition.json").read_text())
    assert [s["member"] for s in summary] == ["m0", "m1", "m2"]
    with pytest.raises(FileExistsError):
        setup_coalition(tmp_path / "c", 3)
    # `coalition up` records the task's architecture, as `tclearn init` does, and a node checks it
    model = genesis.payload["config"]["model"]
    assert model["architecture"] == task_from_genesis(genesis.payload["config"]).architecture == "tclearn.DigitsCNN"
    with pytest.raises(DataError, match="'resnet'.*'tclearn.DigitsCNN'"):
        task_from_genesis({**genesis.payload["config"], "model": {**model, "architecture": "resnet"}})


def test_partner_data_is_deterministic_and_disjoint() -> None:
    a0, g0 = partner_data("digits", 3, 7, 0)
    a1, g1 = partner_data("digits", 3, 7, 1)
    b0, _ = partner_data("digits", 3, 7, 0)
    assert a0.digest() == b0.digest() and g0.digest() == g1.digest()
    assert a0.digest() != a1.digest()


def test_bad_config_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "node.toml"
    p.write_text("[node]\nmember_id = 'm0'\n")
    with pytest.raises(ConfigError):
        NodeConfig.load(p)
    p.write_text("not toml [")
    with pytest.raises(ConfigError):
        NodeConfig.load(p)
