"""Finding 2, the transfer: a model fetch has a total deadline and a size cap, whatever the server does.

Before: `PeerClient.get_model` had a timeout per read and a 1 GiB cap, so a
server sending one byte every 5 s held the fetching thread (then: a
validator's core thread) for as long as it liked.
"""

from __future__ import annotations

import ssl
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evil_tls import EvilTLSServer  # noqa: E402
from tls_coalition import MODEL, Coalition, coalition  # noqa: E402,F401

from tclearn.transport import PeerUnavailableError, ResponseTooLargeError  # noqa: E402


class EvilModelServer(EvilTLSServer):
    """A member's TLS server that answers every request in the way `mode` says."""

    def answer(self, tls: ssl.SSLSocket, n: int) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        if self.mode == "trickle":  # the true length, one byte every 0.5 s
            tls.sendall(head + b"Content-Length: %d\r\n\r\n" % len(MODEL))
            for i in range(len(MODEL)):
                if self.stop.wait(0.5):
                    break
                tls.sendall(MODEL[i:i + 1])
        elif self.mode == "stall":  # headers, then nothing
            tls.sendall(head + b"Content-Length: %d\r\n\r\n" % len(MODEL))
            self.stop.wait(60)
        elif self.mode == "huge":  # claims 1 GiB
            tls.sendall(head + b"Content-Length: %d\r\n\r\n" % (1 << 30))
            while not self.stop.is_set():
                tls.sendall(b"\0" * 65536)
        elif self.mode == "endless":  # no length, bytes as fast as they go
            tls.sendall(head + b"Connection: close\r\n\r\n")
            while not self.stop.is_set():
                tls.sendall(b"\0" * 65536)


@pytest.fixture(params=["trickle", "stall", "huge", "endless"])
def evil(request: pytest.FixtureRequest, coalition: Coalition) -> Iterator[EvilModelServer]:
    server = EvilModelServer(coalition, request.param)
    yield server
    server.close()


def test_a_model_fetch_ends_at_its_deadline_or_cap(coalition: Coalition, evil: EvilModelServer) -> None:
    client = coalition.client(f"https://127.0.0.1:{evil.port}", coalition.bob, retries=2, timeout_s=5.0,
                              expected_member="alice")
    started = time.monotonic()
    with pytest.raises((PeerUnavailableError, ResponseTooLargeError)):
        client.get_model("/v1/models/m1", max_bytes=len(MODEL) + 1024, deadline_s=1.5)
    took = time.monotonic() - started
    assert took < 2.5, f"{evil.mode}: the fetch took {took:.1f} s"
