"""Watermarked downloads through the vault: the journal, the key's custody, tracing a leak, `tclearn trace`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import torch
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.data.split import CoalitionData
from tclearn.identity import Identity
from tclearn.learning.serialize import State, canonical_state, model_hash, state_from_bytes, state_to_bytes
from tclearn.learning.tasks import Task, get_task
from tclearn.learning.evaluate import torch_threads
from tclearn.learning.train import fit
from tclearn.vault.errors import AccessDenied
from tclearn.vault.journal import verify_journal
from tclearn.vault.policy import default_policy
from tclearn.vault.supervisor import JOURNAL_FILE, Supervisor
from tclearn.watermark import KEY_KIND, WATERMARK_ACTION, Tracer, clean_candidate, download_watermarked

PASS = b"watermark tests"
T0_MS = 1_790_000_000_000
MEMBERS = [f"h{i}" for i in range(8)]
runner = CliRunner()


def seeded_keys(tag: str) -> Callable[[int], bytes]:
    count = iter(range(10**6))
    return lambda n: hashlib.sha256(f"{tag}/{next(count)}".encode()).digest()[:n]


def train(task: Task, state: State, data: Any, epochs: int, seed: int) -> State:
    model = task.model_from_state(state)
    with torch_threads(1):  # one thread: several threads on a busy small machine are many times slower
        fit(task, model, data, replace(task.default_hyperparams, distill=0.0), torch.Generator().manual_seed(seed),
            epochs=epochs)
    return canonical_state(model.state_dict())


@pytest.fixture(scope="module")
def digits() -> tuple[Task, CoalitionData, State]:
    task = get_task("digits")
    data = task.coalition_data(2, seed=0)
    return task, data, train(task, task.initial_state(0), data.partners[0], 8, 0)


@pytest.fixture
def vault(tmp_path: Path, digits: tuple[Task, CoalitionData, State]) -> Iterator[tuple[Supervisor, str]]:
    policy = default_policy(MEMBERS)
    for m in MEMBERS[:-1]:  # the last member is a partner only: no download
        policy["members"][m] = {"roles": ["exporter"]}
    policy["quotas"] = {}
    sup = Supervisor.create(tmp_path / "vault", PASS, Identity.from_seed("supervisor", b"wm-tests"), MEMBERS,
                            lambda: T0_MS, scrypt_n=2**12, policy=policy)
    version = sup.put_local(state_to_bytes(digits[2]), "model").object_id
    yield sup, version
    sup.close()


def download_all(sup: Supervisor, version: str) -> dict[str, State]:
    keys = seeded_keys("dl")
    return {m: state_from_bytes(download_watermarked(sup, m, version, new_key=keys)[0]) for m in MEMBERS[:-1]}


def test_each_download_is_journaled_with_holder_key_id_and_time(vault: tuple[Supervisor, str]) -> None:
    sup, version = vault
    copies = download_all(sup, version)
    marks = [e for e in sup.journal.entries if e.action == WATERMARK_ACTION]
    grants = [e for e in sup.journal.entries if e.action == "download" and e.outcome == "granted"]
    assert [e.detail["holder"] for e in marks] == MEMBERS[:-1] and len(grants) == len(marks)
    hashes = {model_hash(s) for s in copies.values()}
    assert len(hashes) == len(copies) and version not in hashes  # unique copies, none of them the clean model
    for grant, mark in zip(grants, marks):
        assert grant.detail["watermark"] == mark.detail["key_id"] and mark.detail["grant_seq"] == grant.seq
        assert mark.object == version and mark.time_ms == T0_MS and mark.actor == "supervisor"
        assert mark.detail["copy_hash"] == model_hash(copies[mark.detail["holder"]])
        raw, info = sup.vault.get(mark.detail["key_id"])  # the secret: in the vault, encrypted at rest
        assert info.kind == KEY_KIND and json.loads(bytes(raw))["member"] == mark.detail["holder"]
        secret = json.loads(bytes(raw))["key"]
        assert secret.encode() not in sup.vault.path_of(mark.detail["key_id"]).read_bytes()
        assert secret not in (sup.root / JOURNAL_FILE).read_text()
    verify_journal(sup.root / JOURNAL_FILE, sup.journal._supervisor.public_key)


def test_a_refused_download_gets_no_copy_and_no_key(vault: tuple[Supervisor, str]) -> None:
    sup, version = vault
    before = set(sup.vault.ids())
    with pytest.raises(AccessDenied):
        download_watermarked(sup, MEMBERS[-1], version, new_key=seeded_keys("refused"))
    assert sup.journal.entries[-1].outcome == "refused" and sup.journal.entries[-1].actor == MEMBERS[-1]
    assert set(sup.vault.ids()) == before
    assert not [e for e in sup.journal.entries if e.action == WATERMARK_ACTION]


def test_a_leak_is_traced_after_fine_tuning_and_pruning(vault: tuple[Supervisor, str],
                                                        digits: tuple[Task, CoalitionData, State]) -> None:
    task, data, _ = digits
    sup, version = vault
    copies = download_all(sup, version)
    tracer = Tracer.from_vault(sup.vault, sup.journal.entries)
    leaked = train(task, copies["h3"], data.partners[1], 5, 7)  # fresh data the model never saw
    for name in ("conv2.weight", "fc1.weight", "fc2.weight"):  # then 50 % magnitude pruning
        t = leaked[name]
        leaked[name] = torch.where(t.abs() <= t.abs().median(), torch.zeros_like(t), t)
    report = tracer.trace(leaked)
    assert [s.member for s in report.accused] == ["h3"]
    top = report.accused[0]
    assert top.version == version and top.false_accusation < 1e-6 and top.score > report.threshold
    assert report.keys_tested == len(copies)


def test_an_independent_model_accuses_nobody(vault: tuple[Supervisor, str],
                                             digits: tuple[Task, CoalitionData, State]) -> None:
    task, data, clean = digits
    sup, version = vault
    download_all(sup, version)
    tracer = Tracer.from_vault(sup.vault, sup.journal.entries)
    never_ours = [train(task, task.initial_state(99), data.partners[1], 3, 1),  # trained elsewhere
                  clean,  # the clean shared model itself
                  train(task, clean, data.partners[1], 2, 2)]  # the clean model, fine-tuned
    for state in never_ours:
        assert tracer.trace(state).accused == ()
    other = get_task("digits", channels=(8, 16)).initial_state(0)  # another architecture: fits no version
    assert tracer.trace(other).versions_tested == 0 and tracer.trace(other).accused == ()


def test_two_members_averaging_their_copies_are_both_named(vault: tuple[Supervisor, str]) -> None:
    sup, version = vault
    copies = download_all(sup, version)
    blend = {k: (copies["h1"][k] + copies["h5"][k]) / 2 for k in copies["h1"]}
    named = {s.member for s in Tracer.from_vault(sup.vault, sup.journal.entries).trace(blend).accused}
    assert named == {"h1", "h5"}


def test_increments_against_the_copy_keep_the_shared_model_clean(vault: tuple[Supervisor, str],
                                                                digits: tuple[Task, CoalitionData, State]) -> None:
    task, data, clean = digits
    sup, version = vault
    copies = download_all(sup, version)
    trained = train(task, copies["h2"], data.partners[1], 1, 3)
    inc, candidate = clean_candidate(clean, copies["h2"], trained)
    tracer = Tracer.from_vault(sup.vault, sup.journal.entries)
    assert tracer.trace(candidate).accused == ()  # the merged model carries nobody's mark
    assert tracer.trace(trained).accused[0].member == "h2"  # the member's own model still does


def test_trace_cli_names_the_holder_and_refuses_a_wrong_passphrase(tmp_path: Path, vault: tuple[Supervisor, str],
                                                                   digits: tuple[Task, CoalitionData, State]) -> None:
    sup, version = vault
    copies = download_all(sup, version)
    leak, innocent, pw, bad = (tmp_path / n for n in ("leak.safetensors", "own.safetensors", "pw", "bad"))
    leak.write_bytes(state_to_bytes(copies["h4"]))
    innocent.write_bytes(state_to_bytes(digits[0].initial_state(5)))
    pw.write_bytes(PASS + b"\n")
    bad.write_text("wrong\n")
    root = str(sup.root)
    res = runner.invoke(app, ["trace", str(leak), "--vault", root, "--passphrase-file", str(pw)])
    assert res.exit_code == 0, res.output
    assert "ACCUSED h4" in res.output and version in res.output
    res = runner.invoke(app, ["trace", str(innocent), "--vault", root, "--passphrase-file", str(pw), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["accused"] == []
    res = runner.invoke(app, ["trace", str(leak), "--vault", root, "--passphrase-file", str(bad)])
    assert res.exit_code == 34, res.output


def test_a_partner_using_the_model_gets_a_marked_copy_too(vault: tuple[Supervisor, str]) -> None:
    """Level C: a copy handed out for use (training, validation) is marked and journaled like a download."""
    sup, version = vault
    data, receipt = download_watermarked(sup, MEMBERS[-1], version, action="use", new_key=seeded_keys("use"))
    grant = sup.journal.entries[receipt.grant_seq]
    mark = sup.journal.entries[receipt.watermark_seq]
    assert (grant.action, grant.outcome, grant.actor) == ("use", "granted", MEMBERS[-1])
    assert mark.detail["action"] == "use" and mark.detail["holder"] == MEMBERS[-1]
    report = Tracer.from_vault(sup.vault, sup.journal.entries).trace(state_from_bytes(data))
    assert [(s.member, s.download_id) for s in report.accused] == [(MEMBERS[-1], receipt.download_id)]
