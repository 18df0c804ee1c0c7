"""`tclearn vault`, `tclearn audit`, `tclearn smime`: a whole offline exchange, exit codes, refusals; and
level-B/C genesis refused by `demo`, `coalition up` and node startup (exit 2, no traceback)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.identity import Identity, save_identity
from tclearn.pki import ca_cert_path
from tclearn.vault.smime import smime_paths

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    key = save_identity(Identity.generate("supervisor"), tmp_path / "keys")
    pw = tmp_path / "pass.txt"
    pw.write_text("vault passphrase\n")
    vault = tmp_path / "vault"
    code, out = _run("vault", "init", vault, "--key", key, "--passphrase-file", pw, "--member", "h1",
                     "--member", "h2", "--member", "h3", "--scrypt-n", "4096")
    assert code == 0, out
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(range(256)) * 40)
    return {"key": key, "pw": pw, "vault": vault, "model": model, "tmp": tmp_path}


def test_put_get_and_audit(site: dict[str, Path]) -> None:
    v, key, pw = site["vault"], site["key"], site["pw"]
    code, oid = _run("vault", "put", v, site["model"], "--key", key, "--passphrase-file", pw)
    assert code == 0
    oid = oid.strip()
    out = site["tmp"] / "back.safetensors"
    assert _run("vault", "get", v, oid, "--out", out, "--key", key, "--passphrase-file", pw)[0] == 0
    assert out.read_bytes() == site["model"].read_bytes()
    code, text = _run("audit", "verify", v)
    assert code == 0 and "journal ok: 3 entries" in text
    code, text = _run("audit", "show", v, "--json")
    assert [json.loads(line)["action"] for line in text.splitlines()] == ["policy.set", "put", "read"]
    wrong = site["tmp"] / "wrong.txt"
    wrong.write_text("nope\n")
    assert _run("vault", "get", v, oid, "--out", out, "--key", key, "--passphrase-file", wrong)[0] == 34
    assert _run("vault", "get", v, "ab" * 32, "--out", out, "--key", key, "--passphrase-file", pw)[0] == 35


def test_policy_set_and_show_at_a_time(site: dict[str, Path]) -> None:
    v, key, pw = site["vault"], site["key"], site["pw"]
    _, before = _run("vault", "policy", "show", v)
    doc = json.loads(before)
    doc["members"]["h3"]["revoked"] = True
    new = site["tmp"] / "policy.json"
    new.write_text(json.dumps(doc))
    code, text = _run("vault", "policy", "set", v, new, "--key", key, "--passphrase-file", pw, "--reason", "h3 left")
    assert code == 0 and "journal entry 1" in text
    assert json.loads(_run("vault", "policy", "show", v)[1])["members"]["h3"]["revoked"] is True
    first = json.loads(_run("audit", "show", v, "--json")[1].splitlines()[0])["time_ms"]
    assert json.loads(_run("vault", "policy", "show", v, "--at", str(first))[1]) == json.loads(before)
    assert _run("vault", "policy", "show", v, "--at", "2000-01-01T00:00:00Z")[0] == 39  # none in force then
    bad = site["tmp"] / "bad.json"
    bad.write_text('{"format": "x"}')
    assert _run("vault", "policy", "set", v, bad, "--key", key, "--passphrase-file", pw)[0] == 39


def test_audit_verify_detects_a_tampered_journal(site: dict[str, Path]) -> None:
    v = site["vault"]
    _run("vault", "put", v, site["model"], "--key", site["key"], "--passphrase-file", site["pw"])
    journal = v / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0])  # the put removed
    code, text = _run("audit", "verify", v)
    assert code == 32 and "cut" in text and "Traceback" not in text
    assert _run("audit", "who", v, "--version", "ab" * 32)[0] == 32


def test_offline_exchange_end_to_end(site: dict[str, Path], pki: Path) -> None:
    v, key, pw, tmp = site["vault"], site["key"], site["pw"], site["tmp"]
    oid = _run("vault", "put", v, site["model"], "--key", key, "--passphrase-file", pw)[1].strip()
    doc = json.loads(_run("vault", "policy", "show", v)[1])
    doc["grants"].append({"member": "h2", "version": oid, "actions": ["download"]})
    (tmp / "p.json").write_text(json.dumps(doc))
    assert _run("vault", "policy", "set", v, tmp / "p.json", "--key", key, "--passphrase-file", pw)[0] == 0
    mkey, mcert = smime_paths(pki, "h2")
    req, reply, model = tmp / "req.p7m", tmp / "reply.p7m", tmp / "got.safetensors"
    code, text = _run("smime", "request", "--key", mkey, "--cert", mcert, "--version", oid, "--ref", "case-42",
                      "--out", req)
    assert code == 0, text
    serve = ("smime", "serve", "--vault", v, "--key", key, "--passphrase-file", pw, "--ca", ca_cert_path(pki),
             "--in", req, "--out", reply)
    code, text = _run(*serve)
    assert code == 0, text
    code, text = _run("smime", "open", "--key", mkey, "--cert", mcert, "--in", reply, "--out", model,
                      "--expect-sha256", oid)
    assert code == 0 and model.read_bytes() == site["model"].read_bytes()
    code, text = _run(*serve)  # the same request again
    assert code == 33 and "replayed" in text
    h3key, h3cert = smime_paths(pki, "h3")
    _run("smime", "request", "--key", h3key, "--cert", h3cert, "--version", oid, "--out", req)
    assert _run(*serve)[0] == 31  # h3 may not download
    code, text = _run("audit", "who", v, "--version", oid, "--json")
    assert code == 0 and [r["member"] for r in json.loads(text)] == ["h2"]
    assert json.loads(text)[0]["refs"] == ["case-42"]
    shown = _run("audit", "show", v, "--member", "h3")[1]
    assert "refused" in shown and "no right to download" in shown


# --- level B/C genesis: the demo runs both, nodes run B with a vault (tests/levels/); the rest is refused ---

@pytest.mark.parametrize("command", [["demo", "--level", "B", "--task", "digits", "--network", "--out", "{tmp}/c"],
                                     ["demo", "--level", "C", "--network", "--out", "{tmp}/c"],
                                     ["coalition", "up", "--level", "C", "--out", "{tmp}/c"],
                                     ["demo", "--level", "D", "--out", "{tmp}/c"]])
def test_what_is_not_built_is_refused(command: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, [c.format(tmp=tmp_path) for c in command])
    assert result.exit_code == 2, result.output
    assert ("do not run here yet" in result.output and "tclearn demo --level" in result.output
            or "unknown security level 'D'" in result.output)
    assert "Traceback" not in result.output and not (tmp_path / "c").exists()


@pytest.mark.parametrize("level", ["B", "C"])
def test_a_node_refuses_a_level_b_genesis_without_a_vault_and_level_c(level: str, tmp_path: Path) -> None:
    from tclearn.identity import load_identity
    from tclearn.ledger.block import Block
    from tclearn.ledger.genesis import GenesisConfig, build_genesis
    from tclearn.node import setup_coalition

    configs = setup_coalition(tmp_path / "c", 2, task="digits")
    genesis_path = configs[0].genesis
    genesis = Block.from_bytes(genesis_path.read_bytes())
    cfg_b = dataclasses.replace(GenesisConfig.from_payload(genesis.payload["config"]), level=level, supervisor="m0")
    founder = load_identity(tmp_path / "c" / "identities" / "m0.key", "m0")
    genesis_path.write_bytes(build_genesis(cfg_b, genesis.model_hash, founder, genesis.timestamp).to_bytes())
    node_toml = tmp_path / "c" / "nodes" / "m1" / "node.toml"
    result = runner.invoke(app, ["node", "serve", "--config", str(node_toml), "--max-seconds", "1"])
    expected = "needs the supervisor's vault service" if level == "B" else "level-C coalitions do not run here yet"
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output


def test_quotas_read_strengths_from_a_verified_chain(tmp_path: Path) -> None:
    from tclearn.cli.vault import strengths_from_chain
    from tclearn.ledger.sqlite_store import SQLiteChainStore
    from tclearn.sim.build import synthetic_coalition

    setup = synthetic_coalition(4, 3, seed=5)  # a chain the protocol really committed
    assert setup.coalition.run_until(3, 300)
    blocks = setup.coalition.chain("m0")
    with SQLiteChainStore(tmp_path / "chain.db") as store:
        for b in blocks:
            store.append(b)
    from tclearn.consensus.certificate import check_certificate
    from tclearn.ledger.verify import verify_chain

    strengths = strengths_from_chain(tmp_path / "chain.db")
    assert strengths == verify_chain(blocks, certificate_check=check_certificate).strengths()
    assert set(strengths) == {"m0", "m1", "m2", "m3"} and len(set(strengths.values())) > 1  # contributions differ
    assert strengths_from_chain(None) is None


def test_an_anchor_detects_a_journal_rolled_back_with_its_head(site: dict[str, Path]) -> None:
    v = site["vault"]
    old_journal, old_head = (v / "journal.jsonl").read_bytes(), (v / "journal.jsonl.head").read_bytes()
    _run("vault", "put", v, site["model"], "--key", site["key"], "--passphrase-file", site["pw"])
    code, anchor = _run("audit", "head", v)
    assert code == 0 and anchor.startswith("1:")
    assert _run("audit", "verify", v, "--anchor", anchor.strip())[0] == 0
    (v / "journal.jsonl").write_bytes(old_journal)  # the put erased, journal and head rolled back together
    (v / "journal.jsonl.head").write_bytes(old_head)
    assert _run("audit", "verify", v)[0] == 0  # valid on its own: only the anchor can tell
    code, text = _run("audit", "verify", v, "--anchor", anchor.strip())
    assert code == 32 and "rolled back" in text
    assert _run("audit", "verify", v, "--anchor", "nonsense")[0] == 39
