"""Enrolment without shared secrets: `site init` → `pki sign` → `init` (kits) → `site join`, and every refusal.

Each refusal is one line with its documented exit code, and leaves what was
stored as it was (the PKI folder, the site folder, the kits).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tclearn.data.arrays import save_npz
from tclearn.data.content_hash import data_hash
from tclearn.data import Dataset
from tclearn.learning import get_task
from tclearn.ledger.block import Block
from tclearn.node.config import NodeConfig

from sites import DIGITS_HP, coalition_toml, enrol, snapshot, tclearn

NAMES = ["hospital-a", "hospital-b", "hospital-c"]


def _coalition(root: Path, coalition_id: str = "digits-sites") -> Path:
    """Three digits sites enrolled, G and each site's data as .npz, kits written and put in the sites."""
    data = get_task("digits").coalition_data(3, seed=11, test_size=120)
    save_npz(data.test, root / "G.npz")
    for name, part in zip(NAMES, data.partners):
        (root / f"{name}-data").mkdir()
        save_npz(part, root / f"{name}-data" / "part.npz")
    pki, members = enrol(root, NAMES)
    (root / "coalition.toml").write_text(coalition_toml(coalition_id, "digits", {}, DIGITS_HP, members,
                                                        pki / "ca.crt", root / "G.npz"))
    code, out = tclearn("init", root / "coalition.toml", "--out", root / "out")
    assert code == 4 and "--founder-key" in out  # genesis is signed at the founding site: no key made here
    code, out = tclearn("init", root / "coalition.toml", "--out", root / "out",
                        "--founder-key", root / "hospital-a" / "identity" / "hospital-a.key")
    assert code == 0, out
    for name in NAMES:
        shutil.copytree(root / "out" / "kits" / name, root / name / "kit")
    return root


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _coalition(tmp_path_factory.mktemp("sites"))


def test_kits_carry_no_private_key_and_sites_join(coalition: Path, tmp_path: Path) -> None:
    genesis = Block.from_bytes((coalition / "out" / "genesis.block").read_bytes())
    payload = genesis.payload["config"]
    assert payload["test_set_hash"] == data_hash(coalition / "G.npz")
    for name in NAMES:
        kit = coalition / "out" / "kits" / name
        assert not any(b"PRIVATE KEY" in p.read_bytes() for p in kit.rglob("*") if p.is_file())
        listed = {m["id"]: bytes(m["public_key"]).hex() for m in payload["members"]}
        assert listed[name] == (coalition / name / "identity" / f"{name}.pub").read_text().strip()
    site = tmp_path / "a"
    shutil.copytree(coalition / "hospital-a", site)
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", coalition / "hospital-a-data",
                        "--data-kind", "npz")
    assert code == 0, out
    cfg = NodeConfig.load(site / "node.toml")
    assert (cfg.member_id, cfg.host, cfg.data.kind, cfg.test_set.kind) == ("hospital-a", "127.0.0.2", "npz", "npz")
    assert cfg.identity_key.resolve() == (site / "identity" / "hospital-a.key").resolve()
    assert [p.member_id for p in cfg.peers] == NAMES
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", coalition / "hospital-a-data",
                        "--data-kind", "npz")
    assert code == 3 and "already" in out  # joined once


def test_pki_sign_refuses_a_second_request_for_an_existing_name(coalition: Path, tmp_path: Path) -> None:
    before = snapshot(coalition / "pki")
    code, out = tclearn("pki", "sign", coalition / "hospital-b" / "hospital-b.request.toml", "--ca", coalition / "pki")
    assert code == 22 and "already issued" in out and out.count("\n") == 1
    # another site choosing a name already taken
    code, out = tclearn("site", "init", "hospital-b", "--host", "127.0.0.9", "--port", "9999",
                        "--dir", tmp_path / "impostor")
    assert code == 0, out
    code, out = tclearn("pki", "sign", tmp_path / "impostor" / "hospital-b.request.toml", "--ca", coalition / "pki")
    assert code == 22 and "hospital-b" in out
    assert snapshot(coalition / "pki") == before


def test_pki_sign_refuses_an_altered_request(coalition: Path, tmp_path: Path) -> None:
    code, out = tclearn("site", "init", "hospital-z", "--host", "127.0.0.5", "--port", "9005", "--dir", tmp_path / "z")
    assert code == 0, out
    request = tmp_path / "z" / "hospital-z.request.toml"
    request.write_text(request.read_text().replace("https://127.0.0.5:9005", "https://127.0.0.6:9005"))
    before = snapshot(coalition / "pki")
    code, out = tclearn("pki", "sign", request, "--ca", coalition / "pki")
    assert code == 25 and "signature does not verify" in out
    assert snapshot(coalition / "pki") == before


def test_join_refuses_a_kit_for_another_coalition(coalition: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _coalition(other, coalition_id="another")  # same member names, other sites' keys
    site = tmp_path / "a"
    shutil.copytree(coalition / "hospital-a", site)
    before = snapshot(site)
    code, out = tclearn("site", "join", other / "out" / "kits" / "hospital-a", "--dir", site,
                        "--data", coalition / "hospital-a-data", "--data-kind", "npz")
    assert code == 2 and "another coalition" in out and out.count("\n") == 1
    code, out = tclearn("site", "join", coalition / "out" / "kits" / "hospital-b", "--dir", site,
                        "--data", coalition / "hospital-a-data", "--data-kind", "npz")
    assert code == 2 and "for member 'hospital-b'" in out
    assert snapshot(site) == before


def _bad_data(root: Path, kind: str) -> Path:
    folder = root / kind
    folder.mkdir()
    if kind == "shape":  # 7×7 images for an 8×8 model
        save_npz(Dataset(torch.rand(80, 1, 7, 7), torch.zeros(80, dtype=torch.int64)), folder / "a.npz")
    elif kind == "labels":  # label 12 for a 10-class model
        save_npz(Dataset(torch.rand(80, 1, 8, 8), torch.full((80,), 12, dtype=torch.int64)), folder / "a.npz")
    elif kind == "unreadable":
        (folder / "a.npz").write_bytes(b"PK\x03\x04 not really a zip")
    elif kind == "pickle":
        np.savez(folder / "a.npz", x=np.array([object()], dtype=object), y=np.zeros(1, dtype=np.int64))
    return folder


@pytest.mark.parametrize("kind,message", [("shape", "does not fit task 'digits'"), ("labels", "labels must lie in 0..9"),
                                          ("unreadable", "cannot read"), ("pickle", "cannot read")])
def test_join_refuses_data_that_do_not_fit(coalition: Path, tmp_path: Path, kind: str, message: str) -> None:
    site = tmp_path / "a"
    shutil.copytree(coalition / "hospital-a", site)
    before = snapshot(site)
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", _bad_data(tmp_path, kind),
                        "--data-kind", "npz")
    assert code == 6 and message in out and out.count("\n") == 1, out
    assert snapshot(site) == before


def test_a_g_that_differs_from_genesis_is_refused_naming_both_hashes(coalition: Path, tmp_path: Path) -> None:
    site = tmp_path / "a"
    shutil.copytree(coalition / "hospital-a", site)
    code, out = tclearn("site", "join", site / "kit", "--dir", site, "--data", coalition / "hospital-a-data",
                        "--data-kind", "npz")
    assert code == 0, out
    g = site / "kit" / "test_set" / "G.npz"
    recorded = data_hash(g)
    other = get_task("digits").coalition_data(3, seed=12, test_size=120).test
    save_npz(other, g)
    found = data_hash(g)
    before = snapshot(site)
    code, out = tclearn("node", "serve", "--config", site / "node.toml", "--max-seconds", "1")
    assert code == 6 and recorded in out and found in out and out.count("\n") == 1, out
    assert not (site / "state" / "chain.sqlite").exists()
    assert {k: v for k, v in snapshot(site).items() if not k.startswith("state/")} == before
