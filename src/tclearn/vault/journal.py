"""The audit journal: every vault request, granted or refused, hash-chained and signed.

Theory of operation. The journal is a JSON-lines file, one entry per line:
``seq, time_ms, prev, actor, action, object, outcome, reason, ref, detail``
plus ``hash`` and ``sig``. ``hash`` is the SHA-256 of a domain tag and the
canonical CBOR of the other fields (``prev`` is the previous entry's hash, so
the entries form a chain); ``sig`` is the supervisor's Ed25519 signature of
that hash. An edit breaks a hash or a signature, a deletion or a reordering
breaks ``seq``/``prev``. Cutting the tail would leave a valid shorter chain,
so a signed *head* (``journal.head``: last seq and hash) is rewritten
atomically after every append; `verify_journal` insists that the file reaches
the head. (A journal deleted with its head, or rolled back with an old head,
is only caught by anchoring the head elsewhere: the chain, a member's copy.)

``ref`` links related events across members (as NVFlare's audit ``ref``
does): an S/MIME request's nonce, a round, a download id.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from cryptography.exceptions import InvalidSignature

from tclearn.errors import EncodingError, SignatureError
from tclearn.identity import Identity, public_key_from_bytes, verify_signature
from tclearn.ledger.encoding import canonical_bytes, encode_map, map_layout, sha256_hex
from tclearn.vault.errors import IntegrityError, VaultError
from tclearn.fsutil import atomic_write

__all__ = ["Entry", "Journal", "check_anchors", "read_journal", "verify_journal", "who_held", "GENESIS_PREV", "OUTCOMES"]

GENESIS_PREV = "0" * 64
OUTCOMES = ("granted", "refused", "recorded")
FIELDS = ("seq", "time_ms", "prev", "actor", "action", "object", "outcome", "reason", "ref", "detail")
_TAG = b"tclearn-audit-entry/1\x00"
_HEAD_TAG = b"tclearn-audit-head/1\x00"
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    seq: int
    time_ms: int
    prev: str
    actor: str
    action: str
    object: str | None
    outcome: str
    reason: str
    ref: str
    detail: dict[str, Any]
    hash: str
    sig: str

    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in FIELDS}

    def to_json(self) -> dict[str, Any]:
        return {**self.fields(), "hash": self.hash, "sig": self.sig}


_LAYOUT = map_layout(FIELDS)


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the tag and the canonical CBOR of the fields (`encode_map`: the same bytes, faster)."""
    return sha256_hex(_TAG + encode_map(fields, _LAYOUT))


def _head_bytes(seq: int, digest: str) -> bytes:
    return _HEAD_TAG + canonical_bytes({"seq": seq, "hash": digest})


def _parse(line: bytes, n: int) -> Entry:
    try:
        doc = json.loads(line)
        if not isinstance(doc, dict) or set(doc) != set(FIELDS) | {"hash", "sig"}:
            raise ValueError("wrong fields")
        entry = Entry(**doc)
        if (type(entry.seq) is not int or type(entry.time_ms) is not int or entry.outcome not in OUTCOMES
                or not isinstance(entry.detail, dict)
                or not all(isinstance(getattr(entry, k), str) for k in ("prev", "actor", "action", "reason", "ref",
                                                                       "hash", "sig"))):
            raise ValueError("wrong field types")
        return entry
    except (ValueError, TypeError) as exc:
        raise IntegrityError(f"journal line {n + 1} is not a journal entry: {exc}") from None


def read_journal(path: Path) -> list[Entry]:
    """Parse every line (no signature checks: `verify_journal` does those)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [_parse(line, n) for n, line in enumerate(lines)]


def verify_journal(path: Path, supervisor_key: bytes) -> list[Entry]:
    """Check every hash, signature, link and the signed head; return the entries or raise IntegrityError."""
    path = Path(path)
    raw = path.read_bytes() if path.exists() else b""
    if raw and not raw.endswith(b"\n"):
        raise IntegrityError("journal ends with a partial line (cut, or a write interrupted)")
    entries = read_journal(path)
    try:
        key = public_key_from_bytes(supervisor_key)
    except SignatureError as exc:
        raise IntegrityError(f"not a supervisor key: {exc}") from None
    prev = GENESIS_PREV
    for n, e in enumerate(entries):
        if e.seq != n:
            raise IntegrityError(f"journal line {n + 1}: seq {e.seq}, expected {n} (an entry removed or moved)")
        if e.prev != prev:
            raise IntegrityError(f"journal entry {n}: does not follow entry {n - 1} (removed, moved or edited)")
        try:
            digest = entry_hash(e.fields())
        except EncodingError as exc:
            raise IntegrityError(f"journal entry {n}: {exc}") from None
        if digest != e.hash:
            raise IntegrityError(f"journal entry {n}: hash mismatch (the entry was edited)")
        try:
            key.verify(bytes.fromhex(e.sig), bytes.fromhex(digest))
        except (InvalidSignature, ValueError):
            raise IntegrityError(f"journal entry {n}: not signed by the supervisor") from None
        prev = digest
    head_path = path.with_name(path.name + ".head") if path.suffix != ".head" else path
    head = _read_head(head_path)
    if head is None:
        if entries:
            raise IntegrityError("journal head is missing: the journal cannot be shown complete")
        return entries
    seq, digest, sig = head
    try:
        verify_signature(supervisor_key, sig, _head_bytes(seq, digest))
    except SignatureError:
        raise IntegrityError("journal head is not signed by the supervisor") from None
    if seq >= len(entries) or entries[seq].hash != digest:
        raise IntegrityError(f"journal is cut: the signed head names entry {seq}, the file holds {len(entries)}")
    return entries


def check_anchors(entries: list[Entry], anchors: list[str]) -> None:
    """IntegrityError unless the journal holds each anchor ``SEQ:HASH`` (a head a member kept earlier).

    A supervisor (or an intruder with its key files) that rolls the journal and
    its head back together leaves a valid, shorter chain; an anchor taken from
    the head before (`GET /v1/vault/journal/head`, `tclearn audit head`) shows it.
    """
    for anchor in anchors:
        seq_text, _, digest = anchor.partition(":")
        if not seq_text.isdigit() or len(digest) != 64:
            raise VaultError(f"an anchor is SEQ:HASH (from `tclearn audit head`), got {anchor!r}")
        seq = int(seq_text)
        if seq >= len(entries):
            raise IntegrityError(f"journal rolled back or cut: anchor entry {seq} is missing "
                                 f"(the journal holds {len(entries)})")
        if entries[seq].hash != digest:
            raise IntegrityError(f"journal rewritten: entry {seq} differs from the anchor")


def _read_head(path: Path) -> tuple[int, str, bytes] | None:
    try:
        doc = json.loads(path.read_text())
        return int(doc["seq"]), str(doc["hash"]), bytes.fromhex(doc["sig"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise IntegrityError(f"journal head {path} is damaged") from None


def who_held(entries: list[Entry], version: str, before_ms: int | None = None) -> list[dict[str, Any]]:
    """Members granted a use or download of `version` (before `before_ms`): first and last time, counts."""
    held: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.object != version or e.outcome != "granted" or e.action not in ("use", "download", "publish"):
            continue
        if before_ms is not None and e.time_ms >= before_ms:
            continue
        row = held.setdefault(e.actor, {"member": e.actor, "first_ms": e.time_ms, "last_ms": e.time_ms,
                                        "actions": {}, "refs": []})
        row["last_ms"] = e.time_ms
        row["actions"][e.action] = row["actions"].get(e.action, 0) + 1
        if e.ref:
            row["refs"].append(e.ref)
    return sorted(held.values(), key=lambda r: (r["first_ms"], r["member"]))


class Journal:
    """Append-only, signed journal of one vault (thread-safe; one writer process, enforced by flock)."""

    def __init__(self, path: Path, supervisor: Identity, clock_ms: Callable[[], int], fsync: bool = True) -> None:
        self.path = Path(path)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._supervisor = supervisor
        self._clock_ms = clock_ms
        self._fsync = fsync
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise VaultError(f"{self.path} is open in another process (one supervisor per vault)") from None
        self.entries = verify_journal(self.path, supervisor.public_key) if self._has_content() else []

    def _has_content(self) -> bool:
        return self.path.stat().st_size > 0 or self.head_path.exists()

    @property
    def signer_id(self) -> str:
        """The supervisor whose key signs this journal."""
        return self._supervisor.member_id

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self.entries))

    def append(self, actor: str, action: str, obj: str | None, outcome: str, reason: str = "",
               ref: str = "", detail: dict[str, Any] | None = None) -> Entry:
        return self.append_many([(actor, action, obj, outcome, reason, ref, detail)])[0]

    def append_many(self, rows: list[tuple[str, str, str | None, str, str, str, dict[str, Any] | None]]
                    ) -> list[Entry]:
        """Append entries (actor, action, object, outcome, reason, ref, detail) with one write and one head."""
        with self._lock:
            made: list[Entry] = []
            lines = []
            prev = self.entries[-1] if self.entries else None
            for actor, action, obj, outcome, reason, ref, detail in rows:
                if outcome not in OUTCOMES:
                    raise VaultError(f"journal outcome must be one of {OUTCOMES}")
                fields = {"seq": len(self.entries) + len(made),
                          "time_ms": max(int(self._clock_ms()), prev.time_ms if prev else 0),
                          "prev": prev.hash if prev else GENESIS_PREV, "actor": actor, "action": action,
                          "object": obj, "outcome": outcome, "reason": reason, "ref": ref, "detail": dict(detail or {})}
                digest = entry_hash(fields)
                prev = Entry(**fields, hash=digest, sig=self._supervisor.sign(bytes.fromhex(digest)).hex())
                line = (json.dumps(prev.to_json(), separators=(",", ":"), sort_keys=True) + "\n").encode()
                if len(line) > MAX_LINE_BYTES:
                    raise VaultError("journal entry too large")
                made.append(prev)
                lines.append(line)
            if not made:
                return made
            view = memoryview(b"".join(lines))
            while view:
                view = view[os.write(self._fd, view):]
            if self._fsync:
                os.fsync(self._fd)
            self._write_head(made[-1])
            self.entries.extend(made)
            return made

    def _write_head(self, entry: Entry) -> None:
        sig = self._supervisor.sign(_head_bytes(entry.seq, entry.hash))
        doc = json.dumps({"seq": entry.seq, "hash": entry.hash, "sig": sig.hex()}) + "\n"
        if self._fsync:
            atomic_write(self.head_path, doc.encode(), owner_only=True)
        else:  # benchmarks build large journals: same rename, no fsync
            tmp = self.head_path.with_name(self.head_path.name + ".tmp")
            tmp.write_text(doc)
            os.replace(tmp, self.head_path)
