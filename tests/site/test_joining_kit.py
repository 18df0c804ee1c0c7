"""`tclearn site kit`: a kit for a NEW member of a running coalition, accepted by `site join`; every refusal.

Three founding sites (kit mode); hospital-a's node is the operator's node (its
chain: genesis). A fourth site, hospital-d, enrols with the same CA; the
operator writes its joining kit from hospital-a's node.toml, and hospital-d
joins with it although genesis does not list it. Refused in one line, nothing
written: a kit for a member the chain holds, another member's certificate,
an OUT that exists, a node without a chain, a joining kit used at another site
or for a member genesis lists.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from tclearn.ledger.block import Block
from tclearn.ledger.sqlite_store import SQLiteChainStore
from tclearn.node.config import NodeConfig
from tclearn.node.layout import NodeLayout
from tclearn.pki.certs import cert_fingerprint

from sites import enrol, snapshot, tclearn
from test_site_enrolment import NAMES, _coalition

NEW = "hospital-d"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The coalition, hospital-a joined with its chain started (genesis stored), hospital-d enrolled."""
    root = _coalition(tmp_path_factory.mktemp("joining"))
    site = root / "hospital-a"
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", root / "hospital-a-data",
                        "--data-kind", "npz")
    assert code == 0, out
    cfg = NodeConfig.load(site / "node.toml")
    NodeLayout(cfg.data_dir).root.mkdir(parents=True)
    with SQLiteChainStore(NodeLayout(cfg.data_dir).chain) as store:
        store.append(Block.from_bytes((root / "out" / "genesis.block").read_bytes()))
    enrol(root, [NEW], hosts=("127.0.0.5",), pki=root / "pki")
    return root


def test_a_joining_kit_carries_the_current_members_and_the_new_site_joins_with_it(running: Path,
                                                                                 tmp_path: Path) -> None:
    entry = running / "pki" / "members" / f"{NEW}.toml"
    code, out = tclearn("site", "kit", entry, "--node", running / "hospital-a" / "node.toml", "--out",
                        tmp_path / "kit")
    assert code == 0, out
    assert "joining kit for hospital-d" in out and "chain at block 0" in out
    kit = tmp_path / "kit"
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in kit.rglob("*") if p.is_file())
    mark = tomllib.loads((kit / "joining.toml").read_text())
    fp = cert_fingerprint((running / "pki" / "members" / f"{NEW}.crt").read_bytes())
    assert (mark["member_id"], mark["fingerprint"], mark["chain_height"]) == (NEW, fp, 0)
    genesis = Block.from_bytes((running / "out" / "genesis.block").read_bytes())
    assert (kit / "genesis.block").read_bytes() == genesis.to_bytes()
    recorded = {m["id"]: m["cert_fingerprint"] for m in genesis.payload["config"]["members"]}
    members = tomllib.loads((kit / "members.toml").read_text())["members"]
    assert {m["id"]: m["fingerprint"] for m in members} == {**recorded, NEW: fp}
    assert all(m["url"].startswith("https://127.0.0.") for m in members)

    site = tmp_path / "d"
    shutil.copytree(running / NEW, site)
    shutil.copytree(kit, site / "kit")
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", running / "hospital-a-data",
                        "--data-kind", "npz")
    assert code == 0, out
    cfg = NodeConfig.load(site / "node.toml")
    assert (cfg.member_id, cfg.host, cfg.fingerprint, cfg.index, cfg.partners) == (NEW, "127.0.0.5", fp, 3, 4)
    assert [p.member_id for p in cfg.peers] == [*NAMES, NEW]
    assert cfg.identity_key.resolve() == (site / "identity" / f"{NEW}.key").resolve()
    assert cfg.genesis.resolve() == (site / "kit" / "genesis.block").resolve()


def test_a_joining_kit_for_a_member_the_chain_holds_is_refused(running: Path, tmp_path: Path) -> None:
    before = snapshot(running / "pki")
    code, out = tclearn("site", "kit", running / "pki" / "members" / "hospital-b.toml", "--node",
                        running / "hospital-a" / "node.toml", "--out", tmp_path / "kit")
    assert code == 2 and "'hospital-b' is already a member of the chain" in out, out
    assert len(out.strip().splitlines()) == 1 and not (tmp_path / "kit").exists()
    assert snapshot(running / "pki") == before


def test_another_members_certificate_an_existing_out_and_a_node_without_chain_are_refused(running: Path, tmp_path: Path) -> None:
    # an entry for a new id carrying hospital-b's certificate (names hospital-b: refused before the chain)
    entry = tmp_path / "x.toml"
    text = (running / "pki" / "members" / f"{NEW}.toml").read_text()
    entry.write_text(text.replace(f"{NEW}.crt", str(running / "pki" / "members" / "hospital-b.crt")))
    code, out = tclearn("site", "kit", entry, "--node", running / "hospital-a" / "node.toml", "--out",
                        tmp_path / "kit")
    assert code == 2 and "names 'hospital-b', not 'hospital-d'" in out, out
    (tmp_path / "kit").mkdir()
    code, out = tclearn("site", "kit", running / "pki" / "members" / f"{NEW}.toml", "--node",
                        running / "hospital-a" / "node.toml", "--out", tmp_path / "kit")
    assert code == 3 and "already exists" in out, out
    code, out = tclearn("site", "kit", running / "pki" / "members" / f"{NEW}.toml", "--node",
                        running / "hospital-b" / "kit" / "node.toml", "--out", tmp_path / "kit2")
    assert code == 3 and "has no chain" in out, out


def test_a_joining_kit_is_refused_at_another_site_and_for_a_founding_member(running: Path, tmp_path: Path) -> None:
    code, out = tclearn("site", "kit", running / "pki" / "members" / f"{NEW}.toml", "--node",
                        running / "hospital-a" / "node.toml", "--out", tmp_path / "kit")
    assert code == 0, out
    site = tmp_path / "b"
    shutil.copytree(running / "hospital-b", site)
    before = snapshot(site)
    code, out = tclearn("site", "join", tmp_path / "kit", "--dir", site, "--data", running / "hospital-b-data",
                        "--data-kind", "npz")
    assert code == 2 and "this kit is for member 'hospital-d'" in out, out
    # a joining kit renamed for a founding member: genesis lists it, so its `tclearn init` kit is the one
    mark = (tmp_path / "kit" / "joining.toml").read_text()
    (tmp_path / "kit" / "joining.toml").write_text(mark.replace(NEW, "hospital-b"))
    node = (tmp_path / "kit" / "node.toml").read_text()
    (tmp_path / "kit" / "node.toml").write_text(node.replace(f'member_id = "{NEW}"', 'member_id = "hospital-b"'))
    code, out = tclearn("site", "join", tmp_path / "kit", "--dir", site, "--data", running / "hospital-b-data",
                        "--data-kind", "npz")
    assert code == 2 and "already listed in the genesis" in out, out
    assert snapshot(site) == before
