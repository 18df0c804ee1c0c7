"""The supervisor: the vault, its policy and its journal composed into one gatekeeper.

Every request goes through `authorize`: the policy in force decides, the
journal records the decision (granted or refused) *before* any byte leaves
or enters the vault, and a refusal raises `AccessDenied`. Nothing here reads
the clock or the chain on its own: the time and the members' strengths are
handed in.

Folder of a vault: ``kek.json`` (the wrapped key-encryption key),
``objects/`` (encrypted objects), ``journal.jsonl`` and its signed head,
``policy.json`` (the policy in force, readable; the journal is the record),
``supervisor.pub`` (the Ed25519 key that signs the journal).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from tclearn.identity import Identity
from tclearn.vault.errors import AccessDenied, ObjectNotFound, VaultError
from tclearn.vault.journal import Entry, Journal
from tclearn.vault.policy import POLICY_ACTION, check_policy, decide, default_policy, policy_at, policy_hash
from tclearn.fsutil import atomic_write
from tclearn.vault.storage import DEFAULT_SCRYPT_N, ObjectInfo, Vault

__all__ = ["Supervisor", "JOURNAL_FILE", "POLICY_FILE", "SUPERVISOR_PUB", "wall_clock_ms"]

JOURNAL_FILE = "journal.jsonl"
POLICY_FILE = "policy.json"
SUPERVISOR_PUB = "supervisor.pub"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class Supervisor:
    """One vault's gatekeeper. Open it with the vault passphrase and the supervisor's identity."""

    def __init__(self, vault: Vault, journal: Journal, clock_ms: Callable[[], int],
                 strengths: dict[str, float] | None = None) -> None:
        self.vault = vault
        self.journal = journal
        self.clock_ms = clock_ms
        self.strengths = dict(strengths or {})
        self._used: Counter[tuple[str, str]] = Counter(
            (e.actor, e.action) for e in journal.entries if e.outcome == "granted")
        if self.policy is None:
            raise VaultError("the journal installs no policy: not a vault made by `tclearn vault init`")

    @classmethod
    def create(cls, root: Path, passphrase: bytes, supervisor: Identity, members: list[str],
               clock_ms: Callable[[], int] = wall_clock_ms, scrypt_n: int = DEFAULT_SCRYPT_N,
               policy: dict[str, Any] | None = None) -> "Supervisor":
        root = Path(root)
        vault = Vault.create(root, passphrase, scrypt_n)
        (root / SUPERVISOR_PUB).write_text(supervisor.public_key.hex() + "\n")
        journal = Journal(root / JOURNAL_FILE, supervisor, clock_ms)
        doc = check_policy(policy or default_policy(members))
        _install(root, journal, doc, supervisor.member_id, "vault created")
        return cls(vault, journal, clock_ms)

    @classmethod
    def open(cls, root: Path, passphrase: bytes, supervisor: Identity, clock_ms: Callable[[], int] = wall_clock_ms,
             strengths: dict[str, float] | None = None, fsync: bool = True) -> "Supervisor":
        root = Path(root)
        vault = Vault.open(root, passphrase)
        pub = (root / SUPERVISOR_PUB).read_text().strip()
        if pub != supervisor.public_key.hex():
            raise VaultError(f"{supervisor.member_id}'s key is not this vault's supervisor key ({root / SUPERVISOR_PUB})")
        return cls(vault, Journal(root / JOURNAL_FILE, supervisor, clock_ms, fsync=fsync), clock_ms, strengths)

    def close(self) -> None:
        self.journal.close()

    @property
    def root(self) -> Path:
        return self.vault.root

    @property
    def policy(self) -> dict[str, Any]:
        return policy_at(self.journal.entries)  # type: ignore[return-value]

    def set_policy(self, doc: dict[str, Any], by: str, reason: str = "") -> Entry:
        """Install a new policy: validated, journaled (signed), then written as policy.json."""
        return _install(self.root, self.journal, check_policy(doc), by, reason)

    def strength(self, member: str) -> float:
        if member in self.strengths:
            return self.strengths[member]
        active = [m for m, s in self.policy.get("members", {}).items() if not s.get("revoked")]
        return 1.0 / len(active) if active else 0.0

    def used(self, member: str, action: str) -> int:
        return self._used[(member, action)]

    def refuse(self, actor: str, action: str, obj: str | None, reason: str, ref: str = "",
               detail: dict[str, Any] | None = None) -> Entry:
        """Journal a refusal decided before the policy was asked (a bad certificate, a replay)."""
        return self.journal.append(actor, action, obj, "refused", reason, ref, detail)

    def authorize(self, member: str, action: str, version: str, ref: str = "",
                  detail: dict[str, Any] | None = None, must_exist: bool = True) -> Entry:
        """Ask the policy in force; journal the answer; raise AccessDenied on a refusal."""
        if must_exist and not self.vault.has(version):
            self.refuse(member, action, version, "no such object in the vault", ref, detail)
            raise AccessDenied(f"the vault holds no version {version[:16]}…")
        decision = decide(self.policy, member, action, version, self.clock_ms(), self.strength(member),
                          self.used(member, action))
        if not decision.granted:
            self.refuse(member, action, version, decision.reason, ref, detail)
            raise AccessDenied(decision.reason)
        entry = self.journal.append(member, action, version, "granted", decision.reason, ref, detail)
        self._used[(member, action)] += 1
        return entry

    def fetch(self, member: str, version: str, action: str = "use", ref: str = "",
              detail: dict[str, Any] | None = None) -> tuple[bytes, ObjectInfo]:
        """A model for `member` to use (validate, train) or download, if the policy allows it."""
        if action not in ("use", "download"):
            raise VaultError("fetch is for use or download")
        self.authorize(member, action, version, ref, detail)
        try:
            return self.vault.get(version)
        except VaultError as exc:  # granted but unreadable: the journal says so too
            self.journal.append(member, action, version, "refused", f"vault: {exc}", ref, detail)
            raise

    def publish(self, member: str, data: bytes, kind: str, meta: dict[str, Any] | None = None,
                object_id: str | None = None, ref: str = "") -> ObjectInfo:
        from tclearn.ledger.encoding import sha256_hex

        oid = object_id or sha256_hex(data)
        self.authorize(member, "publish", oid, ref, {"kind": kind, "size": len(data)}, must_exist=False)
        return self.vault.put(data, kind, meta, oid)

    def put_local(self, data: bytes, kind: str, meta: dict[str, Any] | None = None,
                  object_id: str | None = None) -> ObjectInfo:
        """The supervisor's own write (journaled as such; the policy governs members)."""
        info = self.vault.put(data, kind, meta, object_id)
        self.journal.append(self.journal.signer_id, "put", info.object_id, "recorded", f"supervisor stored a {kind}",
                            "", {"kind": kind, "size": len(data)})
        return info

    def get_local(self, version: str) -> tuple[bytes, ObjectInfo]:
        """The supervisor's own read (journaled as such)."""
        if not self.vault.has(version):
            raise ObjectNotFound(f"the vault holds no object {version}")
        self.journal.append(self.journal.signer_id, "read", version, "recorded", "supervisor read")
        return self.vault.get(version)


def _install(root: Path, journal: Journal, doc: dict[str, Any], by: str, reason: str) -> Entry:
    entry = journal.append(by, POLICY_ACTION, policy_hash(doc), "recorded", reason, "", {"policy": doc})
    atomic_write(root / POLICY_FILE, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return entry
