"""The supervisor: every request decided by the policy in force, journaled, then served; refusals change nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tclearn.identity import Identity
from tclearn.vault.errors import AccessDenied, IntegrityError, VaultError
from tclearn.vault.journal import verify_journal, who_held
from tclearn.vault.policy import policy_at
from tclearn.vault.supervisor import POLICY_FILE, Supervisor

from vault_helpers import PASS, Clock


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in (root / "objects").rglob("*") if p.is_file()}


def test_members_publish_and_use_through_the_vault(sup: Supervisor) -> None:
    info = sup.publish("h1", b"model v1", "model", {"height": 1}, ref="round-1")
    data, meta = sup.fetch("h2", info.object_id, "use", ref="round-1")
    assert data == b"model v1" and meta.meta == {"height": 1}
    last = sup.journal.entries[-1]
    assert (last.actor, last.action, last.object, last.outcome, last.ref) == ("h2", "use", info.object_id,
                                                                             "granted", "round-1")


def test_refusals_are_journaled_and_change_nothing(sup: Supervisor) -> None:
    v = sup.publish("h1", b"model v1", "model").object_id
    before, n = _snapshot(sup.root), len(sup.journal.entries)
    with pytest.raises(AccessDenied, match="no right to download"):
        sup.fetch("h2", v, "download", ref="leak?")  # partners may use, not download
    with pytest.raises(AccessDenied):
        sup.fetch("mallory", v, "use")
    with pytest.raises(AccessDenied):
        sup.fetch("h2", "ee" * 32, "use")  # no such version
    assert _snapshot(sup.root) == before
    refused = sup.journal.entries[n:]
    assert [(e.actor, e.outcome) for e in refused] == [("h2", "refused"), ("mallory", "refused"), ("h2", "refused")]
    assert refused[0].ref == "leak?"


def test_revocation_and_grants_are_journaled_policy_changes(sup: Supervisor, clock: Clock) -> None:
    v = sup.publish("h1", b"model v1", "model").object_id
    t_before = clock.ms
    clock.ms += 60_000
    doc: dict[str, Any] = copy.deepcopy(sup.policy)
    doc["members"]["h2"]["revoked"] = True
    doc["grants"].append({"member": "h3", "version": v, "actions": ["download"]})
    sup.set_policy(doc, by="supervisor", reason="h2 left; h3 may export v1")
    assert json.loads((sup.root / POLICY_FILE).read_text()) == doc  # the readable file is the policy in force
    with pytest.raises(AccessDenied, match="revoked"):
        sup.fetch("h2", v, "use")
    assert sup.fetch("h3", v, "download")[0] == b"model v1"
    # the policy in force at any time is rebuilt from the journal
    assert not policy_at(sup.journal.entries, t_before)["members"]["h2"].get("revoked")
    assert policy_at(sup.journal.entries, clock.ms)["members"]["h2"]["revoked"] is True
    with pytest.raises(VaultError):
        sup.set_policy({"format": "nope"}, by="supervisor")
    assert sup.policy == doc


def test_download_quota_follows_strength(sup: Supervisor) -> None:
    v = sup.publish("h1", b"model v1", "model").object_id
    doc = copy.deepcopy(sup.policy)
    doc["grants"].append({"member": "h1", "version": "*", "actions": ["download"]})
    doc["grants"].append({"member": "h2", "version": "*", "actions": ["download"]})
    sup.set_policy(doc, by="supervisor")  # download quota: 1 + 4 S
    sup.strengths = {"h1": 0.6, "h2": 0.2}  # h1: 3 downloads, h2: 1
    for _ in range(3):
        sup.fetch("h1", v, "download")
    sup.fetch("h2", v, "download")
    for member in ("h1", "h2"):
        with pytest.raises(AccessDenied, match="quota"):
            sup.fetch(member, v, "download")


def test_quota_use_survives_reopening(sup: Supervisor, supervisor_id: Identity, clock: Clock) -> None:
    v = sup.publish("h1", b"m", "model").object_id
    doc = copy.deepcopy(sup.policy)
    doc["grants"].append({"member": "h2", "version": v, "actions": ["download"]})
    sup.set_policy(doc, by="supervisor")
    sup.fetch("h2", v, "download")
    sup.close()
    again = Supervisor.open(sup.root, PASS, supervisor_id, clock)
    assert again.used("h2", "download") == 1
    again.close()


def test_a_tampered_object_is_refused_and_journaled(sup: Supervisor) -> None:
    v = sup.publish("h1", b"model v1" * 100, "model").object_id
    path = sup.vault.path_of(v)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        sup.fetch("h2", v, "use")
    assert sup.journal.entries[-1].outcome == "refused" and "altered" in sup.journal.entries[-1].reason


def test_the_vault_opens_only_for_its_supervisor(sup: Supervisor, clock: Clock) -> None:
    sup.close()
    with pytest.raises(VaultError, match="supervisor key"):
        Supervisor.open(sup.root, PASS, Identity.generate("supervisor"), clock)


def test_who_held_answers_from_the_signed_journal(sup: Supervisor, clock: Clock, supervisor_id: Identity) -> None:
    v = sup.publish("h1", b"m", "model").object_id
    clock.ms += 1000
    sup.fetch("h2", v, "use")
    leak = clock.ms + 500
    clock.ms += 1000
    sup.fetch("h3", v, "use")
    entries = verify_journal(sup.journal.path, supervisor_id.public_key)
    assert [r["member"] for r in who_held(entries, v, leak)] == ["h1", "h2"]
