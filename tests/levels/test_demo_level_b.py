"""`tclearn demo --level B`: models only through the vault, the journal anchored in the chain, nothing in the clear.

One short digits run (3 partners, 3 blocks) is shared by the tests; tampering
happens on copies of its vault.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.demo.engine import MODEL_FILE, DemoOptions, run_coalition
from tclearn.demo.vault_models import SECRETS_DIR, SUPERVISOR_ID, VAULT_DIR
from tclearn.identity import Identity
from tclearn.ledger.records import Proposal
from tclearn.ledger.sqlite_store import open_store
from tclearn.vault.journal import _head_bytes, read_journal
from tclearn.vault.storage import Vault

from level_b_scan import assert_no_plaintext, model_probes

pytestmark = pytest.mark.slow
runner = CliRunner()
SEED = 0


@pytest.fixture(scope="module")
def run_b(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("demo-b")
    (out / MODEL_FILE).write_bytes(b"an earlier level-A run's model")  # must not pass for this coalition's
    run = run_coalition(DemoOptions(task="digits", partners=3, rounds=3, seed=SEED, out=out, centralized=False,
                                    level="B"))
    return out, run


def _chain(out: Path) -> list:
    with open_store(out / "chain.db", read_only=True) as store:
        return list(store)


def _vault(out: Path) -> Vault:
    passphrase = (out / SECRETS_DIR / "vault.passphrase").read_bytes().strip()
    return Vault.open(out / VAULT_DIR, passphrase)


def test_level_b_runs_and_every_model_goes_through_the_journal(run_b: tuple[Path, object]) -> None:
    out, run = run_b
    assert run.chain_verified and len(run.blocks) == 3  # type: ignore[attr-defined]
    v = run.extra["vault"]  # type: ignore[attr-defined]
    assert v["level"] == "B" and v["refused"] == 0
    entries = read_journal(out / VAULT_DIR / "journal.jsonl")
    assert v["journal_entries"] == len(entries) > 0
    members = {"hospital-a", "hospital-b", "hospital-c"}
    chain = _chain(out)
    proposals = [Proposal.from_dict(b.payload["proposal"]) for b in chain if b.kind in ("increment", "rejected")]
    published = {(e.actor, e.object) for e in entries if e.action == "publish" and e.outcome == "granted"}
    for p in proposals:  # each candidate was published by its proposer, and its increment too
        assert (p.proposer, p.model_hash) in published and (p.proposer, p.increment_hash) in published
    used = {e.actor for e in entries if e.action == "use" and e.outcome == "granted"}
    assert used == members  # partners and validators fetched through the vault
    assert set(_vault(out).ids()) >= {b.model_hash for b in chain}
    config = chain[0].payload["config"]
    assert config["level"] == "B" and config["supervisor"] == SUPERVISOR_ID
    assert config["supervisor_key"] == Identity.from_seed(SUPERVISOR_ID, f"tclearn-demo-{SEED}".encode()).public_key


def test_no_model_or_increment_is_on_disk_in_the_clear(run_b: tuple[Path, object]) -> None:
    out, _ = run_b
    assert not (out / MODEL_FILE).exists()  # level A writes its final model; B keeps it in the vault
    vault = _vault(out)
    plain = [bytes(vault.get(i)[0]) for i in vault.ids() if vault.info(i).kind in ("model", "increment")]
    assert len(plain) >= 5
    # windows of each object's tensor bytes (past the safetensors header), and each whole header
    probes = model_probes(plain)
    assert len(probes) >= 4 * len(plain)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert sum("objects" in p.parts for p in files) >= len(plain)  # the vault's own files are scanned too
    assert_no_plaintext(files, probes)


def test_audit_verify_checks_the_journal_against_the_chain(run_b: tuple[Path, object]) -> None:
    out, run = run_b
    result = runner.invoke(app, ["audit", "verify", str(out / VAULT_DIR), "--chain", str(out / "chain.db")])
    assert result.exit_code == 0, result.output
    n = run.extra["vault"]["anchors_in_chain"]  # type: ignore[attr-defined]
    assert n == 3 and f"chain anchors ok: {n} journal heads" in result.output


def _copy_vault(out: Path, dest: Path) -> Path:
    shutil.copytree(out / VAULT_DIR, dest)
    return dest


def test_an_edited_journal_is_refused(run_b: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = run_b
    v = _copy_vault(out, tmp_path / "v")
    lines = (v / "journal.jsonl").read_text().splitlines()
    doc = json.loads(lines[5])
    doc["actor"] = "hospital-z"
    lines[5] = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    (v / "journal.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["audit", "verify", str(v), "--chain", str(out / "chain.db")])
    assert result.exit_code == 32 and "Traceback" not in result.output


def test_a_journal_rolled_back_and_re_signed_is_caught_by_the_chain_anchors(run_b: tuple[Path, object],
                                                                           tmp_path: Path) -> None:
    """The supervisor's key rolls the journal back past the last anchor and signs a new head: it verifies
    on its own, but not against the heads the proposers anchored in the chain."""
    out, _ = run_b
    v = _copy_vault(out, tmp_path / "v")
    last_anchor = max(int(Proposal.from_dict(b.payload["proposal"]).vault_head.partition(":")[0])
                      for b in _chain(out) if b.kind in ("increment", "rejected"))
    lines = (v / "journal.jsonl").read_text().splitlines()[:last_anchor]  # entries 0 … last_anchor − 1
    (v / "journal.jsonl").write_text("\n".join(lines) + "\n")
    last = json.loads(lines[-1])
    sup = Identity.from_seed(SUPERVISOR_ID, f"tclearn-demo-{SEED}".encode())
    sig = sup.sign(_head_bytes(last["seq"], last["hash"])).hex()
    (v / "journal.jsonl.head").write_text(json.dumps({"seq": last["seq"], "hash": last["hash"], "sig": sig}) + "\n")
    alone = runner.invoke(app, ["audit", "verify", str(v)])
    assert alone.exit_code == 0, alone.output  # a valid, shorter journal
    anchored = runner.invoke(app, ["audit", "verify", str(v), "--chain", str(out / "chain.db")])
    assert anchored.exit_code == 32 and "rolled back or cut" in anchored.output


def test_a_journal_re_signed_by_another_key_is_refused_against_genesis(run_b: tuple[Path, object],
                                                                       tmp_path: Path) -> None:
    out, _ = run_b
    v = _copy_vault(out, tmp_path / "v")
    (v / "supervisor.pub").write_text(Identity.from_seed("intruder", b"x").public_key.hex() + "\n")
    result = runner.invoke(app, ["audit", "verify", str(v), "--chain", str(out / "chain.db")])
    assert result.exit_code == 32  # the journal is not signed by that key either
    forged = runner.invoke(app, ["audit", "verify", str(out / VAULT_DIR), "--chain", str(out / "chain.db"),
                                 "--supervisor-pub", Identity.from_seed("intruder", b"x").public_key.hex()])
    assert forged.exit_code == 32 and "Traceback" not in forged.output


def test_a_level_a_chain_has_no_anchors_to_check(tmp_path: Path, run_b: tuple[Path, object]) -> None:
    out, _ = run_b
    a = tmp_path / "a"
    run_coalition(DemoOptions(task="digits", partners=3, rounds=1, seed=SEED, out=a, centralized=False))
    result = runner.invoke(app, ["audit", "verify", str(out / VAULT_DIR), "--chain", str(a / "chain.db")])
    assert result.exit_code == 39 and "no supervisor key" in result.output
    assert not (a / VAULT_DIR).exists()
