"""Models through the supervisor's vault in the one-process demo: levels B and C.

At level A the demo keeps its models in one public, content-addressed store.
At levels B and C the model is private to the coalition (paper §2.2, §2.3):
every model and increment lives only in the supervisor's encrypted vault
(`tclearn.vault`: AES-256-GCM at rest, one wrapped data key per object), and
each member reaches it through its own `ModelStore` view, so the demo's
partners (`PartnerTrainer`) and validators (`Evaluator`) run unchanged:

- a read is a *use* fetch (`Supervisor.fetch`): the policy decides, the
  audit journal records the grant or refusal before a byte leaves;
- a write is a *publish* (`Supervisor.publish`), journaled the same way; the
  proposer then records the journal head (``SEQ:HASH``) in its signed
  proposal (`Proposal.vault_head`), so the chain anchors the journal;
- at level C every read is a uniquely watermarked copy
  (`tclearn.watermark.download_watermarked`, its key stored in the vault and
  its handing-out journaled); a partner's increment is computed against the
  copy it was given, published, and merged by the supervisor into the clean
  model (`tclearn.watermark.clean_candidate`): the candidate the committee
  judges and the chain names is clean, marks never reach the shared model.

G at level C. The chain's rules that read G scores off the quality votes (a
strict majority of identical G scores, the stopping rule, the learning-rate
policy, the G floor) rest on every honest validator scoring the same bytes.
Marked copies break that: each validator's G scores differ a little, no
majority forms, and the coalition never sees itself converge (measured:
140 blocks instead of 31 on digits, seed 0). So at level C the G scores are
the clean models' (`CleanGScores`, computed once per model by the
supervisor, who holds the clean versions; G is the coalition's public test
set), while each validator scores its private L, and each partner trains, on
its own marked copy. The price: the committee's G check is then no longer an
independent recomputation by each validator; it rests on the supervisor, as
custody of the clean model does at level C anyway.

Where plaintext exists (honestly): only in this process's memory — a
member's decrypted copy in its view's cache (at most `CACHE_VERSIONS`
versions, until evicted or the run ends), the tensors while a partner trains
or a validator evaluates, and a candidate's bytes between training and
publishing. Nothing is written to disk in the clear: the run folder holds the
vault (encrypted objects, journal of hashes), the chains (hashes) and the
report. Python does not wipe freed memory, and a swapped page could reach
disk; the demo does nothing about either.

Demo only: the supervisor's key, the vault passphrase and the watermark keys
are derived from the seed (as the members' keys are), so a run is repeatable;
the passphrase and key are written to ``<out>/supervisor/`` (mode 0600) so
that `tclearn trace` and `tclearn vault get` can open the run's vault. A real
supervisor keeps them to itself.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, Callable

from tclearn.data.dataset import Dataset
from tclearn.identity import Identity
from tclearn.learning.evaluator import Evaluator
from tclearn.learning.tasks import Task
from tclearn.learning.errors import ModelNotFoundError
from tclearn.learning.model_store import ModelStore, check_model_hash
from tclearn.learning.serialize import (State, apply_increment, increment_hash, model_hash, state_from_bytes,
                                        state_to_bytes)
from tclearn.vault.errors import ObjectNotFound
from tclearn.vault.policy import default_policy
from tclearn.fsutil import atomic_write
from tclearn.vault.supervisor import Supervisor
from tclearn.watermark.custody import download_watermarked
from tclearn.watermark.fingerprint import DEFAULT_ALPHA

__all__ = ["CleanGScores", "DemoVault", "VaultModelStore", "WatermarkedModelStore", "SupervisorModelStore",
           "SUPERVISOR_ID",
           "VAULT_DIR", "SECRETS_DIR", "CACHE_VERSIONS", "MERGE_ACTION"]

SUPERVISOR_ID = "supervisor"
VAULT_DIR = "vault"
SECRETS_DIR = "supervisor"  # demo only: the supervisor's key and the vault passphrase (see the module docstring)
CACHE_VERSIONS = 4  # decrypted versions a member keeps in memory (the head, a candidate or two)
MERGE_ACTION = "merge"  # journal action: the supervisor applied a member's increment to the clean model


class _Cached(ModelStore):
    """Shared by the views: an in-memory LRU of decrypted states (a member's working memory)."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._states: OrderedDict[str, State] = OrderedDict()
        # how long each decrypted copy stays in this member's memory (wall seconds, for the report)
        self._since: dict[str, float] = {}
        self.held_s: list[float] = []

    def has(self, model_hash: str) -> bool:
        return self.sup.vault.has(check_model_hash(model_hash))

    def _remember(self, model_hash: str, state: State) -> State:
        self._states[model_hash] = state
        self._states.move_to_end(model_hash)
        self._since.setdefault(model_hash, time.monotonic())
        while len(self._states) > CACHE_VERSIONS:
            old, _ = self._states.popitem(last=False)
            self.held_s.append(time.monotonic() - self._since.pop(old))
        return state

    def plaintext_residence(self) -> tuple[list[float], int]:
        """(seconds each evicted copy was held, copies still held now)."""
        return list(self.held_s), len(self._states)

    def _cached(self, model_hash: str) -> State | None:
        state = self._states.get(check_model_hash(model_hash))
        if state is not None:
            self._states.move_to_end(model_hash)
        return state

    def get_state(self, model_hash: str) -> State:
        state = self._cached(model_hash)
        if state is None:
            state = self._remember(model_hash, state_from_bytes(self.get(model_hash), require_canonical=False))
        return state

    def journal_head(self) -> str:
        """SEQ:HASH of the journal's last entry (what a proposer anchors in its proposal)."""
        last = self.sup.journal.entries[-1]
        return f"{last.seq}:{last.hash}"

    def _read(self, model_hash: str) -> bytes:  # pragma: no cover - every view overrides get
        raise NotImplementedError


class VaultModelStore(_Cached):
    """One member's view of the vault at level B: reads are journaled *use* fetches, writes *publish*es."""

    def __init__(self, sup: Supervisor, member: str) -> None:
        super().__init__(sup)
        self.member = member

    def _read(self, model_hash: str) -> bytes:
        if not self.sup.vault.has(model_hash):
            raise ModelNotFoundError(f"model {model_hash} is not in the vault")
        try:
            data, _ = self.sup.fetch(self.member, model_hash, "use")
        except ObjectNotFound:
            raise ModelNotFoundError(f"model {model_hash} is not in the vault") from None
        return bytes(data)

    def _write(self, model_hash: str, data: bytes) -> None:
        self.sup.publish(self.member, data, "model", object_id=model_hash)

    def publish_candidate(self, parent_model_hash: str, given: State, candidate: State,
                          inc: State) -> tuple[str, str]:
        """Publish the increment and the candidate; return (candidate hash, journal head to anchor)."""
        self.sup.publish(self.member, state_to_bytes(inc), "increment", {"parent": parent_model_hash},
                         object_id=increment_hash(inc))
        cand_hash = self.put_state(candidate)
        self._remember(cand_hash, candidate)
        return cand_hash, self.journal_head()


class WatermarkedModelStore(VaultModelStore):
    """One member's view at level C: every version it reads is its own watermarked copy.

    `get_state` hands out a copy marked with a fresh (seeded) key through
    `download_watermarked` (action *use*); the member keeps that copy for
    training and validating the version. `publish_candidate` publishes the
    member's increment (trained − copy) and lets the supervisor apply it to
    the clean parent (`merge_increment`): the candidate is clean.
    """

    def __init__(self, sup: Supervisor, member: str, alpha: float, new_key: Callable[[int], bytes]) -> None:
        super().__init__(sup, member)
        self.alpha = alpha
        self.new_key = new_key
        self.copies: list[str] = []  # the download ids (key ids) of the copies this member received

    def get(self, model_hash: str) -> bytes:
        """The bytes of this member's marked copy (they do not hash to `model_hash`: the copy is marked)."""
        return state_to_bytes(self.get_state(model_hash))

    def get_state(self, model_hash: str) -> State:
        state = self._cached(model_hash)
        if state is not None:
            return state
        if not self.sup.vault.has(model_hash):
            raise ModelNotFoundError(f"model {model_hash} is not in the vault")
        data, receipt = download_watermarked(self.sup, self.member, model_hash, action="use", alpha=self.alpha,
                                             new_key=self.new_key)
        self.copies.append(receipt.download_id)
        return self._remember(model_hash, state_from_bytes(data, require_canonical=False))

    def publish_candidate(self, parent_model_hash: str, given: State, candidate: State,
                          inc: State) -> tuple[str, str]:
        inc_hash = increment_hash(inc)
        self.sup.publish(self.member, state_to_bytes(inc), "increment", {"parent": parent_model_hash},
                         object_id=inc_hash)
        cand_hash = merge_increment(self.sup, self.member, parent_model_hash, inc_hash)
        return cand_hash, self.journal_head()


def merge_increment(sup: Supervisor, member: str, parent_model_hash: str, inc_hash: str) -> str:
    """The supervisor applies a published increment to the clean parent and stores the clean candidate.

    The increment was computed against the member's marked copy, so it
    carries the member's change and none of the mark (`clean_candidate`).
    Journaled as a ``merge`` entry naming parent, increment and candidate.
    """
    parent, _ = sup.vault.get(parent_model_hash)
    inc, _ = sup.vault.get(inc_hash)
    candidate = apply_increment(state_from_bytes(bytes(parent)), state_from_bytes(bytes(inc)))
    data = state_to_bytes(candidate)
    cand_hash = model_hash(candidate)
    sup.vault.put(data, "model", {"parent": parent_model_hash, "increment": inc_hash, "by": member}, cand_hash)
    sup.journal.append(sup.journal.signer_id, MERGE_ACTION, cand_hash, "recorded",
                       f"increment of {member} applied to the clean parent", "",
                       {"member": member, "parent": parent_model_hash, "increment": inc_hash})
    return cand_hash


class SupervisorModelStore(_Cached):
    """The supervisor's own reads and writes (the initial model, the demo's reporting), journaled as such."""

    def _read(self, model_hash: str) -> bytes:
        try:
            data, _ = self.sup.get_local(model_hash)
        except ObjectNotFound:
            raise ModelNotFoundError(f"model {model_hash} is not in the vault") from None
        return bytes(data)

    def get(self, model_hash: str) -> bytes:
        state = self._cached(model_hash)
        return state_to_bytes(state) if state is not None else self._read(check_model_hash(model_hash))

    def _write(self, model_hash: str, data: bytes) -> None:
        self.sup.put_local(data, "model", {"by": SUPERVISOR_ID}, model_hash)


class CleanGScores(OrderedDict[str, tuple[float, ...]]):
    """Level C: the G scores of the clean models, computed by the supervisor (see the module docstring).

    Handed to every validator's `Evaluator` as its shared G scores: `get`
    scores a model it has not seen on the clean bytes, so no validator's G
    score depends on its mark.
    """

    def __init__(self, task: Task, supervisor_store: ModelStore, global_test: Dataset) -> None:
        super().__init__()
        self._clean = Evaluator(task, supervisor_store, global_test)

    def get(self, model_hash: str, default: Any = None) -> Any:
        found = super().get(model_hash)
        if found is None:
            found = self._clean.scores(model_hash)[0]
            self[model_hash] = found
        return found


class DemoVault:
    """The run's vault and supervisor, and one model view per member (level B, or C with watermarks)."""

    def __init__(self, out: Path, level: str, members: list[str], seed: int, start_ms: int,
                 alpha: float = DEFAULT_ALPHA) -> None:
        if level not in ("B", "C"):
            raise ValueError("a demo vault is for levels B and C")
        self.level, self.seed, self.alpha = level, seed, alpha
        self.root = Path(out) / VAULT_DIR
        secrets_dir = Path(out) / SECRETS_DIR
        for old in (self.root, secrets_dir):
            if old.exists():
                shutil.rmtree(old)  # a previous run's vault
        self.identity = Identity.from_seed(SUPERVISOR_ID, f"tclearn-demo-{seed}".encode())
        passphrase = f"tclearn-demo-vault-{seed}".encode()
        secrets_dir.mkdir(mode=0o700, parents=True)
        self.passphrase_file = secrets_dir / "vault.passphrase"
        atomic_write(self.passphrase_file, passphrase + b"\n", owner_only=True)
        self.clock = _FollowingClock(start_ms)
        self.sup = Supervisor.create(self.root, passphrase, self.identity, members, clock_ms=self.clock,
                                     policy=default_policy(members))
        self._views: dict[str, VaultModelStore] = {}
        self.supervisor_store = SupervisorModelStore(self.sup)
        self._clean_g: CleanGScores | None = None

    def genesis_fields(self) -> dict[str, Any]:
        """What genesis records of the supervisor at this level."""
        return {"supervisor": SUPERVISOR_ID, "supervisor_key": self.identity.public_key}

    def g_scores(self, task: Task, global_test: Dataset,
                 shared: OrderedDict[str, tuple[float, ...]]) -> OrderedDict[str, tuple[float, ...]]:
        """The G scores validators share: at level C the clean models' (`CleanGScores`), else `shared`."""
        if self.level != "C":
            return shared
        if self._clean_g is None:
            self._clean_g = CleanGScores(task, self.supervisor_store, global_test)
        return self._clean_g

    def member_store(self, member: str) -> VaultModelStore:
        if member not in self._views:
            if self.level == "C":
                rng = random.Random(f"tclearn-demo-watermark-{self.seed}-{member}")
                self._views[member] = WatermarkedModelStore(self.sup, member, self.alpha, rng.randbytes)
            else:
                self._views[member] = VaultModelStore(self.sup, member)
        return self._views[member]

    def follow_clock(self, now_ms: Callable[[], int]) -> None:
        """Time the journal by the simulation's virtual clock (repeatable runs)."""
        self.clock.source = now_ms

    def summary(self) -> dict[str, Any]:
        entries = self.sup.journal.entries
        outcomes = Counter(e.outcome for e in entries)
        actions = Counter(e.action for e in entries)
        files = [p for p in self.root.rglob("*") if p.is_file()]
        journal = self.root / "journal.jsonl"
        out: dict[str, Any] = {
            "level": self.level, "path": str(self.root), "objects": len(self.sup.vault.ids()),
            "object_kinds": dict(Counter(self.sup.vault.info(i).kind for i in self.sup.vault.ids())),
            "bytes_on_disk": sum(p.stat().st_size for p in files),
            "journal_entries": len(entries), "journal_bytes": journal.stat().st_size if journal.exists() else 0,
            "journal_head": f"{entries[-1].seq}:{entries[-1].hash}" if entries else "",
            "granted": outcomes.get("granted", 0), "refused": outcomes.get("refused", 0),
            "recorded": outcomes.get("recorded", 0), "actions": dict(sorted(actions.items())),
            "supervisor_key": self.identity.public_key.hex(), "passphrase_file": str(self.passphrase_file),
        }
        held: list[float] = []
        still = 0
        for view in [*self._views.values(), self.supervisor_store]:
            h, n = view.plaintext_residence()
            held += h
            still += n
        out["plaintext_in_memory"] = {
            "copies_evicted": len(held), "held_s_mean": sum(held) / len(held) if held else 0.0,
            "held_s_max": max(held, default=0.0), "held_at_end": still, "per_member_cache": CACHE_VERSIONS}
        if self.level == "C":
            out["watermarked_copies"] = {m: len(v.copies) for m, v in self._views.items()
                                         if isinstance(v, WatermarkedModelStore)}
            out["watermark_alpha"] = self.alpha
        return out

    def close(self) -> None:
        self.sup.close()


class _FollowingClock:
    """Milliseconds for the journal: `start_ms` until `source` (the simulation's virtual clock) is set.

    Journal entries are hashed with their time and their hashes are anchored
    in proposals, so a wall clock would make the chain differ run to run.
    """

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.source: Callable[[], int] | None = None

    def __call__(self) -> int:
        return self.start_ms if self.source is None else max(self.start_ms, int(self.source()))
