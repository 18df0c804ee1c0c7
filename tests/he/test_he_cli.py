"""`tclearn he`: keygen, encrypt-model, predict, decrypt-result end to end; refusals exit with their codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli import app
from tclearn.identity import Identity, save_identity

runner = CliRunner()


def _run(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.slow
def test_he_commands_end_to_end(tmp_path: Path) -> None:
    sup = tmp_path / "sup"
    skey = save_identity(Identity.from_seed("supervisor", b"s"), tmp_path / "keys")
    alice = Identity.from_seed("hospital-a", b"a")
    akey = save_identity(alice, tmp_path / "keys")
    member = f"hospital-a={alice.public_key.hex()}"
    assert _run("he", "keygen", sup)[0] == 0
    assert (sup / "secret.ctx").stat().st_mode & 0o077 == 0
    code, out = _run("he", "keygen", sup)
    assert code == 49 and "generated once" in out
    for task, model_id, limit in (("breast-cancer", "lr-1", 12),):  # digits: same path, covered in-process
        model = tmp_path / f"{model_id}.hem"
        assert _run("he", "encrypt-model", sup, "--key", skey, "--task", task, "--id", model_id, "--out", model,
                    "--epochs", "1")[0] == 0
        req = tmp_path / f"{model_id}.req"
        assert _run("he", "predict", model, "--public", sup / "public.ctx", "--key", akey, "--task", task,
                    "--partner", "1", "--limit", limit, "--out", req)[0] == 0
        logits = tmp_path / f"{model_id}.json"
        code, out = _run("he", "decrypt-result", sup, "--key", skey, "--request", req, "--member", member,
                         "--out", logits)
        assert code == 0 and f"granted: {limit} predictions" in out
        assert len(json.loads(logits.read_text())["predictions"]) == limit
    code, out = _run("he", "decrypt-result", sup, "--key", skey, "--request", tmp_path / "lr-1.req", "--member",
                     member, "--budget", "20")
    assert code == 41 and "budget" in out  # 12 of 20 used: the journal remembers across runs
    code, out = _run("he", "decrypt-result", sup, "--key", skey, "--request", tmp_path / "lr-1.hem", "--member",
                     member)
    assert code == 41  # a model file is not a signed request
    code, out = _run("he", "predict", tmp_path / "lr-1.hem", "--public", sup / "secret.ctx", "--key", akey, "--task",
                     "breast-cancer", "--partner", "0", "--out", tmp_path / "x.req")
    assert code == 43 and "secret key" in out
    lines = (sup / "journal.jsonl").read_text().splitlines()
    outcomes = [json.loads(x)["outcome"] for x in lines if json.loads(x)["action"] == "he.decrypt"]
    assert outcomes == ["granted", "refused", "refused"]
