"""`tclearn init`, `tclearn chain verify|show`: results, exit codes, and bad input that changes nothing."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "ledger"))

from chainmaker import random_chain  # noqa: E402
from tclearn.cli import app  # noqa: E402
from tclearn.cli.errors import EXIT_INTERNAL, exit_code_for, handle_errors  # noqa: E402
from tclearn.errors import (  # noqa: E402
    ConfigError, IdentityError, InvalidBlockError, LearningError, StoreError, TCLearnError, TransportError,
)
from tclearn.identity import Identity, load_identity  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore, open_store  # noqa: E402
from tclearn.ledger.verify import verify_chain  # noqa: E402

EXAMPLE = Path(__file__).parents[2] / "examples" / "coalition.toml"
runner = CliRunner()

CONFIG = """
[coalition]
id = "test"
level = "A"

[[members]]
id = "alpha"
[[members]]
id = "beta"
[[members]]
id = "gamma"

[model]
task = "digits"
seed = 3
[model.config]
hidden = 32

[hyperparams]
learning_rate = 0.1
optimizer = "sgd"
epochs = 1
min_batch_size = 8

[consensus]
lambda = 0.9
committee_size = 2

[test_set]
hash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"""


def tclearn(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "coalition.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def built_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chain") / "chain.db"
    with SQLiteChainStore(path) as store:
        for b in random_chain(41, 12).blocks:
            store.append(b)
    return path


# --- help everywhere -----------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["init"], ["chain"], ["chain", "verify"], ["chain", "show"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = tclearn(*command, "--help")
    assert code == 0 and "Usage" in out


# --- init -------------------------------------------------------------------------------

def test_init_generates_keys_and_stores_a_verified_genesis(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "node"
    code, stdout, stderr = tclearn("init", config, "--out", out, "--timestamp-ms", "1700000000000")
    assert code == 0, stderr
    assert "genesis" in stdout and "alpha" in stdout
    keys = out / "keys"
    for member in ("alpha", "beta", "gamma"):
        assert stat.S_IMODE((keys / f"{member}.key").stat().st_mode) == 0o600
        identity = load_identity(keys / f"{member}.key")
        assert (keys / f"{member}.pub").read_text().strip() == identity.public_key.hex()
    with open_store(out / "chain.db", read_only=True) as store:
        (genesis,) = list(store)
        state = verify_chain(store)
    assert genesis.timestamp == 1700000000000 and genesis.general == "alpha"
    members = {m["id"]: m["public_key"] for m in genesis.payload["config"]["members"]}
    assert members == {m: load_identity(keys / f"{m}.key").public_key for m in ("alpha", "beta", "gamma")}
    from tclearn.learning import get_task, model_hash

    task = get_task("digits", hidden=32)
    assert genesis.model_hash == model_hash(task.initial_state(3))
    assert state.config.model_config == task.config and state.config.architecture == task.architecture
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary chain left
    code, stdout, _ = tclearn("chain", "verify", out / "chain.db")
    assert code == 0 and "height 0" in stdout


def test_init_encrypts_keys_with_the_passphrase_file(config: Path, tmp_path: Path) -> None:
    (tmp_path / "pass").write_bytes(b"correct horse\n")
    code, _, stderr = tclearn("init", config, "--out", tmp_path / "n", "--passphrase-file", tmp_path / "pass")
    assert code == 0, stderr
    key = tmp_path / "n" / "keys" / "beta.key"
    with pytest.raises(IdentityError):
        load_identity(key)
    assert load_identity(key, passphrase=b"correct horse").member_id == "beta"


def test_init_uses_a_given_founder_key(config: Path, tmp_path: Path) -> None:
    founder = Identity.generate("alpha")
    from tclearn.identity import save_identity

    key = save_identity(founder, tmp_path / "mine")
    config.write_text(CONFIG.replace('id = "alpha"', f'id = "alpha"\npublic_key = "{founder.public_key.hex()}"'))
    code, _, stderr = tclearn("init", config, "--out", tmp_path / "n", "--founder-key", key)
    assert code == 0, stderr
    assert not (tmp_path / "n" / "keys" / "alpha.key").exists()
    with open_store(tmp_path / "n" / "chain.db") as store:
        verify_chain(store)


def test_the_example_config_founds_a_chain(tmp_path: Path) -> None:
    code, stdout, stderr = tclearn("init", EXAMPLE, "--out", tmp_path / "c")
    assert code == 0, stderr
    assert "bladder-ct-2026" in stdout
    code, stdout, _ = tclearn("chain", "verify", tmp_path / "c" / "chain.db")
    assert code == 0 and stdout.startswith("OK")


BAD_CONFIGS = {
    "not toml": ("[coalition\nid = 1", 2, "not valid TOML"),
    "missing section": (CONFIG.replace("[consensus]\nlambda = 0.9\ncommittee_size = 2\n", ""), 2, "[consensus]"),
    "missing field": (CONFIG.replace('optimizer = "sgd"\n', ""), 2, "hyperparams.optimizer"),
    "wrong type": (CONFIG.replace("epochs = 1", 'epochs = "one"'), 2, "hyperparams.epochs"),
    "wrong value": (CONFIG.replace("lambda = 0.9", "lambda = 1.5"), 2, "lambda"),
    "unknown field": (CONFIG.replace("seed = 3", "seed = 3\nsed = 4"), 2, "model.sed"),
    "unknown section": (CONFIG + "\n[extra]\nx = 1\n", 2, "[extra]"),
    "bad member id": (CONFIG.replace('id = "beta"', 'id = "Beta!"'), 2, "members[1].id"),
    "bad public key": (CONFIG.replace('id = "beta"', 'id = "beta"\npublic_key = "abc"'), 2, "public_key"),
    "unknown task": (CONFIG.replace('task = "digits"', 'task = "digitz"'), 2, "digits"),
    "bad task option": (CONFIG.replace("hidden = 32", "hiden = 32"), 2, "[model]"),
    "wrong architecture": (CONFIG.replace('task = "digits"', 'task = "digits"\narchitecture = "resnet"'), 2,
                           "architecture"),
    "a date in the model config": (CONFIG.replace("hidden = 32", "hidden = 32\nwhen = 2026-01-01"), 2, ""),
    "founder key needed": (CONFIG.replace(
        'id = "alpha"', f'id = "alpha"\npublic_key = "{Identity.from_seed("alpha", b"x").public_key.hex()}"'), 4,
        "--founder-key"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_bad_config_is_one_clear_line_and_writes_nothing(config: Path, tmp_path: Path, case: str) -> None:
    text, expected_code, needle = BAD_CONFIGS[case]
    config.write_text(text)
    out = tmp_path / "node"
    code, stdout, stderr = tclearn("init", config, "--out", out)
    assert code == expected_code, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and needle in stderr
    assert not out.exists()


def test_a_missing_config_or_passphrase_file_is_refused(tmp_path: Path, config: Path) -> None:
    code, _, stderr = tclearn("init", tmp_path / "nope.toml", "--out", tmp_path / "n")
    assert code == 2 and "not found" in stderr
    (tmp_path / "empty").write_bytes(b"")
    code, _, stderr = tclearn("init", config, "--out", tmp_path / "n", "--passphrase-file", tmp_path / "empty")
    assert code == 4 and "empty" in stderr
    code, _, stderr = tclearn("init", config, "--out", tmp_path / "n", "--passphrase-file", tmp_path / "none")
    assert code == 4
    assert not (tmp_path / "n").exists()


def test_init_never_overwrites_a_chain_or_a_key(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "node"
    assert tclearn("init", config, "--out", out)[0] == 0
    before = snapshot(out)
    code, _, stderr = tclearn("init", config, "--out", out)
    assert code == 3 and "already exists" in stderr
    (out / "chain.db").unlink()
    before = snapshot(out)
    code, _, stderr = tclearn("init", config, "--out", out)
    assert code == 4 and "alpha.key already exists" in stderr
    assert snapshot(out) == before


def test_init_refuses_an_out_path_that_is_a_file(config: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, _, stderr = tclearn("init", config, "--out", tmp_path / "file")
    assert code == 3 and "not a directory" in stderr


# --- chain verify ---------------------------------------------------------------------

def test_verify_reports_a_valid_chain_with_its_height(built_chain: Path) -> None:
    before = built_chain.read_bytes()
    code, stdout, _ = tclearn("chain", "verify", built_chain, "--signatures-only")
    assert code == 0
    assert stdout.count("\n") == 1 and stdout.startswith("OK") and "height 11" in stdout
    assert built_chain.read_bytes() == before


def test_verify_checks_committees_by_default(built_chain: Path) -> None:
    """chainmaker draws its committees at random, not as the protocol does: the default check refuses them."""
    code, stdout, _ = tclearn("chain", "verify", built_chain)
    assert code == 1 and stdout.startswith("INVALID") and "block 1:" in stdout


def test_verify_names_the_damaged_block(built_chain: Path, tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(built_chain.read_bytes())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER blocks_no_update")
    data = conn.execute("SELECT data FROM blocks WHERE idx = 7").fetchone()[0]
    with open_store(built_chain, read_only=True) as store:
        model = store.get(7).model_hash.encode()
    conn.execute("UPDATE blocks SET data = ? WHERE idx = 7", (data.replace(model, b"f" * 64),))
    conn.close()
    code, stdout, _ = tclearn("chain", "verify", path, "--signatures-only")
    assert code == 1 and "block 7: block_hash does not match its contents" in stdout and stdout.count("\n") == 1


def test_verify_refuses_a_foreign_genesis(built_chain: Path) -> None:
    code, stdout, _ = tclearn("chain", "verify", built_chain, "--signatures-only", "--genesis", "0" * 64)
    assert code == 1 and "block 0: genesis is not the coalition's genesis" in stdout


@pytest.mark.parametrize("what", ["missing", "directory", "text", "other sqlite", "empty"])
@pytest.mark.parametrize("command", [["chain", "verify"], ["chain", "show"], ["chain", "show", "--json"]])
def test_what_is_not_a_chain_is_a_store_error(tmp_path: Path, what: str, command: list[str]) -> None:
    path = tmp_path / "x.db"
    if what == "directory":
        path.mkdir()
    elif what == "text":
        path.write_text("hello\n" * 100)
    elif what == "other sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (a)")
        conn.commit()
        conn.close()
    elif what == "empty":
        path.write_bytes(b"")
    before = snapshot(tmp_path)
    code, stdout, stderr = tclearn(*command[:2], path, *command[2:])
    assert code == 3, stderr
    assert stdout == "" and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert snapshot(tmp_path) == before


# --- chain show -----------------------------------------------------------------------

def test_show_prints_a_table_of_blocks(built_chain: Path) -> None:
    code, stdout, _ = tclearn("chain", "show", built_chain)
    assert code == 0
    blocks = list(SQLiteChainStore(built_chain, read_only=True))
    for b in blocks:
        assert b.block_hash[:12] in stdout and b.kind in stdout
    assert "votes" in stdout and "12 blocks" in stdout


def test_show_json_lists_every_field_with_bytes_as_hex(built_chain: Path) -> None:
    code, stdout, _ = tclearn("chain", "show", built_chain, "--json")
    assert code == 0
    listed = json.loads(stdout)
    with open_store(built_chain, read_only=True) as store:
        blocks = list(store)
    assert [b["index"] for b in listed] == list(range(12))
    for entry, block in zip(listed, blocks):
        assert entry["block_hash"] == block.block_hash
        assert entry["general_signature"] == block.general_signature.hex()
        assert set(entry) == set(block.to_dict()) | {"reverted_by", "change", "note"}  # + the model's course
        for vote, record in zip(entry["block_votes"], block.block_votes):
            assert vote["signature"] == record.signature.hex()


def test_show_from_and_limit(built_chain: Path) -> None:
    code, stdout, _ = tclearn("chain", "show", built_chain, "--json", "--from", "3", "--limit", "4")
    assert code == 0 and [b["index"] for b in json.loads(stdout)] == [3, 4, 5, 6]
    code, _, stderr = tclearn("chain", "show", built_chain, "--from", "-1")
    assert code == 2


def test_the_installed_command_exits_with_the_documented_code(built_chain: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("tclearn")
    if not exe.exists():
        pytest.skip("tclearn is not installed in this environment")
    ok = subprocess.run([exe, "chain", "verify", built_chain, "--signatures-only"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK")
    missing = subprocess.run([exe, "chain", "verify", tmp_path / "none.db"], capture_output=True, text=True)
    assert missing.returncode == 3 and missing.stderr == f"error: no chain store at {tmp_path / 'none.db'}\n"


# --- the exit-code map ------------------------------------------------------------------

def test_errors_map_to_their_documented_codes() -> None:
    assert exit_code_for(InvalidBlockError(3, "x")) == 1
    assert exit_code_for(ConfigError("x")) == 2
    assert exit_code_for(StoreError("x")) == 3
    assert exit_code_for(FileNotFoundError(2, "No such file", "f")) == 3
    assert exit_code_for(IdentityError("x")) == 4
    assert exit_code_for(TransportError("x")) == 5
    assert exit_code_for(LearningError("x")) == 6
    assert exit_code_for(TCLearnError("x")) == 9
    assert exit_code_for(ZeroDivisionError()) == EXIT_INTERNAL


def test_an_unexpected_exception_is_an_internal_error_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    @handle_errors
    def broken() -> None:
        raise KeyError("surprise")

    with pytest.raises(typer.Exit) as exit_:
        broken()
    assert exit_.value.exit_code == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("internal error") and err.count("\n") == 1


def test_a_failure_while_writing_undoes_what_init_wrote(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "node"
    out.mkdir()
    (out / "keys").write_text("a file where the keys directory should be")
    before = snapshot(out)
    code, _, stderr = tclearn("init", config, "--out", out)
    assert code == 3 and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["keys"]
