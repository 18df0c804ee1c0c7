"""Hostile peers against real node processes: honest members keep committing while each attack runs.

One coalition of four digits nodes over mutual TLS on loopback; m3 serves
through a proxy (`tclearn.attacks.network.proxied_coalition`) that the model
attacks switch on. Each attack of `tclearn.attacks.network.ATTACKS` runs for
`WINDOW_S` seconds against m0 (or through m3's proxy); the bound: the lowest
height among the honest members m0, m1, m2 grows by at least `MIN_BLOCKS`
meanwhile (idle, this coalition commits about one block a second on two
cores). A new attack is one more name in ATTACKS and, if it needs one, one
more check below.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tclearn.attacks.network import ATTACKS, make_attack, proxied_coalition
from tclearn.node import node_status, start_nodes, stop_nodes, wait_for_height

pytestmark = pytest.mark.slow

WINDOW_S = 25.0
MIN_BLOCKS = 3
HONEST = ("m0", "m1", "m2")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("hostile") / "c"
    files = proxied_coalition(out, 4, seed=7, evil="m3")
    try:
        start_nodes(out)
        assert wait_for_height(out, 2, 180), "the coalition did not start committing"
        yield out, files
    finally:
        stop_nodes(out, grace_s=3)
        files["_proxy"].stop()


def _low(out: Path) -> int:
    heights = [s["height"] for m in HONEST if (s := node_status(out, m)) is not None]
    return min(heights) if len(heights) == len(HONEST) else -1


def _log(out: Path, member: str) -> list[dict[str, Any]]:
    lines = (out / "nodes" / member / "data" / "node.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("attack", ATTACKS)
def test_honest_members_keep_committing_under_attack(running: tuple[Path, dict[str, Any]], attack: str) -> None:
    out, files = running
    before = _low(out)
    started_ts = time.time()
    attacker = make_attack(attack, files)
    attacker.start()
    try:
        time.sleep(WINDOW_S)
        during = _low(out)
    finally:
        attacker.stop()
    assert during - before >= MIN_BLOCKS, f"{attack}: {during - before} blocks in {WINDOW_S:.0f} s ({before}->{during})"
    m0_log = [r for r in _log(out, "m0") if r["ts"] >= started_ts]
    if attack == "stalled-handshakes":
        refusals = [r for r in m0_log if r["event"] in ("connection_refused", "tls_refused", "peer_refused")]
        assert len(refusals) <= 5 * 3 * (WINDOW_S / 10 + 2), f"{len(refusals)} refusal lines"
        time.sleep(11)  # the summary of the last interval
        summaries = [r for r in _log(out, "m0") if r["event"] == "refusals_summary" and r["ts"] >= started_ts]
        assert summaries and sum(sum(r["counts"].values()) for r in summaries) > 100, summaries
    if attack in ("slow-model", "unfetchable-model"):
        # m3's candidates could not be fetched: each validator spent one deadline on each, then voted reject
        fails: dict[tuple[str, str], int] = {}
        for m in HONEST:
            for r in _log(out, m):
                if r["event"] == "model_fetch_failed" and r["ts"] >= started_ts and r["peer"] == "m3":
                    fails[(m, r["model"])] = fails.get((m, r["model"]), 0) + 1
        held = attacker.report().get("models_held", 0)
        assert held > 0, "m3 proposed nothing during the window: the attack was not played"
        assert fails, f"{held} model transfers held but no validator gave up on one"
        assert all(n <= 2 for n in fails.values()), fails  # one deadline per model and validator (two at most)
