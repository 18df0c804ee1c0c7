"""The allow-list follows membership: a member removed while connected is refused on its next request.

A node replaces its `MemberAllowList` when a membership block is committed
(`tclearn.node.runtime`); new connections of a removed member fail the
handshake check, and a connection it kept alive is answered 403 and closed.
"""

from __future__ import annotations

import socket
import ssl

from tls_coalition import Coalition, client_tls

from tclearn.transport import MemberAllowList, NodeServer, Router, json_response, server_context


def _get(tls: ssl.SSLSocket) -> bytes:
    """One request on `tls`; the whole response (headers and Content-Length bytes of body), b"" if it closed."""
    tls.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    try:
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if len(body) >= length:
                    return data
            chunk = tls.recv(4096)
            if not chunk:
                return data
            data += chunk
    except (OSError, ssl.SSLError):
        return data


def test_a_removed_members_kept_alive_connection_is_refused_on_its_next_request(coalition: Coalition) -> None:
    router = Router()
    router.route("GET", "/v1/ping", lambda caller, body, q: json_response({"caller": caller}))
    allow = coalition.allowlist()
    events: list[dict[str, object]] = []
    context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
    with NodeServer(router, context, allow, log=events.append) as server:
        tls = client_tls(coalition, coalition.bob).wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=5), server_hostname="127.0.0.1")
        assert _get(tls).startswith(b"HTTP/1.1 200")
        allow.replace({coalition.alice.fingerprint: "alice"})  # a membership block removed bob
        answer = _get(tls)
        assert answer.startswith(b"HTTP/1.1 403") and b"Connection: close" in answer
        assert any(e.get("event") == "peer_refused" and e.get("caller") == "bob" for e in events)
        tls.close()
        # a new connection of bob fails the allow-list at the handshake
        again = client_tls(coalition, coalition.bob).wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=5), server_hostname="127.0.0.1")
        assert not _get(again).startswith(b"HTTP/1.1 200")
        again.close()
        # alice (still a member) is served
        alice = client_tls(coalition, coalition.alice).wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=5), server_hostname="127.0.0.1")
        assert _get(alice).startswith(b"HTTP/1.1 200")
        alice.close()


def test_admits_follows_replace_and_a_bare_fingerprint_list_admits_by_certificate_only() -> None:
    fp_a, fp_b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    allow = MemberAllowList({fp_a: "alice", fp_b: "bob"})
    assert allow.admits("bob")
    allow.replace({fp_a: "alice"})
    assert not allow.admits("bob") and allow.admits("alice")
    assert MemberAllowList([fp_a]).admits("anyone")  # no ids recorded: the handshake's fingerprint decides
