"""A level-B node's configuration: `[vault]` in node.toml, written by `setup_coalition(level="B")`, checked on load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tclearn.errors import ConfigError
from tclearn.ledger.block import Block
from tclearn.ledger.verify import verify_genesis
from tclearn.node import setup_coalition
from tclearn.node.config import NodeConfig
from tclearn.node.vault_link import VaultModelCache, vault_settings
from tclearn.node.vault_setup import SUPERVISOR_ID, supervisor_dir
from tclearn.vault.journal import verify_journal


@pytest.mark.slow  # ~5 s alone (scrypt, certificates), more on a loaded machine
def test_a_level_b_setup_writes_the_supervisor_and_each_nodes_vault_section(tmp_path: Path) -> None:
    configs = setup_coalition(tmp_path / "c", 2, task="digits", seed=1, level="B")
    genesis = Block.from_bytes((tmp_path / "c" / "genesis.block").read_bytes())
    verify_genesis(genesis)
    sup = supervisor_dir(tmp_path / "c")
    pub = bytes.fromhex((sup / "vault" / "supervisor.pub").read_text().strip())
    assert genesis.payload["config"]["level"] == "B" and bytes(genesis.payload["config"]["supervisor_key"]) == pub
    entries = verify_journal(sup / "vault" / "journal.jsonl", pub)
    assert [e.action for e in entries] == ["policy.set", "put"] and entries[1].object == genesis.model_hash
    assert (sup / "vault.passphrase").stat().st_mode & 0o077 == 0
    for cfg in configs:
        loaded = NodeConfig.load(tmp_path / "c" / "nodes" / cfg.member_id / "node.toml")
        assert loaded == cfg and loaded.vault is not None and loaded.vault.member_id == SUPERVISOR_ID
        assert loaded.vault.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("section, problem", [
    ("nope", "must be a table"),
    ({"url": "https://x", "member_id": "supervisor"}, "needs fingerprint"),
    ({"url": "http://x", "member_id": "s", "fingerprint": "sha256:ab"}, "https://"),
    ({"url": "https://x", "member_id": "s", "fingerprint": "sha256:ab", "port": 1}, "unknown keys"),
])
def test_a_bad_vault_section_is_one_clear_error(section: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        vault_settings(section, "node.toml")


def test_the_node_model_cache_is_bounded_and_in_memory_only() -> None:
    from tclearn.learning import get_task
    from tclearn.learning.errors import ModelNotFoundError

    task = get_task("digits")
    cache = VaultModelCache(None, capacity=2)
    hashes = [cache.put_state(task.initial_state(s)) for s in range(3)]
    assert not cache.has(hashes[0]) and cache.has(hashes[1]) and cache.has(hashes[2])
    with pytest.raises(ModelNotFoundError):
        cache.get(hashes[0])
    with pytest.raises(ConfigError):
        cache.publish_candidate(hashes[1], task.initial_state(1), task.initial_state(2))
