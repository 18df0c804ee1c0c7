"""Audit journal: hash-chained, signed, with a signed head; edits, deletions, reordering and cuts detected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tclearn.identity import Identity
from tclearn.vault.errors import IntegrityError, VaultError
from tclearn.vault.journal import Journal, verify_journal, who_held

from vault_helpers import Clock

V = "c3" * 32


@pytest.fixture
def journal(tmp_path: Path, supervisor_id: Identity, clock: Clock) -> Journal:
    j = Journal(tmp_path / "journal.jsonl", supervisor_id, clock, fsync=False)
    for i, (who, action, outcome) in enumerate([("h1", "publish", "granted"), ("h2", "use", "granted"),
                                                ("h3", "download", "refused"), ("h3", "use", "granted"),
                                                ("h2", "download", "granted")]):
        clock.ms += 1000
        j.append(who, action, V, outcome, "because", f"ref-{i}", {"n": i})
    yield j
    j.close()


def _lines(j: Journal) -> list[bytes]:
    return j.path.read_bytes().splitlines(keepends=True)


def test_a_clean_journal_verifies(journal: Journal, supervisor_id: Identity) -> None:
    entries = verify_journal(journal.path, supervisor_id.public_key)
    assert [e.seq for e in entries] == list(range(5)) and entries[2].outcome == "refused"
    assert entries[1].ref == "ref-1" and entries[1].detail == {"n": 1}


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "truncate", "cut_line", "forge_key", "no_head"])
def test_tampering_is_detected(journal: Journal, supervisor_id: Identity, attack: str) -> None:
    lines = _lines(journal)
    if attack == "edit":
        lines[2] = lines[2].replace(b'"refused"', b'"granted"')
    elif attack == "delete":
        del lines[2]
    elif attack == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    elif attack == "truncate":
        lines = lines[:3]
    elif attack == "cut_line":
        lines[-1] = lines[-1][:40]
    elif attack == "forge_key":  # a whole journal re-signed by someone else
        forger = Journal(journal.path.with_name("forged.jsonl"), Identity.generate("supervisor"), lambda: 1)
        forger.append("h2", "use", V, "granted")
        forger.close()
        journal.path.write_bytes(forger.path.read_bytes())
        journal.head_path.write_bytes(forger.head_path.read_bytes())
        lines = _lines(journal)
    else:
        journal.head_path.unlink()
    journal.path.write_bytes(b"".join(lines))
    with pytest.raises(IntegrityError):
        verify_journal(journal.path, supervisor_id.public_key)


def test_an_edit_that_recomputes_the_hash_still_fails_the_signature(journal: Journal, supervisor_id: Identity) -> None:
    from tclearn.vault.journal import entry_hash

    lines = _lines(journal)
    doc = json.loads(lines[-1])
    doc["actor"] = "h1"
    doc["hash"] = entry_hash({k: doc[k] for k in doc if k not in ("hash", "sig")})
    lines[-1] = (json.dumps(doc) + "\n").encode()
    journal.path.write_bytes(b"".join(lines))
    with pytest.raises(IntegrityError, match="signed"):
        verify_journal(journal.path, supervisor_id.public_key)


def test_entries_after_the_head_are_accepted_when_signed(journal: Journal, supervisor_id: Identity) -> None:
    """A supervisor killed between an append and the head's rewrite leaves a valid, longer journal."""
    old_head = journal.head_path.read_bytes()
    journal.append("h1", "use", V, "granted")
    journal.head_path.write_bytes(old_head)
    assert len(verify_journal(journal.path, supervisor_id.public_key)) == 6


def test_reopening_continues_the_chain(journal: Journal, supervisor_id: Identity, clock: Clock) -> None:
    journal.close()
    again = Journal(journal.path, supervisor_id, clock)
    again.append("h1", "use", V, "granted")
    assert len(verify_journal(journal.path, supervisor_id.public_key)) == 6
    with pytest.raises(VaultError):  # one writer at a time
        Journal(journal.path, supervisor_id, clock)
    again.close()


def test_who_held_a_version_before_a_time(journal: Journal) -> None:
    rows = who_held(journal.entries, V)
    assert [r["member"] for r in rows] == ["h1", "h2", "h3"]  # h3's refused download does not count
    assert rows[1]["actions"] == {"use": 1, "download": 1} and rows[1]["refs"] == ["ref-1", "ref-4"]
    before = journal.entries[3].time_ms  # h3 used it at entry 3
    assert [r["member"] for r in who_held(journal.entries, V, before)] == ["h1", "h2"]
    assert who_held(journal.entries, "d4" * 32) == []
