"""`tclearn node propose`: a node in on-demand mode proposes only when its operator asks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.node import node_status, setup_coalition, start_nodes, stop_nodes, wait_for_height
from tclearn.node.config import NodeConfig
from tclearn.transport import MemberAllowList, PeerClient

pytestmark = pytest.mark.slow


def test_on_demand_node_proposes_when_asked_and_only_its_own_certificate_may_ask(tmp_path: Path) -> None:
    # m0 and m2 propose in turn, so heights advance; m1 waits to be asked
    out = tmp_path / "c"
    setup_coalition(out, 3, task="digits", seed=5, committee=1, tick_ms=50)
    m1 = out / "nodes" / "m1" / "node.toml"
    m1.write_text(dataclasses.replace(NodeConfig.load(m1), propose="on-demand", proposal_timeout_ticks=40).to_toml())
    runner = CliRunner()
    try:
        start_nodes(out)
        assert wait_for_height(out, 4, timeout_s=180)
        r = runner.invoke(app, ["node", "status", "--config", str(m1)])
        assert r.exit_code == 0, r.output
        status = json.loads(r.output)
        assert status["propose"]["mode"] == "on-demand" and status["height"] >= 4
        assert status["propose"]["own_blocks"] == 0  # nobody asked: m1 passed every turn

        # another member's certificate is refused (403), and nothing is queued
        cfg0, cfg1 = NodeConfig.load(out / "nodes" / "m0" / "node.toml"), NodeConfig.load(m1)
        allow = MemberAllowList({p.fingerprint: p.member_id for p in cfg0.peers})
        as_m0 = PeerClient(cfg1.url, cfg0.ca_cert, cfg0.tls_cert, cfg0.tls_key, allow, expected_member="m1",
                           timeout_s=5, retries=0)
        assert as_m0.post_json("/v1/propose", {}).status == 403

        r = runner.invoke(app, ["node", "propose", "--config", str(m1), "--wait", "180"])
        assert r.exit_code == 0, r.output
        lines = [json.loads(line) for line in r.output.strip().splitlines()]
        assert lines[0]["mode"] == "on-demand" and lines[0]["pending"] == 1
        recorded = lines[-1]["recorded"]
        assert recorded["kind"] in ("increment", "rejected") and recorded["index"] >= 1
        status = node_status(out, "m1")
        assert status["propose"]["own_blocks"] == 1 and status["propose"]["pending"] == 0
        assert status["propose"]["last_own_block"]["index"] == recorded["index"]
    finally:
        stop_nodes(out, grace_s=3)


def test_propose_to_a_stopped_node_fails_clearly(tmp_path: Path) -> None:
    out = tmp_path / "c"
    setup_coalition(out, 2, task="digits", seed=6)
    r = CliRunner().invoke(app, ["node", "propose", "--config", str(out / "nodes" / "m0" / "node.toml")])
    assert r.exit_code == 5 and "did not answer" in r.output  # EXIT_TRANSPORT (tclearn.cli.errors)
