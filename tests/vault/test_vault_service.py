"""The vault over mutual TLS: members publish and fetch by certificate, the policy decides, the journal records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tclearn.pki import ca_cert_path, init_ca, issue_member
from tclearn.transport import MemberAllowList, NodeServer, PeerClient, PeerUnavailableError, server_context
from tclearn.vault.service import VaultServiceConfig, vault_router
from tclearn.vault.supervisor import Supervisor

V = "5e" * 32


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, object]:
    pki = tmp_path / "pki"
    init_ca(pki)
    files = {m: issue_member(pki, m) for m in ("supervisor", "h1", "h2", "eve")}
    return {"ca": ca_cert_path(pki), **files}


def test_members_publish_and_fetch_over_mutual_tls(sup: Supervisor, tls: dict) -> None:  # type: ignore[type-arg]
    allow = MemberAllowList({tls[m].fingerprint: m for m in ("supervisor", "h1", "h2")})
    sup_files = tls["supervisor"]
    server = NodeServer(vault_router(sup), server_context(tls["ca"], sup_files.cert, sup_files.key),
                        MemberAllowList({tls[m].fingerprint: m for m in ("h1", "h2")}), member_id="supervisor").start()
    try:
        def client(m: str) -> PeerClient:
            return PeerClient(server.url, tls["ca"], tls[m].cert, tls[m].key, allow, timeout_s=5.0, retries=0,
                              expected_member="supervisor")

        h1, h2 = client("h1"), client("h2")
        put = h1.request("PUT", f"/v1/vault/objects/{V}", b"model bytes", "application/octet-stream",
                         {"kind": "model", "ref": "round-3"})
        assert put.status == 201 and put.json()["id"] == V
        got = h2.get(f"/v1/vault/objects/{V}", {"action": "use", "ref": "round-3"})
        assert got.status == 200 and got.body == b"model bytes"
        refused = h2.get(f"/v1/vault/objects/{V}", {"action": "download"})
        assert refused.status == 403 and "download" in refused.json()["error"]
        assert h2.get(f"/v1/vault/objects/{'77' * 32}").status == 403  # unknown version: refused, journaled
        assert h1.get("/v1/vault/journal/head").json()["entries"] == len(sup.journal.entries)
        with pytest.raises(PeerUnavailableError):  # a CA-issued certificate of a non-member: cut at the handshake
            client("eve").get(f"/v1/vault/objects/{V}")
    finally:
        server.stop()
    rows = [(e.actor, e.action, e.outcome, e.ref) for e in sup.journal.entries[1:]]
    assert rows[:3] == [("h1", "publish", "granted", "round-3"), ("h2", "use", "granted", "round-3"),
                        ("h2", "download", "refused", "")]
    assert all(e.detail.get("channel") == "tls" for e in sup.journal.entries[2:])


def test_service_config(tmp_path: Path) -> None:
    (tmp_path / "vault.toml").write_text(
        '[vault]\ndir = "v"\npassphrase_file = "pw"\nsupervisor_key = "k/supervisor.key"\n'
        '[tls]\nca = "pki/ca.crt"\ncert = "pki/members/supervisor.crt"\nkey = "pki/members/supervisor.key"\n'
        'port = 8443\n[members]\nh1 = "sha256:' + "ab" * 32 + '"\n')
    cfg = VaultServiceConfig.load(tmp_path / "vault.toml")
    assert cfg.vault_dir == tmp_path / "v" and cfg.port == 8443 and cfg.members == {"sha256:" + "ab" * 32: "h1"}


def test_vault_serve_command_starts_and_stops(sup: Supervisor, tls: dict, tmp_path: Path,  # type: ignore[type-arg]
                                              supervisor_id: object) -> None:
    from typer.testing import CliRunner

    from tclearn.cli import app
    from tclearn.identity import save_identity

    from vault_helpers import PASS

    sup.close()
    key = save_identity(supervisor_id, tmp_path / "keys")  # type: ignore[arg-type]
    (tmp_path / "pw").write_bytes(PASS + b"\n")
    s = tls["supervisor"]
    toml = (f'[vault]\ndir = "{sup.root}"\npassphrase_file = "{tmp_path / "pw"}"\nsupervisor_key = "{key}"\n'
            f'[tls]\nca = "{tls["ca"]}"\ncert = "{s.cert}"\nkey = "{s.key}"\n'
            f'[members]\nh1 = "{tls["h1"].fingerprint}"\n')
    (tmp_path / "vault.toml").write_text(toml)
    result = CliRunner().invoke(app, ["vault", "serve", "--config", str(tmp_path / "vault.toml"), "--max-seconds", "0.2"])
    assert result.exit_code == 0 and "serving at https://127.0.0.1:" in result.output
    (tmp_path / "pw").write_text("wrong\n")
    result = CliRunner().invoke(app, ["vault", "serve", "--config", str(tmp_path / "vault.toml"), "--max-seconds", "0.2"])
    assert result.exit_code == 34 and "passphrase" in result.output
