"""A node's configuration (`node.toml`): who it is, where its files are, who its peers are."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tclearn.dashboard.settings import DashboardSettings, dashboard_settings
from tclearn.errors import ConfigError
from tclearn.ledger.genesis import load_config
from tclearn.node.vault_link import VaultSettings, vault_settings
from tclearn.node.data_spec import DataSpec, parse_data_spec

__all__ = ["NodeConfig", "PeerInfo"]


PROPOSE_MODES = ("turn", "on-demand", "never")


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def _propose_mode(value: Any) -> str:
    if value is True:
        return "turn"
    if value is False:
        return "never"
    if value not in PROPOSE_MODES:
        raise ConfigError(f"node.propose must be one of {', '.join(PROPOSE_MODES)} (or true/false), got {value!r}")
    return str(value)


@dataclass(frozen=True)
class PeerInfo:
    member_id: str
    url: str
    fingerprint: str


@dataclass(frozen=True)
class NodeConfig:
    member_id: str
    data_dir: Path  # chain.sqlite, safety.json, models/, trained.json, node.log
    identity_key: Path  # Ed25519 key (PEM, 0600)
    tls_cert: Path
    tls_key: Path
    ca_cert: Path
    genesis: Path  # genesis block bytes (Block.to_bytes)
    port: int
    fingerprint: str = ""
    host: str = "127.0.0.1"
    task: str = "digits"
    seed: int = 0
    index: int = 0
    partners: int = 1
    tick_ms: int = 100
    # when this node trains and proposes: "turn" (whenever the seeded order gives it the turn),
    # "on-demand" (only after `tclearn node propose`), or "never" (TOML true/false: turn/never)
    propose: str = "turn"
    proposal_timeout_ticks: int = 100
    # score a trained candidate on G before proposing it, and shorten an increment the floor would refuse
    self_check: bool = True
    peers: tuple[PeerInfo, ...] = field(default_factory=tuple)
    vault: VaultSettings | None = None  # [vault]: level B, the supervisor's vault service (tclearn.node.vault_link)
    # this member's own data (D_i) and G, as distributed with the kit ([data], [test_set]; default: built in)
    data: DataSpec = field(default_factory=DataSpec)
    test_set: DataSpec = field(default_factory=DataSpec)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)  # [dashboard] (tclearn.dashboard)

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @classmethod
    def load(cls, path: Path | str) -> "NodeConfig":
        path = Path(path)
        data = load_config(path, "node config")
        base = path.parent
        node = data.get("node")
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: missing [node] section")

        def p(key: str) -> Path:
            if key not in node or not isinstance(node[key], str):
                raise ConfigError(f"{path}: missing node.{key}")
            q = Path(node[key])
            return q if q.is_absolute() else (base / q)

        peers = []
        for i, peer in enumerate(data.get("peers", [])):
            try:
                peers.append(PeerInfo(str(peer["id"]), str(peer["url"]), str(peer.get("fingerprint", ""))))
            except (KeyError, TypeError):
                raise ConfigError(f"{path}: peers[{i}] needs id and url") from None
        try:
            return cls(
                member_id=str(node["member_id"]), data_dir=p("data_dir"), identity_key=p("identity_key"),
                tls_cert=p("tls_cert"), tls_key=p("tls_key"), ca_cert=p("ca_cert"), genesis=p("genesis"),
                port=int(node["port"]), fingerprint=str(node.get("fingerprint", "")),
                host=str(node.get("host", "127.0.0.1")), task=str(node.get("task", "digits")),
                seed=int(node.get("seed", 0)), index=int(node.get("index", 0)),
                partners=int(node.get("partners", 1)), tick_ms=int(node.get("tick_ms", 100)),
                propose=_propose_mode(node.get("propose", "turn")),
                proposal_timeout_ticks=int(node.get("proposal_timeout_ticks", 100)),
                self_check=_bool(node.get("self_check", True), "node.self_check"), peers=tuple(peers),
                vault=vault_settings(data.get("vault"), path),
                data=parse_data_spec(data.get("data"), "data", path),
                test_set=parse_data_spec(data.get("test_set"), "test_set", path),
                dashboard=dashboard_settings(data.get("dashboard"), path),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: invalid [node] section: {exc}") from None

    @property
    def trains(self) -> bool:
        return self.propose != "never"

    def to_toml(self) -> str:
        def q(value: Any) -> str:
            return json.dumps(str(value) if isinstance(value, Path) else value)

        lines = ["[node]"]
        for key in ("member_id", "data_dir", "identity_key", "tls_cert", "tls_key", "ca_cert", "genesis", "port",
                    "fingerprint", "host", "task", "seed", "index", "partners", "tick_ms", "propose",
                    "proposal_timeout_ticks", "self_check"):
            lines.append(f"{key} = {q(getattr(self, key))}")
        for peer in self.peers:
            lines += ["", "[[peers]]", f"id = {q(peer.member_id)}", f"url = {q(peer.url)}",
                      f"fingerprint = {q(peer.fingerprint)}"]
        if self.vault is not None:
            lines += ["", self.vault.to_toml().rstrip("\n")]
        for spec, section in ((self.data, "data"), (self.test_set, "test_set")):
            if not spec.builtin:
                lines += ["", spec.to_toml(section).rstrip("\n")]
        section = self.dashboard.to_toml()
        return "\n".join(lines) + "\n" + (f"\n{section}" if section else "")
