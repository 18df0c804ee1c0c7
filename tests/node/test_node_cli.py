"""`tclearn coalition up / status --json / down` and `tclearn node status`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tclearn.cli.app import app
from tclearn.node import stop_nodes, wait_for_height

pytestmark = pytest.mark.slow


def test_coalition_up_status_down(tmp_path: Path) -> None:
    out = tmp_path / "c"
    runner = CliRunner()
    try:
        r = runner.invoke(app, ["coalition", "up", "--partners", "3", "--out", str(out), "--seed", "3"])
        assert r.exit_code == 0, r.output
        pids = json.loads((out / "pids.json").read_text())
        assert sorted(pids) == ["m0", "m1", "m2"]
        assert wait_for_height(out, 1, timeout_s=90)
        r = runner.invoke(app, ["coalition", "status", str(out), "--json"])
        assert r.exit_code == 0, r.output
        rows = json.loads(r.output)
        assert [row["member"] for row in rows] == ["m0", "m1", "m2"]
        for row in rows:
            assert {"member", "url", "head", "cert", "key", "ca"} <= set(row)
            assert row["url"].startswith("https://127.0.0.1:") and row["running"]
            assert len(row["head"]) == 64 and row["height"] >= 1
            assert Path(row["cert"]).is_file() and Path(row["key"]).is_file() and Path(row["ca"]).is_file()
        r = runner.invoke(app, ["node", "status", "--config", str(out / "nodes" / "m1" / "node.toml")])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["member"] == "m1"
        r = runner.invoke(app, ["coalition", "up", "--partners", "3", "--out", str(out)])
        assert r.exit_code == 2  # refuses to overwrite a coalition
        r = runner.invoke(app, ["coalition", "down", str(out)])
        assert r.exit_code == 0, r.output
        for pid in pids.values():
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1][:3]
        r = runner.invoke(app, ["coalition", "status", str(out)])
        assert r.exit_code == 0 and "down" in r.output
    finally:
        if (out / "pids.json").exists():
            stop_nodes(out, grace_s=2)
