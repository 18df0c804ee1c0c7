"""Finding 3: connection handling that an outsider cannot exhaust.

Before: slots were taken before the handshake (500 stalled handshakes from
one host without a certificate blocked every new connection, members'
included), every refusal was a log line (41,660 in a minute), and timeouts
were per read, so a member sending a header byte every 8 s (or an outsider a
handshake byte every few seconds) held a connection for as long as it liked.

The attacker connects from 127.0.0.2, members from 127.0.0.1: two source
addresses on one loopback.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))

from tls_coalition import Coalition, client_tls, coalition  # noqa: E402,F401

from tclearn.transport import NodeServer, Router, ServerLimits, server_context  # noqa: E402

ATTACKER = "127.0.0.2"
REFUSALS = {"connection_refused", "tls_refused", "peer_refused"}


@pytest.fixture()
def server(coalition: Coalition) -> Iterator[tuple[NodeServer, list[dict[str, Any]]]]:
    events: list[dict[str, Any]] = []
    limits = ServerLimits(handshake_timeout_s=2.0, io_timeout_s=5.0, header_deadline_s=1.5, body_deadline_s=3.0,
                          log_interval_s=2.0)
    context = server_context(coalition.ca, coalition.alice.cert, coalition.alice.key)
    node = NodeServer(Router(), context, coalition.allowlist(), member_id="alice", limits=limits,
                      log=events.append).start()
    try:
        yield node, events
    finally:
        node.stop()


def _stalled(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((ATTACKER, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    return socks


def test_stalled_handshakes_from_one_host_do_not_lock_members_out(coalition: Coalition, server) -> None:
    node, events = server
    socks = _stalled(node.port, 300)
    try:
        time.sleep(0.3)
        client = coalition.client(node.url, coalition.bob, retries=0, timeout_s=2.0)
        started = time.monotonic()
        for _ in range(5):
            assert client.health()["caller"] == "bob"
        assert time.monotonic() - started < 5
    finally:
        for s in socks:
            s.close()
    refusals = [e for e in events if e["event"] in REFUSALS]
    assert len(refusals) <= 30, f"{len(refusals)} refusal lines for 300 connections"
    time.sleep(node.limits.log_interval_s + 0.5)
    coalition.client(node.url, coalition.bob, retries=0).health()  # the summary comes with the next event at the latest
    summaries = [e for e in events if e["event"] == "refusals_summary"]
    assert summaries and sum(sum(s["counts"].values()) for s in summaries) >= 200, summaries


def _client_hello(coalition: Coalition) -> bytes:
    """The first flight of a real TLS 1.3 client (no certificate), as bytes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(coalition.ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert len(hello) > 100
    return hello


def test_a_handshake_trickled_a_byte_at_a_time_ends_at_the_deadline(coalition: Coalition, server) -> None:
    node, _ = server
    s = socket.socket()
    s.bind((ATTACKER, 0))
    s.connect(("127.0.0.1", node.port))
    hello = _client_hello(coalition)
    started = time.monotonic()
    closed_after = None
    for byte in hello:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            closed_after = time.monotonic() - started
            break
        time.sleep(0.25)  # well under the per-read timeout
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed_after = time.monotonic() - started
                break
        except BlockingIOError:
            pass
        except OSError:
            closed_after = time.monotonic() - started
            break
        finally:
            s.setblocking(True)
    s.close()
    assert closed_after is not None and closed_after < node.limits.handshake_timeout_s + 1.5, closed_after


def _trickle_headers(coalition: Coalition, port: int, stop: threading.Event, opened: list[float],
                     closed: list[float]) -> None:
    ctx = client_tls(coalition, coalition.bob)
    try:
        tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")
    except OSError:
        closed.append(0.0)
        return
    opened.append(time.monotonic())
    started = time.monotonic()
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    for byte in request:
        if stop.is_set():
            break
        try:
            tls.sendall(bytes([byte]))
        except OSError:
            closed.append(time.monotonic() - started)
            break
        time.sleep(0.3)
    tls.close()


def test_a_member_trickling_header_bytes_holds_few_connections_briefly(coalition: Coalition, server) -> None:
    node, events = server
    stop = threading.Event()
    opened: list[float] = []
    closed: list[float] = []
    threads = [threading.Thread(target=_trickle_headers, args=(coalition, node.port, stop, opened, closed))
               for _ in range(40)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    try:
        # alice's own client (another member) still gets in while bob trickles
        assert coalition.client(node.url, coalition.alice, retries=0, timeout_s=2.0).health()["caller"] == "alice"
        time.sleep(node.limits.header_deadline_s + 2.0)
        assert len(closed) >= 30, (len(opened), closed)
        assert all(c < node.limits.header_deadline_s + 2.0 for c in closed), closed
    finally:
        stop.set()
        for t in threads:
            t.join(10)


def test_strangers_from_many_addresses_do_not_lock_members_out(coalition: Coalition, server) -> None:
    node, events = server
    socks = []
    for i in range(2, 14):  # 12 addresses x 8 connections: more than all the pending slots
        for _ in range(8):
            s = socket.socket()
            s.bind((f"127.0.0.{i}", 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", node.port))
                socks.append(s)
            except OSError:
                s.close()
    try:
        time.sleep(0.3)
        client = coalition.client(node.url, coalition.bob, retries=1, timeout_s=2.0)
        for _ in range(3):
            assert client.health()["caller"] == "bob"
    finally:
        for s in socks:
            s.close()
