"""`tclearn demo --serve`: the one-process demo's dashboard follows the run, then the exported chain (level B: the journal)."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tclearn.dashboard.for_demo import DemoDashboard
from tclearn.demo.engine import DemoOptions, run_coalition
from tclearn.ledger.sqlite_store import SQLiteChainStore

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_demo_serves_its_chain_while_it_runs_and_after(tmp_path: Path) -> None:
    dashboard = DemoDashboard("demo-digits-3", port=0)
    seen: list[int] = []
    polling = threading.Event()

    def poll() -> None:  # what the page does: ask for new blocks while the coalition trains
        while not polling.is_set():
            if dashboard.url is not None:
                query = f"since={seen[-1]}" if seen else "before=1"  # genesis first, then every block after
                seen.extend(b["index"] for b in _get(dashboard.url + f"api/blocks?{query}")["blocks"])
            polling.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        run = run_coalition(DemoOptions(task="digits", partners=3, rounds=3, centralized=False, seed=3,
                                        out=tmp_path, level="B"), watch=dashboard.watch)
        dashboard.set_reference(0.97)
        polling.set()
        poller.join(5)
        assert dashboard.url is not None and dashboard.url.startswith("http://127.0.0.1:")
        # the page's next poll: the last block may have landed after the poller's last look
        assert seen, "the poller never saw the genesis block"
        seen.extend(b["index"] for b in _get(dashboard.url + f"api/blocks?since={seen[-1]}")["blocks"])
        with SQLiteChainStore(tmp_path / "chain.db", create=False, read_only=True) as chain:
            height = chain.height()
        assert height == len(run.blocks) and seen == list(range(height + 1))  # every block, each once, in order
        summary = _get(dashboard.url + "api/summary")
        assert summary["height"] == height and summary["reference"] == 0.97 and summary["member"] == "hospital-a"
        members = _get(dashboard.url + "api/members")
        assert {m["member"] for m in members["members"]} == {"hospital-a", "hospital-b", "hospital-c"}
        with urllib.request.urlopen(dashboard.url + f"blocks/{height}", timeout=10) as r:
            assert "✔ verifies" in r.read().decode()
        # level B: the supervisor's journal, under genesis's key, holding every head the proposals anchored
        journal = _get(dashboard.url + "api/journal?action=publish")
        assert "genesis's supervisor key" in journal["status"] and "journal heads the chain anchors" in journal["status"]
        assert journal["entries"] and {e["action"] for e in journal["entries"]} == {"publish"}
        path = next(tmp_path.rglob("journal.jsonl"))
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:3]))  # rolled back: the anchored heads are gone
        assert "does NOT verify" in _get(dashboard.url + "api/journal")["status"]
    finally:
        polling.set()
        dashboard.stop()


def test_serve_refuses_network_and_a_busy_port_with_one_line(tmp_path: Path) -> None:
    import socket

    from typer.testing import CliRunner

    from tclearn.cli.app import app

    runner = CliRunner()
    r = runner.invoke(app, ["demo", "--serve", "--network", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "one-process demo" in r.output and "Traceback" not in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = runner.invoke(app, ["demo", "--task", "digits", "--partners", "2", "--rounds", "1", "--no-centralized",
                                "--serve", "--serve-port", str(busy.getsockname()[1]), "--out", str(tmp_path / "d")])
    assert r.exit_code == 2 and "cannot listen" in r.output and "Traceback" not in r.output
