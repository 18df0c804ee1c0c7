"""A site joins a running coalition of real node processes by a membership block; a removed member is refused.

Three founding digits nodes run (genesis lists m0, m1, m2; committee 2). A
fourth site, m3, gets a joining kit the operator writes from m0's running node
(`tclearn site kit`: genesis, CA, its certificate, the chain's current members
and URLs); its node.toml is the kit's, with m3's own key paths and data folder,
and it is started before anyone added it: its node waits. The
founder adds it with `tclearn membership add --identity-pub --tls-cert --url`;
every founding node admits its certificate and sends to it from that block on,
without a restart; m3 catches up over mutual TLS (each block's certificate
checked), is drawn as a validator and has an increment accepted. The founder
then removes m2: m2's connections are refused, it votes in no later block,
and its node stops by itself once it commits the block that removes it.
"""

from __future__ import annotations

import dataclasses
import json
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
from tclearn.ledger.verify import verify_chain
from tclearn.node import chains, coalition_status, setup_coalition, start_node, stop_nodes
from tclearn.errors import ConfigError
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.node.config import NodeConfig
from tclearn.node.layout import NodeLayout
from tclearn.node.runtime import Node
from tclearn.transport import PeerClient

pytestmark = pytest.mark.slow

FOUNDERS = ("m0", "m1", "m2")




def _events(out: Path, member: str, event: str) -> list[dict[str, Any]]:
    path = out / "nodes" / member / "data" / "node.log"
    if not path.exists():
        return []
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == event]


def _founders_only(out: Path) -> None:
    """Genesis lists m0..m2 only (signed again by the founder); the founders' configs know nothing of m3."""
    old = Block.from_bytes((out / "genesis.block").read_bytes())
    config = GenesisConfig.from_payload(old.payload["config"])
    config = dataclasses.replace(config, members=tuple(m for m in config.members if m.member_id in FOUNDERS),
                                 committee_size=2)
    founder = load_identity(out / "identities" / "m0.key", "m0")
    (out / "genesis.block").write_bytes(build_genesis(config, old.model_hash, founder, old.timestamp).to_bytes())
    for m in FOUNDERS:
        path = out / "nodes" / m / "node.toml"
        cfg = NodeConfig.load(path)
        path.write_text(dataclasses.replace(cfg, peers=tuple(p for p in cfg.peers if p.member_id in FOUNDERS)).to_toml())


def _node_from_joining_kit(out: Path, kit: Path, toml: Path) -> NodeConfig:
    """`tclearn site kit` for m3 from m0's node; m3's node.toml becomes the kit's, with m3's keys and data dir."""
    own = NodeConfig.load(toml)
    entry = out / "m3.entry.toml"
    entry.write_text(f'[[members]]\nid = "m3"\npublic_key = "{(out / "identities" / "m3.pub").read_text().strip()}"\n'
                     f'certificate = "{own.tls_cert}"\nurl = "{own.url}"\n')
    r = CliRunner().invoke(app, ["site", "kit", str(entry), "--node", str(out / "nodes" / "m0" / "node.toml"),
                                 "--out", str(kit)])
    assert r.exit_code == 0, r.output
    from_kit = NodeConfig.load(kit / "node.toml")
    assert [p.member_id for p in from_kit.peers] == [*FOUNDERS, "m3"] and from_kit.fingerprint == own.fingerprint
    node = dataclasses.replace(from_kit, data_dir=own.data_dir, identity_key=own.identity_key, tls_key=own.tls_key,
                               data=own.data, dashboard=own.dashboard)
    toml.write_text(node.to_toml())
    return node


def test_a_site_joins_a_running_coalition_and_a_removed_member_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "c"
    setup_coalition(out, 4, task="digits", seed=11, committee=2, tick_ms=50)
    _founders_only(out)
    toml = {m: out / "nodes" / m / "node.toml" for m in ("m0", "m1", "m2", "m3")}
    cfg = {m: NodeConfig.load(toml[m]) for m in toml}
    run = CliRunner().invoke
    try:
        for m in FOUNDERS:
            start_node(out, m)
        wait_until(lambda: height(out, "m0") >= 2, 90, "two blocks by the founders")
        cfg["m3"] = _node_from_joining_kit(out, tmp_path / "kit-m3", toml["m3"])
        start_node(out, "m3")  # not a member yet: its node waits for a membership block that lists it
        wait_until(lambda: _events(out, "m3", "join_catch_up"), 30, "m3 to start catching up")

        # bad additions change nothing: a certificate of another member, a URL without a certificate
        r = run(app, ["membership", "add", "--id", "m3", "--identity-pub", str(out / "identities" / "m3.pub"),
                      "--tls-cert", str(cfg["m1"].tls_cert), "--url", cfg["m3"].url, "--config", str(toml["m0"])])
        assert r.exit_code == 2 and "names 'm1', not 'm3'" in r.output, r.output
        r = run(app, ["membership", "add", "--id", "m3", "--identity-pub", str(out / "identities" / "m3.pub"),
                      "--url", cfg["m3"].url, "--config", str(toml["m0"])])
        assert r.exit_code == 2 and "both --tls-cert and --url" in r.output

        r = run(app, ["membership", "add", "--id", "m3", "--identity-pub", str(out / "identities" / "m3.pub"),
                      "--tls-cert", str(cfg["m3"].tls_cert), "--url", cfg["m3"].url,
                      "--config", str(toml["m0"]), "--wait", "30"])
        assert r.exit_code == 0, r.output
        added = json.loads(r.output.strip().splitlines()[-1])["recorded"]
        assert added["kind"] == "membership" and added["payload"]["add"][0]["url"] == cfg["m3"].url
        added_at = int(added["index"])

        # m3 caught up (its node is up now) and takes part: a validator's vote and an accepted increment
        wait_until(lambda: height(out, "m3") >= added_at, 60, "m3 to catch up to its membership block")

        def m3_took_part() -> bool:
            chain = chains(out)["m0"]
            voted = any(any(v.validator == "m3" for v in b.block_votes) for b in chain)
            return voted and any(b.kind == "increment" and b.contributor == "m3" for b in chain)

        wait_until(m3_took_part, 120, "m3 drawn as a validator and an increment of m3 accepted")

        # the founder removes m2: its connections are refused from the next block on
        r = run(app, ["membership", "remove", "--id", "m2", "--config", str(toml["m0"]), "--wait", "30"])
        assert r.exit_code == 0, r.output
        removed_at = int(json.loads(r.output.strip().splitlines()[-1])["recorded"]["index"])
        wait_until(lambda: min(height(out, m) for m in ("m0", "m1", "m3")) >= removed_at + 2, 90,
              "two blocks after m2's removal")
        as_m2 = PeerClient(cfg["m0"].url, cfg["m2"].ca_cert, cfg["m2"].tls_cert, cfg["m2"].tls_key,
                           {cfg[m].fingerprint: m for m in ("m0", "m1", "m2", "m3")}, expected_member="m0",
                           timeout_s=3, retries=0)
        with pytest.raises(Exception):
            as_m2.request("GET", "/v1/status").raise_for_status()
        refused = [e for e in _events(out, "m0", "peer_refused") if "m2" in json.dumps(e)]
        assert refused
        # m2's own node sees the block that removes it and stops by itself (its process exits)
        wait_until(lambda: not next(r for r in coalition_status(out) if r["member"] == "m2")["running"], 30,
                   "m2's node to stop after its removal")
        assert [e["index"] for e in _events(out, "m2", "removed_from_coalition")] == [removed_at]
        assert _events(out, "m2", "node_stopped")
    finally:
        stop_nodes(out, grace_s=3)

    chain = chains(out)["m1"]
    state = verify_chain(chain, certificate_check=check_certificate)
    assert "m3" in state.members and "m2" not in state.members
    joined = verify_chain(chains(out)["m3"], certificate_check=check_certificate)  # m3's copy verifies too
    assert joined.height >= added_at
    # m2's votes stop counting from the block after its removal: it is in no later committee's votes
    later = [b for b in chain if b.index > removed_at]
    assert later and all(v.validator != "m2" for b in later for v in (*b.block_votes, *b.quality_votes))
    assert all(b.contributor != "m2" for b in later)
    # every founding node applied both membership blocks without a restart
    for m in ("m0", "m1"):
        applied = [e["index"] for e in _events(out, m, "membership_applied")]
        assert added_at in applied and removed_at in applied, m
    assert _events(out, "m3", "joined")
    # m2's node, restarted on a chain that holds its removal, says so and stops (nothing is served or stored)
    layout = NodeLayout(cfg["m2"].data_dir)
    for path in layout.chain.parent.glob(layout.chain.name + "*"):
        path.unlink()
    with SQLiteChainStore(layout.chain) as store:
        for b in chain:
            store.append(b)
    with pytest.raises(ConfigError, match=f"m2 was removed from the coalition by membership block {removed_at}"):
        Node(cfg["m2"])
