"""`tclearn pki init / issue / list / fingerprint`: output, files, exit codes, no tracebacks."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.pki import cert_fingerprint, load_cert, member_id_from_cert

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["pki", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout, result.stderr


def test_init_issue_list_fingerprint(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    code, out, _ = _run("init", str(pki))
    assert code == 0 and "fingerprint:" in out
    code, out, _ = _run("issue", str(pki), "alice", "--host", "node-a.example", "--host", "127.0.0.1", "--days", "7")
    assert code == 0, out
    key, crt = pki / "members" / "alice.key", pki / "members" / "alice.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert member_id_from_cert(crt.read_bytes()) == "alice"
    fingerprint = cert_fingerprint(crt.read_bytes())
    assert fingerprint in out
    code, out, _ = _run("list", str(pki))
    assert code == 0 and out.startswith(f"alice\t{fingerprint}")
    code, out, _ = _run("fingerprint", str(crt))
    assert code == 0 and out.strip() == fingerprint


def test_errors_have_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    code, _, err = _run("issue", str(pki), "alice")
    assert code == 21 and "no coalition CA" in err and "Traceback" not in err
    assert _run("init", str(pki))[0] == 0
    code, _, err = _run("init", str(pki))
    assert code == 22 and "already holds a CA" in err
    assert _run("issue", str(pki), "alice")[0] == 0
    code, _, err = _run("issue", str(pki), "alice")
    assert code == 22 and "already has" in err
    code, _, err = _run("issue", str(pki), "Not/AnId")
    assert code == 24 and "invalid member id" in err
    code, _, err = _run("issue", str(pki), "bob", "--host", "no such host")
    assert code == 24
    code, _, err = _run("fingerprint", str(tmp_path / "missing.crt"))
    assert code == 25 and "cannot read" in err


def test_passphrase_file(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    good, bad, empty = tmp_path / "good", tmp_path / "bad", tmp_path / "empty"
    good.write_bytes(b"s3cret passphrase\n")
    bad.write_bytes(b"wrong\n")
    empty.write_bytes(b"")
    assert _run("init", str(pki), "--passphrase-file", str(good))[0] == 0
    assert b"ENCRYPTED" in (pki / "ca.key").read_bytes()
    code, _, err = _run("issue", str(pki), "alice")
    assert code == 23 and "passphrase" in err
    code, _, err = _run("issue", str(pki), "alice", "--passphrase-file", str(bad))
    assert code == 23 and "wrong passphrase" in err
    code, _, err = _run("issue", str(pki), "alice", "--passphrase-file", str(empty))
    assert code == 23 and "empty" in err
    code, out, _ = _run("issue", str(pki), "alice", "--passphrase-file", str(good))
    assert code == 0, out
    assert load_cert((pki / "members" / "alice.crt").read_bytes())
