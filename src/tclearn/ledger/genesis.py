"""Genesis: what block 0 fixes for the life of the chain, read from TOML.

A readable config file (see `examples/coalition.toml`) is validated field by
field; every error names the field. The genesis payload is the normalised
config, so any node can rebuild the coalition's rules from block 0 alone.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tclearn.errors import ConfigError, IdentityError
from tclearn.identity import Identity, check_member_id
from tclearn.ledger.block import EMPTY_ROOT, ZERO_HASH, Block
from tclearn.ledger.hyperparams import OPTIMIZERS, hyperparams_problem  # noqa: F401 (OPTIMIZERS: re-exported)
from tclearn.ledger.policies import LearningRatePolicy, StoppingRule
from tclearn.ledger.records import check_hash
from tclearn.quality import DEFAULT_MAX_DROP
from tclearn.errors import EncodingError

__all__ = ["GenesisConfig", "MemberInfo", "load_config", "parse_config", "build_genesis", "LEVELS", "MAX_TURN_PERIOD",
           "turn_weights_problem"]

LEVELS = ("A", "B", "C")
# consensus.turn_weights sum to at most this: the turn schedule's period, computed once per member set
MAX_TURN_PERIOD = 10_000


def turn_weights_problem(weights: Any, member_ids: list[str]) -> str | None:
    """Why `weights` cannot be a genesis's consensus.turn_weights for these members (None: it can).

    Every founding member is named, once, with a positive integer weight: its share of the proposer turns
    (see `tclearn.consensus.committee.proposer_of`); the weights are relative (24 and 48 are 1 and 2) and sum to
    at most MAX_TURN_PERIOD.
    """
    if not isinstance(weights, Mapping):
        return f"consensus.turn_weights must be a table of member = weight, got {type(weights).__name__}"
    for mid, w in weights.items():
        if mid not in member_ids:
            return f"consensus.turn_weights names {mid!r}, not a member"
        if isinstance(w, bool) or not isinstance(w, int) or w < 1:
            return f"consensus.turn_weights.{mid} must be a positive integer, got {w!r}"
    missing = [m for m in member_ids if m not in weights]
    if missing:
        return f"consensus.turn_weights must name every member; missing {', '.join(missing)}"
    if sum(weights.values()) > MAX_TURN_PERIOD:
        return (f"consensus.turn_weights sum to {sum(weights.values())}, more than {MAX_TURN_PERIOD}: "
                "they are relative, scale them down")
    return None


@dataclass(frozen=True)
class MemberInfo:
    member_id: str
    public_key: bytes
    cert_fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.member_id, "public_key": self.public_key, "cert_fingerprint": self.cert_fingerprint}


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise ConfigError(f"missing section [{name}]")
    return value


def _get(section: Mapping[str, Any], where: str, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    if key not in section:
        if default is ...:
            raise ConfigError(f"missing field {where}.{key}")
        return default
    value = section[key]
    if isinstance(value, bool) and kind is not bool and (kind is int or kind == (int, float)):
        raise ConfigError(f"field {where}.{key} must be {kind}, got a boolean")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"field {where}.{key} must be {names}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class GenesisConfig:
    """Everything genesis fixes (DESIGN.md §1 "Genesis")."""

    coalition_id: str
    level: str
    members: tuple[MemberInfo, ...]
    task: str
    architecture: str
    model_config: dict[str, Any]
    model_seed: int
    hyperparams: dict[str, Any]
    lam: float
    committee_size: int
    test_set_hash: str
    supervisor: str | None = None
    founder: str = ""
    revert_authorized: tuple[str, ...] = ()
    # the quality rule's hard floor (tclearn.quality); None: the default, and
    # nothing recorded, so chains from before the key existed keep their hash
    max_drop: float | None = None
    # when the coalition has converged, and the adaptive learning-rate policy (opt-in);
    # None: nothing recorded (older chains keep their hash)
    stopping: StoppingRule | None = None
    adaptive_lr: LearningRatePolicy | None = None
    # levels B/C: the Ed25519 key that signs the supervisor's audit journal, so members can check the journal
    # against the heads anchored in proposals (`tclearn audit verify --chain`); None: nothing recorded
    supervisor_key: bytes | None = None
    # each founding member's share of the proposer turns (members take turns in proportion, a smooth weighted
    # round robin: `tclearn.consensus.committee.proposer_of`); None: equal turns, and nothing recorded
    turn_weights: dict[str, int] | None = None

    @property
    def floor(self) -> float:
        """The quality rule's `max_drop` this chain uses."""
        return DEFAULT_MAX_DROP if self.max_drop is None else float(self.max_drop)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ConfigError(f"coalition.level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.level in ("B", "C") and not self.supervisor:
            raise ConfigError("levels B and C need coalition.supervisor")
        if self.supervisor_key is not None and (not isinstance(self.supervisor_key, bytes)
                                                or len(self.supervisor_key) != 32):
            raise ConfigError("coalition.supervisor_key must be a 32-byte Ed25519 public key (64 hex characters)")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError("consensus.lambda must lie in [0, 1]")
        if self.max_drop is not None and not 0.0 <= self.max_drop <= 1.0:
            raise ConfigError("consensus.max_drop must lie in [0, 1]")
        ids = [m.member_id for m in self.members]
        if len(ids) < 2:
            raise ConfigError("a coalition needs at least 2 members")
        if len(set(ids)) != len(ids):
            raise ConfigError("member ids must be unique")
        if not 1 <= self.committee_size <= len(ids) - 1:
            raise ConfigError(f"consensus.committee_size must lie in [1, {len(ids) - 1}] (members minus proposer)")
        if self.founder and self.founder not in ids:
            raise ConfigError(f"coalition.founder {self.founder!r} is not a member")
        for m in self.revert_authorized:
            if m not in ids:
                raise ConfigError(f"consensus.revert_authorized names {m!r}, not a member")
        try:
            check_hash(self.test_set_hash, "test_set.hash")
        except EncodingError as exc:
            raise ConfigError(str(exc)) from None
        problem = hyperparams_problem(self.hyperparams, prefix="hyperparams.", complete=True)
        if problem:
            raise ConfigError(problem)
        if self.turn_weights is not None:
            problem = turn_weights_problem(self.turn_weights, ids)
            if problem:
                raise ConfigError(problem)

    @property
    def founder_id(self) -> str:
        return self.founder or self.members[0].member_id

    def to_payload(self) -> dict[str, Any]:
        return {
            "coalition_id": self.coalition_id,
            "level": self.level,
            "members": [m.to_dict() for m in self.members],
            "model": {
                "task": self.task,
                "architecture": self.architecture,
                "config": dict(self.model_config),
                "seed": self.model_seed,
            },
            "hyperparams": dict(self.hyperparams),
            "consensus": {
                "lambda": float(self.lam),
                "committee_size": self.committee_size,
                "revert_authorized": list(self.revert_authorized),
                **({} if self.max_drop is None else {"max_drop": float(self.max_drop)}),
                **({} if self.stopping is None else {"stopping": self.stopping.to_dict()}),
                **({} if self.turn_weights is None else {"turn_weights": dict(self.turn_weights)}),
            },
            **({} if self.adaptive_lr is None else {"adaptive_lr": self.adaptive_lr.to_dict()}),
            "test_set_hash": self.test_set_hash,
            "supervisor": self.supervisor,
            **({} if self.supervisor_key is None else {"supervisor_key": self.supervisor_key}),
            "founder": self.founder_id,
        }

    @classmethod
    def from_payload(cls, p: Mapping[str, Any]) -> "GenesisConfig":
        try:
            members = tuple(
                MemberInfo(m["id"], bytes(m["public_key"]), m.get("cert_fingerprint", "")) for m in p["members"]
            )
            return cls(
                coalition_id=p["coalition_id"],
                level=p["level"],
                members=members,
                task=p["model"]["task"],
                architecture=p["model"]["architecture"],
                model_config=dict(p["model"]["config"]),
                model_seed=p["model"]["seed"],
                hyperparams=dict(p["hyperparams"]),
                lam=p["consensus"]["lambda"],
                committee_size=p["consensus"]["committee_size"],
                revert_authorized=tuple(p["consensus"]["revert_authorized"]),
                max_drop=p["consensus"].get("max_drop"),
                stopping=(None if p["consensus"].get("stopping") is None
                          else StoppingRule.from_dict(p["consensus"]["stopping"])),
                adaptive_lr=None if p.get("adaptive_lr") is None else LearningRatePolicy.from_dict(p["adaptive_lr"]),
                test_set_hash=p["test_set_hash"],
                supervisor=p["supervisor"],
                supervisor_key=None if p.get("supervisor_key") is None else bytes(p["supervisor_key"]),
                founder=p["founder"],
                turn_weights=(None if p["consensus"].get("turn_weights") is None
                              else _turn_weights(p["consensus"]["turn_weights"])),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"genesis payload is incomplete: {exc}") from None


def parse_config(
    data: Mapping[str, Any],
    *,
    public_keys: Mapping[str, bytes] | None = None,
    model_hash_free: bool = True,
) -> tuple[GenesisConfig, list[str]]:
    """Validate a config mapping. Returns the config and the ids of members without a public key.

    Members without `public_key` get the placeholder b"" and are listed, so
    `tclearn init` can generate their keys and fill them in.
    """
    coalition = _section(data, "coalition")
    model = _section(data, "model")
    hp = _section(data, "hyperparams")
    cons = _section(data, "consensus")
    raw_members = data.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise ConfigError("missing [[members]] entries")
    members = []
    missing_keys = []
    public_keys = public_keys or {}
    for i, m in enumerate(raw_members):
        if not isinstance(m, Mapping):
            raise ConfigError(f"members[{i}] must be a table")
        mid = _get(m, f"members[{i}]", "id", str)
        try:
            check_member_id(mid)
        except IdentityError as exc:
            raise ConfigError(f"members[{i}].id: {exc}") from None
        key_hex = _get(m, f"members[{i}]", "public_key", str, "")
        if mid in public_keys:
            key = public_keys[mid]
        elif key_hex:
            try:
                key = bytes.fromhex(key_hex)
            except ValueError:
                raise ConfigError(f"members[{i}].public_key is not hex") from None
            if len(key) != 32:
                raise ConfigError(f"members[{i}].public_key must be 32 bytes (64 hex characters)")
        else:
            key = b""
            missing_keys.append(mid)
        members.append(MemberInfo(mid, key, _get(m, f"members[{i}]", "cert_fingerprint", str, "")))
    hyper = {
        "learning_rate": float(_get(hp, "hyperparams", "learning_rate", (int, float))),
        "optimizer": _get(hp, "hyperparams", "optimizer", str),
        "epochs": _get(hp, "hyperparams", "epochs", int),
        "min_batch_size": _get(hp, "hyperparams", "min_batch_size", int),
    }
    problem = hyperparams_problem(hyper, prefix="hyperparams.", complete=True)
    if problem:
        raise ConfigError(problem)
    test_set = data.get("test_set", {})
    if not isinstance(test_set, Mapping):
        raise ConfigError("[test_set] must be a table")
    config = GenesisConfig(
        coalition_id=_get(coalition, "coalition", "id", str),
        level=_get(coalition, "coalition", "level", str, "A"),
        supervisor=_get(coalition, "coalition", "supervisor", str, None),
        supervisor_key=_hex_key(coalition, "coalition", "supervisor_key"),
        founder=_get(coalition, "coalition", "founder", str, ""),
        members=tuple(members),
        task=_get(model, "model", "task", str),
        architecture=_get(model, "model", "architecture", str, ""),
        model_config=dict(_get(model, "model", "config", Mapping, {})),
        model_seed=_get(model, "model", "seed", int, 0),
        hyperparams=hyper,
        lam=float(_get(cons, "consensus", "lambda", (int, float))),
        committee_size=_get(cons, "consensus", "committee_size", int),
        revert_authorized=tuple(_get(cons, "consensus", "revert_authorized", list, [])),
        max_drop=_optional_float(cons, "consensus", "max_drop"),
        stopping=_stopping(cons),
        turn_weights=None if cons.get("turn_weights") is None else _turn_weights(cons["turn_weights"]),
        adaptive_lr=_adaptive_lr(data),
        test_set_hash=_get(test_set, "test_set", "hash", str, "0" * 64),
    )
    return config, missing_keys


def _hex_key(section: Mapping[str, Any], where: str, key: str) -> bytes | None:
    text = _get(section, where, key, str, "")
    if not text:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{where}.{key} is not hex") from None


def _stopping(cons: Mapping[str, Any]) -> StoppingRule | None:
    patience = _get(cons, "consensus", "stop_patience", int, None)
    if patience is None:
        if "stop_min_delta" in cons:
            raise ConfigError("consensus.stop_min_delta needs consensus.stop_patience")
        return None
    return StoppingRule(patience=patience, min_delta=float(_get(cons, "consensus", "stop_min_delta", (int, float), 0.0)))


def _turn_weights(table: Any) -> dict[str, int]:
    """A plain dict of consensus.turn_weights (checked against the members by `GenesisConfig`)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"consensus.turn_weights must be a table of member = weight, got {type(table).__name__}")
    if not all(isinstance(k, str) for k in table):
        raise ConfigError("consensus.turn_weights must be keyed by member ids (strings)")
    return dict(table)


def _adaptive_lr(data: Mapping[str, Any]) -> LearningRatePolicy | None:
    table = data.get("adaptive_lr")
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise ConfigError("[adaptive_lr] must be a table")
    return LearningRatePolicy.from_dict(table)


def _optional_float(table: Mapping[str, Any], section: str, key: str) -> float | None:
    value = _get(table, section, key, (int, float), None)
    return None if value is None else float(value)


def load_config(path: Path, what: str = "config file") -> dict[str, Any]:
    """The TOML table in `path`; every way of failing is one ConfigError naming `what` and the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def build_genesis(config: GenesisConfig, initial_model_hash: str, founder: Identity, timestamp: int) -> Block:
    """Block 0, signed by the founder and sealed (genesis needs no certificate)."""
    if founder.member_id != config.founder_id:
        raise ConfigError(f"genesis must be signed by the founder {config.founder_id}")
    if any(not m.public_key for m in config.members):
        raise ConfigError("every member needs a public key before genesis")
    n = len(config.members)
    block = Block(
        index=0,
        timestamp=timestamp,
        kind="genesis",
        prev_hash=ZERO_HASH,
        model_hash=initial_model_hash,
        contributor=None,
        strengths={m.member_id: 1.0 / n for m in config.members},
        data_ids_root=EMPTY_ROOT,
        quality_votes=(),
        block_votes=(),
        general=config.founder_id,
        payload={"config": config.to_payload()},
    )
    return block.signed_by(founder).sealed()
