"""The node's server: routing, bounds, validation, resilience, logs, allow-list."""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Callable
from datetime import UTC, datetime

import cbor2
import pytest
from tls_coalition import MAX_BODY, Coalition, Running, client_tls

from tclearn.transport import (
    MemberAllowList,
    NodeServer,
    PeerUnavailableError,
    Router,
    ServerLimits,
    TLSConfigError,
    server_context,
)

pytestmark = pytest.mark.timeout(30)


def test_port_zero_gets_a_real_port(alice_server: Running) -> None:
    assert alice_server.server.port > 0
    assert alice_server.server.url == f"https://127.0.0.1:{alice_server.server.port}"
    assert alice_server.events[0] == {**alice_server.events[0], "event": "server_started"}


def test_handler_sees_the_caller_from_the_certificate(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    response = client.post("/v1/echo", b"hello").raise_for_status()
    assert response.body == b"hello" and response.server_member == "alice"
    assert alice_server.calls == [("bob", "echo")]


def test_access_log_is_structured(coalition: Coalition, alice_server: Running) -> None:
    coalition.client(alice_server.server.url, coalition.bob).post("/v1/echo", b"12345")
    record = alice_server.wait_for("request", path="/v1/echo")
    assert {k: record[k] for k in ("caller", "method", "path", "status", "bytes_in", "bytes_out", "server")} == {
        "caller": "bob", "method": "POST", "path": "/v1/echo", "status": 200, "bytes_in": 5, "bytes_out": 5,
        "server": "alice",
    }
    json.dumps(record)  # one JSON line


def test_oversized_body_is_413_and_route_limit_overrides(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    response = client.post("/v1/echo", b"x" * (MAX_BODY + 1))
    assert response.status == 413 and "over the limit" in response.json()["error"]
    assert alice_server.calls == []
    # A body far over the limit still gets its 413, not a reset: the server drains it before closing.
    assert client.post("/v1/echo", b"x" * 8_000_000).status == 413
    assert client.post("/v1/upload", b"x" * (MAX_BODY * 2)).raise_for_status().body == b"x" * (MAX_BODY * 2)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "malformed application/json"),
        (b'{"kind": "vote"}', "application/json", 400, "body.height is required"),
        (b'{"kind": "vote", "height": true}', "application/json", 400, "body.height must be an integer"),
        (b'{"kind": "vote", "height": 1, "x": 0}', "application/json", 400, "unknown field(s): x"),
        (b'{"kind": "vote", "height": 1, "votes": [1]}', "application/json", 400, "body.votes[0] must be a string"),
        (b'{"kind": "vote", "height": NaN}', "application/json", 400, "NaN is not allowed"),
        (b'[1, 2]', "application/json", 400, "body must be an object"),
        (b"\xff\xff", "application/cbor", 400, "malformed application/cbor"),
        (b'{"kind": "vote", "height": 1}', "text/plain", 415, "content type must be"),
    ],
)
def test_malformed_bodies_are_400(
    coalition: Coalition, alice_server: Running, body: bytes, content_type: str, status: int, message: str
) -> None:
    response = coalition.client(alice_server.server.url, coalition.bob).post("/v1/messages", body, content_type)
    assert response.status == status
    assert message in response.json()["error"]
    assert alice_server.calls == []


def test_cbor_and_json_bodies_are_validated_alike(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    message = {"kind": "vote", "height": 7, "votes": ["a", "b"]}
    assert client.post_json("/v1/messages", message).raise_for_status().json()["payload"] == message
    assert client.post_cbor("/v1/messages", message).raise_for_status().json()["payload"] == message
    tagged = client.post("/v1/messages", cbor2.dumps({"kind": datetime(2030, 1, 1, tzinfo=UTC), "height": 1}),
                         "application/cbor")
    assert tagged.status == 400 and "tags are not allowed" in tagged.json()["error"]  # refused before decoding


def test_routing_errors(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    assert client.get("/v1/nothing").status == 404
    response = client.get("/v1/echo")
    assert response.status == 405 and "POST" in response.json()["error"]
    assert client.get("/v1/models/m2").status == 404
    assert client.get("/v1/models/a..%2F").status == 404
    assert client.get("/health", {"a": "1"}).status == 200
    assert client.request("GET", "/health?a=1&a=2").status == 400


def test_handler_crash_is_a_500_and_the_server_lives_on(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob)
    response = client.get("/v1/boom")
    assert response.status == 500 and response.json()["error"] == "internal error"
    assert "handler bug" not in response.body.decode()
    assert client.health()["status"] == "ok"


def _raw_tls(coalition: Coalition, port: int) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return client_tls(coalition, coalition.bob).wrap_socket(sock, server_hostname="127.0.0.1")


def test_client_disconnecting_mid_body_does_not_hurt_the_server(coalition: Coalition, alice_server: Running) -> None:
    port = alice_server.server.port
    tls = _raw_tls(coalition, port)
    tls.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"y" * 100)
    tls.close()
    client = coalition.client(alice_server.server.url, coalition.bob)
    assert client.health()["caller"] == "bob"
    dropped = alice_server.wait_for("request", level="warning")
    assert dropped["caller"] == "bob" and dropped["bytes_in"] == 100 and "closed" in dropped["error"]
    assert alice_server.calls == []


def test_slow_peers_time_out_without_blocking_others(coalition: Coalition, alice_server: Running) -> None:
    port = alice_server.server.port
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)  # never starts TLS
    slow = _raw_tls(coalition, port)
    slow.sendall(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")  # then stalls
    client = coalition.client(alice_server.server.url, coalition.bob)
    assert client.post("/v1/echo", b"quick").body == b"quick"
    silent.settimeout(5)
    assert silent.recv(1) == b""  # handshake timeout closed it
    slow.settimeout(5)
    assert slow.recv(1) == b""  # body read timeout closed it
    silent.close(), slow.close()
    alice_server.wait_for("tls_refused", reason="timed out")
    assert client.health()["status"] == "ok"


def _read_all(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    return data


def test_keepalive_and_unread_bodies(coalition: Coalition, alice_server: Running) -> None:
    tls = _raw_tls(coalition, alice_server.server.port)
    two = (b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
           b"POST /v1/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
           b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # smuggled into the 404's unread body
    tls.sendall(two)
    answers = _read_all(tls)
    tls.close()
    assert answers.count(b"HTTP/1.1 ") == 2  # echo, then 404 and close: the third is never parsed
    assert answers.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 404" in answers and b"abc" in answers
    assert alice_server.calls == [("bob", "echo")]


def test_malformed_http_gets_a_json_400(coalition: Coalition, alice_server: Running) -> None:
    tls = _raw_tls(coalition, alice_server.server.port)
    tls.sendall(b"GARBAGE\r\n\r\n")
    head = _read_all(tls)
    tls.close()
    assert head.startswith(b"HTTP/1.1 400")
    assert b'"status": 400' in head


def test_allowlist_change_applies_to_new_connections(coalition: Coalition, alice_server: Running) -> None:
    client = coalition.client(alice_server.server.url, coalition.bob, retries=0)
    assert client.health()["caller"] == "bob"
    alice_server.server.allowlist.replace({coalition.alice.fingerprint: "alice"})
    with pytest.raises(PeerUnavailableError):
        client.health()
    alice_server.wait_for("peer_refused")


def test_connection_limit(coalition: Coalition) -> None:
    events: list[dict[str, object]] = []
    context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
    # a handshake timeout far longer than the member's retries: the member can only get in by the cut
    limits = ServerLimits(handshake_timeout_s=60.0, max_connections=1)
    with NodeServer(Router(), context, coalition.allowlist(), limits=limits, log=events.append) as server:
        hog = _raw_tls(coalition, server.port)  # a member's kept-alive connection holds the only slot
        hog.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert hog.recv(4096).startswith(b"HTTP/1.1 200")
        with pytest.raises(PeerUnavailableError):
            coalition.client(server.url, coalition.bob, retries=1, timeout_s=1.0).health()
        hog.close()
        assert any(e["event"] == "connection_refused" for e in events)
        _until(lambda: server.admission.counts()["open"] == 0)  # the server has seen the hog go
        # a stranger's stalled handshake, though, is cut to make room for a member: the member takes its
        # slots at once, on its first attempt, long before the stalled handshake's own timeout
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        _until(lambda: server.admission.counts()["pending"] == {"127.0.0.1": 1})
        started = time.monotonic()
        assert coalition.client(server.url, coalition.bob, retries=0, timeout_s=5.0).health()["caller"] == "bob"
        assert time.monotonic() - started < limits.handshake_timeout_s / 2
        assert stalled.recv(1) == b""  # the stranger's connection was shut down
        stalled.close()


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the server's connection counts did not settle"
        time.sleep(0.02)


def test_server_refuses_weak_contexts(coalition: Coalition) -> None:
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(TLSConfigError, match="CERT_REQUIRED"):
        NodeServer(Router(), loose, MemberAllowList())
    loose.verify_mode = ssl.CERT_REQUIRED
    with pytest.raises(TLSConfigError, match="TLS 1.3"):
        NodeServer(Router(), loose, MemberAllowList())


def test_stop_is_prompt_with_an_open_keepalive_connection(coalition: Coalition) -> None:
    context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
    server = NodeServer(Router(), context, coalition.allowlist(), log=lambda _r: None).start()
    tls = _raw_tls(coalition, server.port)
    tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert tls.recv(4096).startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    tls.close()
