"""`tclearn coalition up --level B`: node processes that fetch and publish models only through the vault service."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.ledger.records import Proposal
from tclearn.node import chains, setup_coalition, start_nodes, stop_nodes, wait_for_height
from tclearn.node.launcher import _client, _summary
from tclearn.node.vault_setup import SUPERVISOR_ID, supervisor_dir
from tclearn.vault.journal import read_journal
from tclearn.vault.storage import Vault

from level_b_scan import assert_no_plaintext, model_probes

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def coalition_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net-b") / "c"
    setup_coalition(out, 3, task="digits", seed=0, level="B")
    try:
        start_nodes(out)
        assert wait_for_height(out, 3, 240), "the level-B coalition did not reach height 3"
        head = next(iter(chains(out).values()))[0].model_hash
        entry = _summary(out)[1]
        served = _client(out, entry).get(f"/v1/models/{head}")  # a peer asks a node for the genesis model
        (out / "node_model_status.txt").write_text(str(served.status))
    finally:
        stop_nodes(out)
    return out


def test_nodes_fetch_and_publish_only_through_the_vault(coalition_b: Path) -> None:
    out = coalition_b
    all_chains = chains(out)
    common = min(len(c) for c in all_chains.values())
    assert common >= 4
    first = next(iter(all_chains.values()))
    assert all(c[i].block_hash == first[i].block_hash for c in all_chains.values() for i in range(common))
    config = first[0].payload["config"]
    assert config["level"] == "B" and config["supervisor"] == SUPERVISOR_ID
    assert bytes(config["supervisor_key"]).hex() == (supervisor_dir(out) / "vault" / "supervisor.pub").read_text().strip()
    assert (out / "node_model_status.txt").read_text() == "404"  # nodes serve no model to peers
    entries = read_journal(supervisor_dir(out) / "vault" / "journal.jsonl")
    granted = {(e.actor, e.action) for e in entries if e.outcome == "granted"}
    assert {("m0", "use"), ("m1", "use"), ("m2", "use")} <= granted
    published = {e.object for e in entries if e.action == "publish" and e.outcome == "granted"}
    for b in first[1:common]:
        if b.kind in ("increment", "rejected"):
            p = Proposal.from_dict(b.payload["proposal"])
            assert p.model_hash in published and p.increment_hash in published and p.vault_head
    for m in ("m0", "m1", "m2"):
        assert not (out / "nodes" / m / "data" / "models").exists()


def test_audit_verify_checks_the_vault_against_a_nodes_chain(coalition_b: Path) -> None:
    vault = supervisor_dir(coalition_b) / "vault"
    result = runner.invoke(app, ["audit", "verify", str(vault), "--chain",
                                 str(coalition_b / "nodes" / "m1" / "data" / "chain.sqlite")])
    assert result.exit_code == 0, result.output
    assert "chain anchors ok" in result.output


def test_no_model_bytes_on_any_disk_in_the_clear(coalition_b: Path) -> None:
    root = supervisor_dir(coalition_b)
    vault = Vault.open(root / "vault", (root / "vault.passphrase").read_bytes().strip())
    probes = model_probes(bytes(vault.get(object_id)[0]) for object_id in vault.ids())
    assert len(probes) > 20
    assert_no_plaintext((p for p in coalition_b.rglob("*") if p.is_file()), probes)
