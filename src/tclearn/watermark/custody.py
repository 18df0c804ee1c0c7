"""Watermarked downloads through the vault, and tracing a leaked model back to its download.

`download_watermarked` is the level-C path of a model leaving the vault: the
policy decides and the journal records the grant (as for any fetch, with the
key's id in the entry), the clean version is read, a fresh key marks the
copy, the key is stored *encrypted in the vault* as an object of kind
``watermark-key`` (object id = the key's public id), and a signed journal
entry (action ``watermark``) names the holder, the version, the key id and
the copy's hash before the bytes are returned. The supervisor reads the
secrets back with the vault passphrase; the journal itself never holds one.

The mark is applied to the copy only, after validation: the shared model and
the increments the committee judges stay clean. A member trains on its copy
and publishes ``trained − copy`` (`tclearn.learning.serialize.increment`
against the copy it was given); the coalition adds that to the clean model,
so marks never pile up (`clean_candidate`).

`Tracer` holds, for each version with watermarked downloads, the clean model
and the downloads' keys, and scores a suspect against all of them: every key
at or above `fingerprint.threshold_for(K, p)` is accused (K keys tested in
all), with the Hoeffding bound on a false accusation.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from tclearn.learning.errors import InvalidModelError
from tclearn.learning.serialize import State, apply_increment, increment, model_hash, state_from_bytes, state_to_bytes
from tclearn.vault.errors import VaultError
from tclearn.vault.journal import Entry
from tclearn.vault.storage import Vault
from tclearn.vault.supervisor import Supervisor
from tclearn.watermark.fingerprint import (
    DEFAULT_ALPHA, DEFAULT_FALSE_ACCUSATION, KEY_BYTES, SCHEME, Detector, embed, false_accusation_bound, key_id,
    threshold_for,
)

__all__ = ["WATERMARK_ACTION", "KEY_KIND", "Receipt", "Suspicion", "TraceReport", "Tracer", "clean_candidate",
           "download_watermarked", "watermark_entries"]

WATERMARK_ACTION = "watermark"
KEY_KIND = "watermark-key"
_KEY_FORMAT = "tclearn-watermark-key/1"
RANKING_SIZE = 5


@dataclass(frozen=True)
class Receipt:
    """What the journal records of one watermarked download (no secret)."""

    download_id: str  # = the key's public id
    member: str
    version: str
    copy_hash: str
    alpha: float
    grant_seq: int
    watermark_seq: int
    time_ms: int


def download_watermarked(sup: Supervisor, member: str, version: str, *, action: str = "download",
                         alpha: float = DEFAULT_ALPHA, ref: str = "",
                         new_key: Callable[[int], bytes] = secrets.token_bytes) -> tuple[bytes, Receipt]:
    """A uniquely marked copy of model `version` for `member`, if the policy grants `action` (use or download).

    Raises AccessDenied (journaled) on a refusal, VaultError if the object is not a model.
    `new_key` draws the secret (pass a seeded one in tests and benchmarks).
    """
    if action not in ("use", "download"):
        raise VaultError("a watermarked copy is for use or download")
    key = new_key(KEY_BYTES)
    kid = key_id(key)
    ref = ref or kid
    grant = sup.authorize(member, action, version, ref, {"watermark": kid})
    try:
        data, _ = sup.vault.get(version)
        marked = embed(state_from_bytes(bytes(data)), key, alpha)
    except (VaultError, InvalidModelError, ValueError) as exc:
        sup.journal.append(member, action, version, "refused", f"watermark: {exc}", ref, {"watermark": kid})
        raise VaultError(f"cannot watermark {version[:16]}…: {exc}") from None
    out = state_to_bytes(marked)
    copy_hash = model_hash(marked)
    doc = {"format": _KEY_FORMAT, "scheme": SCHEME, "key": key.hex(), "alpha": alpha, "member": member,
           "version": version}
    sup.vault.put(json.dumps(doc, sort_keys=True).encode(), KEY_KIND, {"member": member, "version": version}, kid)
    entry = sup.journal.append(sup.journal.signer_id, WATERMARK_ACTION, version, "recorded",
                               f"watermarked copy for {member}", ref,
                               {"holder": member, "key_id": kid, "copy_hash": copy_hash, "alpha": alpha,
                                "scheme": SCHEME, "grant_seq": grant.seq, "action": action})
    return out, Receipt(kid, member, version, copy_hash, alpha, grant.seq, entry.seq, entry.time_ms)


def clean_candidate(clean: Mapping[str, torch.Tensor], given_copy: Mapping[str, torch.Tensor],
                    trained: Mapping[str, torch.Tensor]) -> tuple[State, State]:
    """(increment, candidate): the member's change to the copy it was given, applied to the clean model."""
    inc = increment(trained, given_copy)
    return inc, apply_increment(clean, inc)


def watermark_entries(entries: Sequence[Entry]) -> list[Entry]:
    """The journal's watermarked downloads, in order."""
    return [e for e in entries if e.action == WATERMARK_ACTION and e.outcome == "recorded"
            and isinstance(e.detail.get("key_id"), str)]


@dataclass(frozen=True)
class Suspicion:
    member: str
    version: str
    download_id: str
    time_ms: int
    journal_seq: int
    score: float
    false_accusation: float  # bound on an innocent key scoring this high, among all keys tested


@dataclass(frozen=True)
class TraceReport:
    accused: tuple[Suspicion, ...]
    best: Suspicion | None
    keys_tested: int
    versions_tested: int
    threshold: float
    p_false: float
    ranking: tuple[Suspicion, ...] = field(default=())  # the best-scoring downloads, accused or not


    def to_json(self) -> dict[str, Any]:
        return {"accused": [asdict(s) for s in self.accused], "best": asdict(self.best) if self.best else None,
                "keys_tested": self.keys_tested, "versions_tested": self.versions_tested,
                "threshold": self.threshold, "p_false": self.p_false, "ranking": [asdict(s) for s in self.ranking]}


class Tracer:
    """Every watermarked download of a vault, ready to score suspects (build once, trace many)."""

    def __init__(self, groups: dict[str, tuple[Detector, list[Entry]]]) -> None:
        self._groups = groups
        self.n_keys = sum(d.n_keys for d, _ in groups.values())

    @classmethod
    def from_vault(cls, vault: Vault, entries: Sequence[Entry]) -> "Tracer":
        """Read the clean versions and the keys (the vault must be unlocked); `entries`: the verified journal."""
        by_version: dict[str, list[Entry]] = {}
        for e in watermark_entries(entries):
            by_version.setdefault(str(e.object), []).append(e)
        groups: dict[str, tuple[Detector, list[Entry]]] = {}
        for version, rows in by_version.items():
            data, _ = vault.get(version)
            keys = []
            for e in rows:
                raw, info = vault.get(e.detail["key_id"])
                doc = json.loads(bytes(raw))
                if info.kind != KEY_KIND or doc.get("format") != _KEY_FORMAT or doc.get("scheme") != SCHEME:
                    raise VaultError(f"object {e.detail['key_id'][:16]}… is not a {SCHEME} watermark key")
                key = bytes.fromhex(doc["key"])
                if key_id(key) != e.detail["key_id"]:
                    raise VaultError(f"watermark key {e.detail['key_id'][:16]}… does not match its id")
                keys.append(key)
            groups[version] = (Detector(state_from_bytes(bytes(data)), keys), rows)
        return cls(groups)

    def trace(self, suspect: Mapping[str, torch.Tensor], p_false: float = DEFAULT_FALSE_ACCUSATION,
              ranking: int = RANKING_SIZE) -> TraceReport:
        """Score `suspect` against every download of every version it fits; accuse keys above the threshold."""
        k = max(self.n_keys, 1)
        limit = threshold_for(k, p_false)
        found: list[Suspicion] = []
        tested = 0
        for version, (det, rows) in self._groups.items():
            if not det.fits(suspect):
                continue
            tested += 1
            for e, z in zip(rows, det.scores(suspect)):
                found.append(Suspicion(e.detail["holder"], version, e.detail["key_id"], e.time_ms, e.seq, float(z),
                                       false_accusation_bound(float(z), k)))
        found.sort(key=lambda s: -s.score)
        accused = tuple(s for s in found if s.score >= limit)
        return TraceReport(accused, found[0] if found else None, self.n_keys, tested, limit, p_false,
                           tuple(found[:ranking]))
