"""Finding 7: `tclearn node …` and `tclearn coalition …` fail with a one-line message and a documented code.

Before: bad configs, keys or stores printed tracebacks and exited 1; a
non-UTF-8 config exited 10 ("a bug"); a failed `coalition up` left a
half-built folder that blocked a rerun; `coalition down` on an empty folder
said "stopped".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.cli.errors import EXIT_IDENTITY, EXIT_TRANSPORT, EXIT_USAGE
from tclearn.node import setup_coalition

runner = CliRunner()


def tclearn(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, out


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "c"
    setup_coalition(out, 2, task="digits", seed=4)
    return out


def _config(coalition: Path, tmp_path: Path, replace: tuple[str, str] | None = None) -> Path:
    text = (coalition / "nodes" / "m0" / "node.toml").read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", [["node", "serve"], ["node", "status"], ["node", "propose"]])
def test_bad_node_configs_exit_2_without_a_traceback(command: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml [")
    code, out = tclearn(*command, "--config", bad)
    assert code == EXIT_USAGE and "error:" in out
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[node]\nmember_id = \"h\u00f4pital\"\n".encode("latin-1"))
    code, out = tclearn(*command, "--config", latin)
    assert code == EXIT_USAGE and "UTF-8" in out, out
    empty = tmp_path / "empty.toml"
    empty.write_text("[peers]\n")
    code, out = tclearn(*command, "--config", empty)
    assert code == EXIT_USAGE, out


def test_node_serve_with_a_missing_key_exits_with_the_key_code(coalition: Path, tmp_path: Path) -> None:
    key = next((coalition / "identities").iterdir())
    cfg = _config(coalition, tmp_path, (str(key.parent), str(tmp_path / "nowhere")))
    code, out = tclearn("node", "serve", "--config", cfg, "--max-seconds", "0.1")
    assert code == EXIT_IDENTITY, out


def test_node_serve_with_a_damaged_genesis_or_store_fails_cleanly(coalition: Path, tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.block"
    genesis.write_bytes(b"\xa1not a block")
    cfg = _config(coalition, tmp_path, (str(coalition / "genesis.block"), str(genesis)))
    code, out = tclearn("node", "serve", "--config", cfg, "--max-seconds", "0.1")
    assert code not in (0, 10) and "error:" in out, out
    data = tmp_path / "data"
    data.mkdir()
    (data / "chain.sqlite").write_bytes(b"this is not SQLite" * 100)
    cfg = _config(coalition, tmp_path, (str(coalition / "nodes" / "m0" / "data"), str(data)))
    code, out = tclearn("node", "serve", "--config", cfg, "--max-seconds", "0.1")
    assert code not in (0, 10) and "error:" in out, out


def test_status_and_propose_of_a_stopped_node_exit_with_the_transport_code(coalition: Path) -> None:
    cfg = coalition / "nodes" / "m1" / "node.toml"
    for command in ("status", "propose"):
        code, out = tclearn("node", command, "--config", cfg)
        assert code == EXIT_TRANSPORT and "did not answer" in out, out


def test_the_node_process_entry_point_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = dict(os.environ, PYTHONPATH=src)
    proc = subprocess.run([sys.executable, "-m", "tclearn.node", "serve", "--config", str(bad)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == EXIT_USAGE and "Traceback" not in proc.stderr, proc.stderr


def test_coalition_commands_on_a_folder_that_holds_no_coalition(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = tclearn("coalition", "down", empty)
    assert code == EXIT_USAGE and "stopped" not in out and "no coalition" in out, out
    code, out = tclearn("coalition", "status", empty)
    assert code == EXIT_USAGE and "no coalition" in out, out


def test_a_failed_coalition_up_leaves_nothing_behind(tmp_path: Path) -> None:
    out_dir = tmp_path / "c"
    code, out = tclearn("coalition", "up", "--partners", "2", "--out", out_dir, "--task", "no-such-task", "--wait", "0")
    assert code == EXIT_USAGE, out
    assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(p.name for p in out_dir.iterdir())
    code, out = tclearn("coalition", "up", "--partners", "2", "--out", out_dir, "--propose", "sometimes",
                        "--wait", "0")
    assert code == EXIT_USAGE, out
    assert not out_dir.exists() or not any(out_dir.iterdir())
    setup_coalition(out_dir, 2, task="digits", seed=5)  # the rerun works
    assert (out_dir / "coalition.json").is_file()
    shutil.rmtree(out_dir)
