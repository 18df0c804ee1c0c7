"""A standard client (the system curl) against a node: only members over TLS 1.3 get in."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tls_coalition import Coalition, Running

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed"),
    pytest.mark.timeout(30),
]


def curl(url: str, ca: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "5", "--noproxy", "*", "--cacert", str(ca), *args, url],
        check=False, capture_output=True, text=True, timeout=15,
    )


def test_member_certificate_gets_an_answer(coalition: Coalition, alice_server: Running) -> None:
    bob = coalition.bob
    done = curl(alice_server.server.url + "/health", coalition.ca, "--cert", str(bob.cert), "--key", str(bob.key))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"status": "ok", "member": "alice", "caller": "bob"}
    assert alice_server.wait_for("request", path="/health")["caller"] == "bob"


def test_curl_posts_a_validated_message(coalition: Coalition, alice_server: Running) -> None:
    bob = coalition.bob
    done = curl(alice_server.server.url + "/v1/messages", coalition.ca, "--cert", str(bob.cert), "--key", str(bob.key),
                "-H", "Content-Type: application/json", "--data", '{"kind": "vote", "height": 3}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"caller": "bob", "payload": {"kind": "vote", "height": 3}}


def test_no_client_certificate_is_refused(coalition: Coalition, alice_server: Running) -> None:
    done = curl(alice_server.server.url + "/health", coalition.ca)
    assert done.returncode != 0 and done.stdout == ""
    assert "CERTIFICATE" in alice_server.wait_for("tls_refused")["reason"]
    assert alice_server.requests() == []


def test_non_member_from_the_coalition_ca_is_refused(coalition: Coalition, alice_server: Running) -> None:
    eve = coalition.eve
    done = curl(alice_server.server.url + "/health", coalition.ca, "--cert", str(eve.cert), "--key", str(eve.key))
    assert done.returncode != 0 and done.stdout == ""
    assert eve.fingerprint in alice_server.wait_for("peer_refused")["reason"]
    assert alice_server.requests() == []


def test_certificate_from_another_ca_is_refused(coalition: Coalition, alice_server: Running) -> None:
    mallory = coalition.mallory
    done = curl(alice_server.server.url + "/health", coalition.ca,
                "--cert", str(mallory.cert), "--key", str(mallory.key))
    assert done.returncode != 0 and done.stdout == ""
    alice_server.wait_for("tls_refused")
    assert alice_server.requests() == []


def test_tls_1_2_is_refused(coalition: Coalition, alice_server: Running) -> None:
    bob = coalition.bob
    done = curl(alice_server.server.url + "/health", coalition.ca, "--tls-max", "1.2",
                "--cert", str(bob.cert), "--key", str(bob.key))
    assert done.returncode != 0 and done.stdout == ""
    assert "UNSUPPORTED_PROTOCOL" in alice_server.wait_for("tls_refused")["reason"]
    assert alice_server.requests() == []


def test_oversized_body_gets_413(coalition: Coalition, alice_server: Running, tmp_path: Path) -> None:
    bob = coalition.bob
    big = tmp_path / "big"
    big.write_bytes(b"x" * 10_000)
    done = curl(alice_server.server.url + "/v1/echo", coalition.ca, "--cert", str(bob.cert), "--key", str(bob.key),
                "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{big}",
                "--write-out", "\n%{http_code}")
    assert done.stdout.rsplit("\n", 1)[-1] == "413", (done.stdout, done.stderr)
