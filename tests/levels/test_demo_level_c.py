"""`tclearn demo --level C`: watermarked copies for every partner and validator, a clean shared model, leaks traced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.demo.vault_models import MERGE_ACTION, SECRETS_DIR, VAULT_DIR
from tclearn.learning.serialize import apply_increment, model_hash, state_from_bytes, state_to_bytes
from tclearn.ledger.records import Proposal
from tclearn.ledger.sqlite_store import open_store
from tclearn.vault.journal import read_journal
from tclearn.vault.storage import Vault
from tclearn.watermark import WATERMARK_ACTION, Tracer, embed

pytestmark = pytest.mark.slow
runner = CliRunner()
MEMBERS = {"hospital-a", "hospital-b", "hospital-c"}


@pytest.fixture(scope="module")
def run_c(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("demo-c")
    run = run_coalition(DemoOptions(task="digits", partners=3, rounds=3, seed=0, out=out, centralized=False,
                                    level="C"))
    return out, run


def _vault(out: Path) -> Vault:
    return Vault.open(out / VAULT_DIR, (out / SECRETS_DIR / "vault.passphrase").read_bytes().strip())


def _chain(out: Path) -> list:
    with open_store(out / "chain.db", read_only=True) as store:
        return list(store)


def test_every_partner_and_validator_works_on_its_own_watermarked_copy(run_c: tuple[Path, object]) -> None:
    out, run = run_c
    assert run.chain_verified and len(run.blocks) == 3  # type: ignore[attr-defined]
    entries = read_journal(out / VAULT_DIR / "journal.jsonl")
    marks = [e for e in entries if e.action == WATERMARK_ACTION]
    assert {e.detail["holder"] for e in marks} == MEMBERS
    assert all(e.detail["action"] == "use" for e in marks)
    assert len({e.detail["key_id"] for e in marks}) == len(marks)  # one key per copy
    uses = [e for e in entries if e.action == "use" and e.outcome == "granted"]
    assert len(uses) == len(marks)  # no clean fetch by a member: every read was a marked copy
    assert run.extra["vault"]["watermarked_copies"] == {  # type: ignore[attr-defined]
        m: sum(e.detail["holder"] == m for e in marks) for m in MEMBERS}
    result = runner.invoke(app, ["audit", "verify", str(out / VAULT_DIR), "--chain", str(out / "chain.db")])
    assert result.exit_code == 0, result.output


def test_the_shared_model_is_the_clean_parent_plus_the_published_increments(run_c: tuple[Path, object]) -> None:
    """Each accepted block's model is exactly its clean parent + the increment its proposer published (computed
    against the proposer's marked copy): no mark term enters; no copy handed out is a chain model."""
    out, _ = run_c
    vault = _vault(out)
    entries = read_journal(out / VAULT_DIR / "journal.jsonl")
    merges = {e.object: e.detail for e in entries if e.action == MERGE_ACTION}
    chain = _chain(out)
    head = chain[0].model_hash
    for block in chain[1:]:
        if block.kind != "increment":
            continue
        p = Proposal.from_dict(block.payload["proposal"])
        assert p.parent_model_hash == head and merges[p.model_hash]["parent"] == head
        assert merges[p.model_hash]["increment"] == p.increment_hash
        parent = state_from_bytes(bytes(vault.get(head)[0]))
        inc = state_from_bytes(bytes(vault.get(p.increment_hash)[0]))
        assert model_hash(apply_increment(parent, inc)) == p.model_hash == block.model_hash
        head = block.model_hash
    copies = {e.detail["copy_hash"] for e in entries if e.action == WATERMARK_ACTION}
    assert not copies & {b.model_hash for b in chain}
    tracer = Tracer.from_vault(vault, entries)
    report = tracer.trace(state_from_bytes(bytes(vault.get(head)[0])))
    assert not report.accused and tracer.n_keys == len(copies)


def test_a_leaked_partner_copy_is_traced_to_its_member(run_c: tuple[Path, object], tmp_path: Path) -> None:
    out, _ = run_c
    vault = _vault(out)
    entries = read_journal(out / VAULT_DIR / "journal.jsonl")
    mark = next(e for e in entries if e.action == WATERMARK_ACTION and e.detail["holder"] == "hospital-b")
    key = json.loads(bytes(vault.get(mark.detail["key_id"])[0]))["key"]
    copy = embed(state_from_bytes(bytes(vault.get(str(mark.object))[0])), bytes.fromhex(key), mark.detail["alpha"])
    assert model_hash(copy) == mark.detail["copy_hash"]  # the very copy hospital-b was handed during the run
    gen = torch.Generator().manual_seed(1)
    leaked = {}
    for name, t in copy.items():  # the leaker perturbs it: noise, then 30 % magnitude pruning
        t = t + 0.05 * t.std() * torch.randn(t.shape, generator=gen) if t.numel() > 1 else t
        if t.ndim >= 2:
            cut = t.abs().flatten().kthvalue(max(1, int(0.3 * t.numel()))).values
            t = torch.where(t.abs() <= cut, torch.zeros_like(t), t)
        leaked[name] = t.contiguous()
    suspect = tmp_path / "leak.safetensors"
    suspect.write_bytes(state_to_bytes(leaked))
    result = runner.invoke(app, ["trace", str(suspect), "--vault", str(out / VAULT_DIR), "--passphrase-file",
                                 str(out / SECRETS_DIR / "vault.passphrase")])
    assert result.exit_code == 0, result.output
    accused = [line for line in result.output.splitlines() if line.startswith("ACCUSED")]
    assert len(accused) == 1 and "hospital-b" in accused[0] and mark.detail["key_id"][:16] in accused[0]
