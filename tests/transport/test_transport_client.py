"""The client: both directions, the server must be a member, bounded retries and sizes."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tls_coalition import MODEL, Coalition, Running

from tclearn.errors import RemoteProtocolError
from tclearn.pki import MemberFiles
from tclearn.transport import (
    HTTPStatusError,
    NodeServer,
    PeerClient,
    PeerNotAllowedError,
    PeerUnavailableError,
    ResponseTooLargeError,
    Router,
    TLSConfigError,
    client_context,
    server_context,
)

pytestmark = pytest.mark.timeout(30)


@contextmanager
def node(coalition: Coalition, who: MemberFiles, ca: object = None) -> Iterator[NodeServer]:
    router = Router()
    router.route("POST", "/v1/whoami", lambda caller, body, q: (200, "text/plain", f"{who.member_id}<-{caller}".encode()))
    context = server_context(ca or coalition.ca, who.cert, who.key)  # type: ignore[arg-type]
    with NodeServer(router, context, coalition.allowlist(), member_id=who.member_id, log=lambda _r: None) as server:
        yield server


def test_python_client_both_ways(coalition: Coalition) -> None:
    with node(coalition, coalition.alice) as alice, node(coalition, coalition.bob) as bob:
        to_alice = coalition.client(alice.url, coalition.bob, expected_member="alice")
        to_bob = coalition.client(bob.url, coalition.alice, expected_member="bob")
        assert to_alice.post("/v1/whoami", b"").body == b"alice<-bob"
        assert to_bob.post("/v1/whoami", b"").body == b"bob<-alice"
        assert to_bob.health() == {"status": "ok", "member": "bob", "caller": "alice"}


def test_hostname_from_the_san(coalition: Coalition) -> None:
    with node(coalition, coalition.alice) as alice:
        url = f"https://localhost:{alice.port}"
        assert coalition.client(url, coalition.bob).health()["member"] == "alice"


def test_client_refuses_a_server_that_is_not_a_member(coalition: Coalition) -> None:
    with node(coalition, coalition.eve) as eve, pytest.raises(PeerNotAllowedError, match="not a coalition member"):
        coalition.client(eve.url, coalition.bob).health()


def test_client_refuses_the_wrong_member(coalition: Coalition) -> None:
    with node(coalition, coalition.alice) as alice, pytest.raises(PeerNotAllowedError, match="expected 'bob'"):
        coalition.client(alice.url, coalition.bob, expected_member="bob").health()


def test_client_refuses_a_server_from_another_ca(coalition: Coalition) -> None:
    refused = pytest.raises(PeerUnavailableError, match="certificate refused")
    with node(coalition, coalition.mallory, ca=coalition.mallory_ca) as mallory, refused:
        coalition.client(mallory.url, coalition.bob).health()


def test_non_member_client_is_turned_away_after_bounded_retries(
    coalition: Coalition, alice_server: Running
) -> None:
    sleeps: list[float] = []
    client = coalition.client(alice_server.server.url, coalition.eve, retries=2, sleep=sleeps.append)
    with pytest.raises(PeerUnavailableError, match="gave up after 3 attempts"):
        client.health()
    assert len(sleeps) == 2
    assert alice_server.requests() == []


def test_retries_are_bounded_with_backoff(coalition: Coalition) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # nothing listens on it
        sleeps: list[float] = []
        client = coalition.client(f"https://127.0.0.1:{port}", coalition.bob, retries=3, backoff_s=0.1,
                                  sleep=sleeps.append)
        with pytest.raises(PeerUnavailableError, match="gave up after 4 attempts"):
            client.health()
    assert sleeps == [0.1, 0.2, 0.4]


def test_models_travel_as_checked_safetensors(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    assert client.get_model("/v1/models/m1") == MODEL
    response = client.get("/v1/models/m1")
    assert response.content_type == "application/octet-stream"
    with pytest.raises(HTTPStatusError, match="404.*no model m9"):
        client.get_model("/v1/models/m9")
    with pytest.raises(RemoteProtocolError, match="malformed model"):
        client.get_model("/v1/bad-model")


def test_response_size_is_bounded(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob, max_response_bytes=len(MODEL) - 1)
    with pytest.raises(ResponseTooLargeError):
        client.get_model("/v1/models/m1")


def test_client_configuration_errors(coalition: Coalition) -> None:
    with pytest.raises(ValueError, match="https"):
        coalition.client("http://127.0.0.1:1", coalition.bob)
    with pytest.raises(TLSConfigError):
        PeerClient("https://127.0.0.1:1", coalition.ca, coalition.bob.cert, coalition.alice.key, [])
    context = client_context(coalition.ca, coalition.bob.cert, coalition.bob.key)
    shared = PeerClient.from_context("https://127.0.0.1:1", context, coalition.allowlist())
    assert shared.base_url == "https://127.0.0.1:1"


def test_key_readable_by_others_is_refused(coalition: Coalition, tmp_path: Path) -> None:
    loose = tmp_path / "loose.key"
    shutil.copy(coalition.bob.key, loose)
    os.chmod(loose, 0o644)
    with pytest.raises(TLSConfigError, match="chmod 600"):
        client_context(coalition.ca, coalition.bob.cert, loose)
