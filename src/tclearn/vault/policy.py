"""The vault's access policy: who may do what with which model version (pure).

Theory of operation. A policy is a small JSON document, readable and
diffable, that the supervisor edits and installs with `tclearn vault policy
set`; each installation is a signed journal entry holding the whole document,
so the policy in force at any time is the last one installed before it
(`policy_at`). `decide` is a pure function of the policy, the request and
what the journal says the member already consumed.

Actions (Substra separates the right to *process* a model from the right to
*download* it; we do the same):

- ``use``: fetch a version to validate or train on it inside the coalition;
- ``download``: take a version out of the coalition (offline exchange);
- ``publish``: store a new model or increment in the vault.

A member's rights are the union of its roles' actions (on every version) and
of its per-version grants (``version`` a hash or ``"*"``, with an optional
``until_ms``). A revoked member may do nothing. A quota caps the number of
granted requests of an action per member: ``base + per_strength × S_i``
(rounded down), S_i the member's strength on the chain, so access follows
the level of contribution (paper §2.2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tclearn.identity import check_member_id
from tclearn.errors import IdentityError
from tclearn.ledger.encoding import canonical_bytes, sha256_hex
from tclearn.vault.errors import VaultError

__all__ = ["ACTIONS", "POLICY_FORMAT", "Decision", "check_policy", "decide", "policy_at", "policy_hash",
           "quota_for", "default_policy", "load_policy_text"]

ACTIONS = ("use", "download", "publish")
POLICY_FORMAT = "tclearn-vault-policy/1"
POLICY_ACTION = "policy.set"  # the journal action that installs a policy
MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str


def _fail(msg: str) -> None:
    raise VaultError(f"invalid policy: {msg}")


def _actions(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or any(a not in ACTIONS for a in value):
        _fail(f"{where} must be a list of {', '.join(ACTIONS)}")
    return list(value)


def check_policy(doc: Any) -> dict[str, Any]:
    """Validate a policy document; return it unchanged or raise VaultError naming the problem."""
    if not isinstance(doc, dict):
        _fail("not a JSON object")
    unknown = set(doc) - {"format", "roles", "members", "grants", "quotas", "comment"}
    if unknown:
        _fail(f"unknown keys {sorted(unknown)}")
    if doc.get("format") != POLICY_FORMAT:
        _fail(f"format must be {POLICY_FORMAT!r}")
    roles = doc.get("roles", {})
    if not isinstance(roles, dict):
        _fail("roles must map a role name to a list of actions")
    for name, acts in roles.items():
        _actions(acts, f"roles.{name}")
    members = doc.get("members", {})
    if not isinstance(members, dict):
        _fail("members must map a member id to {roles, revoked}")
    for mid, spec in members.items():
        try:
            check_member_id(mid)
        except IdentityError as exc:
            _fail(str(exc))
        if not isinstance(spec, dict) or set(spec) - {"roles", "revoked", "revoked_at_ms", "comment"}:
            _fail(f"members.{mid} must be an object with roles and optionally revoked")
        for r in spec.get("roles", []):
            if r not in roles:
                _fail(f"members.{mid} has role {r!r}, which roles does not define")
        if not isinstance(spec.get("revoked", False), bool):
            _fail(f"members.{mid}.revoked must be true or false")
    grants = doc.get("grants", [])
    if not isinstance(grants, list):
        _fail("grants must be a list")
    for n, g in enumerate(grants):
        if not isinstance(g, dict) or set(g) - {"member", "version", "actions", "until_ms", "comment"}:
            _fail(f"grants[{n}] must have member, version, actions and optionally until_ms")
        if g.get("member") not in members:
            _fail(f"grants[{n}] names {g.get('member')!r}, not a member")
        v = g.get("version")
        if not (v == "*" or (isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v))):
            _fail(f"grants[{n}].version must be a 64-hex model hash or '*'")
        _actions(g.get("actions"), f"grants[{n}].actions")
        if "until_ms" in g and type(g["until_ms"]) is not int:
            _fail(f"grants[{n}].until_ms must be an integer (ms since the epoch)")
    quotas = doc.get("quotas", {})
    if not isinstance(quotas, dict):
        _fail("quotas must map an action to {base, per_strength}")
    for act, q in quotas.items():
        if act not in ACTIONS or not isinstance(q, dict) or set(q) - {"base", "per_strength"}:
            _fail(f"quotas.{act} must be an action mapped to {{base, per_strength}}")
        for k in ("base", "per_strength"):
            if not isinstance(q.get(k, 0), (int, float)) or isinstance(q.get(k, 0), bool) or q.get(k, 0) < 0:
                _fail(f"quotas.{act}.{k} must be a number >= 0")
    canonical_bytes(doc)  # storable in the journal (no NaN, str keys only)
    return doc


def load_policy_text(text: str) -> dict[str, Any]:
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise VaultError("policy file too large")
    try:
        return check_policy(json.loads(text))
    except json.JSONDecodeError as exc:
        raise VaultError(f"policy is not JSON: {exc}") from None


def policy_hash(doc: dict[str, Any]) -> str:
    return sha256_hex(b"tclearn-vault-policy\x00" + canonical_bytes(doc))


def default_policy(members: list[str]) -> dict[str, Any]:
    """Every member a partner (use and publish); downloads only by grant."""
    return {"format": POLICY_FORMAT,
            "roles": {"partner": ["use", "publish"], "validator": ["use"], "exporter": ["use", "download"]},
            "members": {m: {"roles": ["partner"]} for m in members},
            "grants": [],
            "quotas": {"download": {"base": 1, "per_strength": 4}}}


def quota_for(policy: dict[str, Any], action: str, strength: float) -> int | None:
    q = policy.get("quotas", {}).get(action)
    if q is None:
        return None
    return int(math.floor(q.get("base", 0) + q.get("per_strength", 0) * strength + 1e-9))


def decide(policy: dict[str, Any], member: str, action: str, version: str, now_ms: int,
           strength: float, used: int) -> Decision:
    """Whether `member` may `action` `version` now; `used`: its granted requests of `action` so far."""
    if action not in ACTIONS:
        return Decision(False, f"unknown action {action!r}")
    spec = policy.get("members", {}).get(member)
    if spec is None:
        return Decision(False, f"{member} is not a member under the policy in force")
    if spec.get("revoked"):
        return Decision(False, f"{member} is revoked")
    via = [r for r in spec.get("roles", []) if action in policy["roles"].get(r, [])]
    if not via:
        for g in policy.get("grants", []):
            if (g["member"] == member and action in g["actions"] and g["version"] in ("*", version)
                    and now_ms < g.get("until_ms", now_ms + 1)):
                via.append(f"grant on {g['version'][:12]}")
                break
    if not via:
        return Decision(False, f"{member} has no right to {action} version {version[:12]}")
    limit = quota_for(policy, action, strength)
    if limit is not None and used >= limit:
        return Decision(False, f"{member} used its {action} quota ({used} of {limit} at strength {strength:.3f})")
    return Decision(True, f"{action} by {via[0]}")


def policy_at(entries: list[Any], time_ms: int | None = None) -> dict[str, Any] | None:
    """The policy in force at `time_ms` (default: now), rebuilt from the journal's policy entries."""
    found = None
    for e in entries:
        if e.action == POLICY_ACTION and e.outcome == "recorded" and (time_ms is None or e.time_ms <= time_ms):
            found = e.detail.get("policy")
    return found
