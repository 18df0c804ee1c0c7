"""The supervisor's vault over the nodes' mutual-TLS stack (level B, online exchange).

Routes (the caller is the member id its TLS certificate proves, never a field
of the request; every request is decided by the policy and journaled):

    GET  /v1/vault/objects/{id}?action=use|download[&ref=R]   the object's bytes (200), or 403 / 404
    PUT  /v1/vault/objects/{id}?kind=model[&ref=R]            publish (201 {"id"}); {id} is the chain's hash
    GET  /v1/vault/journal/head                                {"entries", "hash"}: for members to anchor

`vault_router` builds the routes around a `Supervisor`; `VaultServiceConfig`
reads ``vault.toml`` for `tclearn vault serve`.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tclearn.errors import ConfigError
from tclearn.transport import OCTET, Query, Router, json_response
from tclearn.transport.router import HandlerResult
from tclearn.vault.errors import AccessDenied, IntegrityError, ObjectNotFound, VaultError
from tclearn.vault.supervisor import Supervisor

__all__ = ["VaultServiceConfig", "vault_router", "MAX_UPLOAD_BYTES"]

MAX_UPLOAD_BYTES = 1 << 30


def vault_router(sup: Supervisor, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> Router:
    """Routes that serve `sup`'s vault; one request at a time touches it (quotas count exactly)."""
    lock = threading.Lock()
    router = Router()

    def get_object(caller: str, body: bytes, query: Query) -> HandlerResult:
        action = query.get("action", "use")
        if action not in ("use", "download"):
            return json_response({"error": "action must be use or download"}, 400)
        with lock:
            try:
                data, _ = sup.fetch(caller, query["id"], action, query.get("ref", ""), {"channel": "tls"})
            except AccessDenied as exc:
                return json_response({"error": str(exc)}, 403)
            except ObjectNotFound as exc:
                return json_response({"error": str(exc)}, 404)
            except IntegrityError:
                return json_response({"error": "the stored object failed its integrity check"}, 500)
            except VaultError as exc:
                return json_response({"error": str(exc)}, 400)
        return 200, OCTET, data

    def put_object(caller: str, body: bytes, query: Query) -> HandlerResult:
        with lock:
            try:
                info = sup.publish(caller, body, query.get("kind", "model"), {"by": caller}, query["id"],
                                   query.get("ref", ""))
            except AccessDenied as exc:
                return json_response({"error": str(exc)}, 403)
            except IntegrityError as exc:
                return json_response({"error": str(exc)}, 409)
            except VaultError as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response({"id": info.object_id, "size": info.size}, 201)

    def journal_head(caller: str, body: bytes, query: Query) -> HandlerResult:
        with lock:
            last = sup.journal.entries[-1]
        return json_response({"entries": last.seq + 1, "hash": last.hash, "time_ms": last.time_ms})

    router.route("GET", "/v1/vault/objects/{id}", get_object)
    router.route("PUT", "/v1/vault/objects/{id}", put_object, max_body_bytes=max_upload_bytes)
    router.route("GET", "/v1/vault/journal/head", journal_head)
    return router


@dataclass(frozen=True)
class VaultServiceConfig:
    """``vault.toml``: the vault, the supervisor's keys and TLS files, and the members' certificate fingerprints."""

    vault_dir: Path
    passphrase_file: Path
    supervisor_key: Path
    ca_cert: Path
    tls_cert: Path
    tls_key: Path
    members: dict[str, str]  # fingerprint -> member id
    host: str = "127.0.0.1"
    port: int = 0

    @classmethod
    def load(cls, path: Path) -> "VaultServiceConfig":
        try:
            doc: dict[str, Any] = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        base = Path(path).parent

        def p(section: str, key: str) -> Path:
            try:
                value = doc[section][key]
            except KeyError:
                raise ConfigError(f"{path}: missing {section}.{key}") from None
            return (base / value) if not Path(value).is_absolute() else Path(value)

        members = doc.get("members", {})
        if not isinstance(members, dict) or not members:
            raise ConfigError(f"{path}: [members] must map each member id to its certificate fingerprint")
        tls = doc.get("tls", {})
        return cls(vault_dir=p("vault", "dir"), passphrase_file=p("vault", "passphrase_file"),
                   supervisor_key=p("vault", "supervisor_key"), ca_cert=p("tls", "ca"), tls_cert=p("tls", "cert"),
                   tls_key=p("tls", "key"), members={str(fp): str(m) for m, fp in members.items()},
                   host=str(tls.get("host", "127.0.0.1")), port=int(tls.get("port", 0)))
