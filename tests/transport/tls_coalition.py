"""Helpers and fixtures of the transport tests. A small coalition: alice and bob are members; eve holds a
certificate from the same CA but is not a member; mallory's comes from another CA."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save

from tclearn.pki import MemberFiles, init_ca, issue_member
from tclearn.transport import (
    Field,
    MemberAllowList,
    NodeServer,
    PeerClient,
    RequestError,
    Router,
    Schema,
    ServerLimits,
    json_response,
    safetensors_response,
    server_context,
    validated,
)

MAX_BODY = 4096
MODEL = save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)})


@dataclass
class Coalition:
    ca: Path
    alice: MemberFiles
    bob: MemberFiles
    eve: MemberFiles
    mallory: MemberFiles
    mallory_ca: Path

    def allowlist(self) -> MemberAllowList:
        return MemberAllowList({self.alice.fingerprint: "alice", self.bob.fingerprint: "bob"})

    def client(self, url: str, who: MemberFiles, **options: Any) -> PeerClient:
        options.setdefault("timeout_s", 5.0)
        options.setdefault("sleep", lambda _s: None)
        return PeerClient(url, self.ca, who.cert, who.key, self.allowlist(), **options)


@pytest.fixture(scope="session")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Coalition:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca")
    init_ca(root / "other")
    members = {m: issue_member(root / "ca", m) for m in ("alice", "bob", "eve")}
    mallory = issue_member(root / "other", "mallory")
    return Coalition(root / "ca" / "ca.crt", members["alice"], members["bob"], members["eve"],
                     mallory, root / "other" / "ca.crt")


@dataclass
class Running:
    server: NodeServer
    events: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def requests(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "request"]

    def wait_for(self, event: str, timeout_s: float = 5.0, **fields: Any) -> dict[str, Any]:
        """The first event of this kind with these fields; the server logs after it answers."""
        deadline = time.monotonic() + timeout_s
        while True:
            for record in list(self.events):
                if record["event"] == event and all(record.get(k) == v for k, v in fields.items()):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event} event with {fields} in {self.events}")
            time.sleep(0.01)


def _router(running: Running) -> Router:
    router = Router()

    def echo(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
        running.calls.append((caller, "echo"))
        return 200, "application/octet-stream", body

    def message(caller: str, payload: dict[str, Any], query: Any) -> tuple[int, str, bytes]:
        running.calls.append((caller, "message"))
        return json_response({"caller": caller, "payload": payload})

    def model(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
        if query["model_hash"] != "m1":
            raise RequestError(404, f"no model {query['model_hash']}")
        return safetensors_response(MODEL)

    def not_a_model(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
        return 200, "application/octet-stream", b"\xff" * 16

    def boom(caller: str, body: bytes, query: Any) -> tuple[int, str, bytes]:
        raise RuntimeError("handler bug")

    schema = Schema({"kind": Field(str, max_len=16), "height": Field(int),
                     "votes": Field(list, required=False, items=str)})
    router.route("POST", "/v1/echo", echo)
    router.route("POST", "/v1/upload", echo, max_body_bytes=MAX_BODY * 4)
    router.route("POST", "/v1/messages", validated(schema, message))
    router.route("GET", "/v1/models/{model_hash}", model)
    router.route("GET", "/v1/bad-model", not_a_model)
    router.route("GET", "/v1/boom", boom)
    return router


@pytest.fixture()
def alice_server(coalition: Coalition) -> Iterator[Running]:
    """alice's node on 127.0.0.1, an ephemeral port, short timeouts."""
    running = Running(server=None)  # type: ignore[arg-type]
    limits = ServerLimits(max_body_bytes=MAX_BODY, handshake_timeout_s=1.0, io_timeout_s=1.0,
                          body_deadline_s=3.0, max_connections=8)
    context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
    running.server = NodeServer(_router(running), context, coalition.allowlist(), host="127.0.0.1",
                                port=0, member_id="alice", limits=limits, log=running.events.append)
    running.server.start()
    try:
        yield running
    finally:
        running.server.stop()


def client_tls(coalition: Coalition, who: MemberFiles) -> ssl.SSLContext:
    """A raw TLS 1.3 client context, for tests that speak HTTP by hand."""
    from tclearn.transport import client_context

    return client_context(coalition.ca, who.cert, who.key)
