"""The dashboard in a real browser against real node processes over mutual TLS.

Three members on loopback, each its own `python -m tclearn.node` process; m2
runs the production node with its training step wrapped to publish
sign-flipped increments (`degrading_node.py`), so the committee rejects them.
Headless Chromium (Debian's, driven by Playwright) holds m0's member
certificate and opens m0's dashboard on m0's mutual-TLS port: the page loads,
the timeline lists the committed blocks (checked against m0's chain file), the
rejected increment appears without a reload and is shown as rejected with its
reason and votes, a block's page says it verifies, the members page shows
each peer's head, and a certificate from another CA gets no page at all.
Screenshots of each page go to $TCLEARN_SCREENSHOTS (docs/screenshots/ for the README).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tclearn.dashboard.settings import DashboardSettings
from tclearn.identity import Identity
from tclearn.node import chains, node_status, setup_coalition, start_node, stop_nodes
from tclearn.node.launcher import _pids, _save_pids, free_ports
from tclearn.pki import init_ca, issue_member
from tclearn.vault.journal import Journal

from dash_browser import SCREENSHOTS, chromium_path, launch

pytestmark = pytest.mark.slow
playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"



SUPERVISOR = Identity.from_seed("supervisor", b"dashboard-test")


def _journal(path: Path, chain_models: list[str]) -> None:
    """A supervisor's audit journal, written by the vault's own Journal class."""
    supervisor = SUPERVISOR
    clock = iter(range(1_767_225_600_000, 1_767_225_600_000 + 10**9, 60_000))
    journal = Journal(path, supervisor, lambda: next(clock), fsync=False)
    rows: list[tuple[str, str, str | None, str, str, str, dict[str, Any] | None]] = []
    for n, model in enumerate(chain_models[:4]):
        rows += [("m1", "download", model, "granted", "", f"dl-{n}", None),
                 ("m2", "download", model, "refused", "quota of downloads used up", f"dl-{n}", None),
                 ("m0", "use", model, "granted", "", f"use-{n}", None)]
    rows.append(("m2", "download", chain_models[0], "refused", "<script>alert('x')</script> not allowed", "evil", None))
    journal.append_many(rows)
    journal.close()


@pytest.fixture(scope="module")
def coalition(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    out = tmp_path_factory.mktemp("dash") / "coalition"
    configs = setup_coalition(out, 3, task="digits", seed=2)
    (port,) = free_ports(1)
    vault = out / "vault"
    vault.mkdir()
    (vault / "supervisor.pub").write_text(SUPERVISOR.public_key.hex() + "\n")  # as `tclearn vault init` does
    m0 = dataclasses.replace(configs[0], dashboard=DashboardSettings(
        port=port, journal=vault / "journal.jsonl", supervisor_key=vault / "supervisor.pub"))
    (out / "nodes" / "m0" / "node.toml").write_text(m0.to_toml())
    m2 = dataclasses.replace(configs[2], self_check=False)  # an attacker does not check its own candidate
    (out / "nodes" / "m2" / "node.toml").write_text(m2.to_toml())
    start_node(out, "m0")
    start_node(out, "m1")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(SRC) + os.pathsep + str(HERE))
    with open(out / "nodes" / "m2" / "stdout.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, str(HERE / "degrading_node.py"), str(out / "nodes" / "m2" / "node.toml")],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    pids = _pids(out)
    pids["m2"] = proc.pid
    _save_pids(out, pids)
    rows = json.loads((out / "coalition.json").read_text())
    other = out / "other-ca"  # a certificate that no member's CA issued
    init_ca(other, name="Another coalition CA")
    stranger = issue_member(other, "m0", hosts=("127.0.0.1",))
    intruder = issue_member(out / "pki", "intruder", hosts=("127.0.0.1",))  # our CA, not a genesis member
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (node_status(out, "m0") or {}).get("height", 0) < 1:
            if proc.poll() is not None:  # the degrading node died: say why at once
                log_tail = (out / "nodes" / "m2" / "stdout.log").read_text()[-2000:]
                pytest.fail(f"degrading_node.py exited with {proc.returncode}:\n{log_tail}")
            time.sleep(0.5)
        assert (node_status(out, "m0") or {}).get("height", 0) >= 1, "m0 committed no block in 120 s"
        yield {"out": out, "rows": {r["member"]: r for r in rows}, "loopback": port, "vault": vault,
               "stranger": stranger, "intruder": intruder}
    finally:
        stop_nodes(out, grace_s=3)


def _member_context(browser: Any, coalition: dict[str, Any], member: str = "m0") -> Any:
    row = coalition["rows"][member]
    return browser.new_context(
        ignore_https_errors=True,  # the node's certificate is the coalition CA's, which Chromium does not know
        viewport={"width": 1400, "height": 1000},
        client_certificates=[{"origin": coalition["rows"]["m0"]["url"], "certPath": row["cert"], "keyPath": row["key"]}])


def _shot(page: Any, name: str, full_page: bool = False) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def test_dashboard_over_mutual_tls_in_a_real_browser(coalition: dict[str, Any]) -> None:
    chromium_path()
    out, url = coalition["out"], coalition["rows"]["m0"]["url"]
    with playwright_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = _member_context(browser, coalition).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "/")
            loaded = int(page.get_attribute("body", "data-height") or "-1")
            shown = [int(i) for i in page.locator("#timeline tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.index)")]
            committed = chains(out)["m0"]
            assert loaded >= 1 and shown == list(range(loaded, -1, -1))  # newest first, every block
            assert [page.get_attribute(f'#timeline tr[data-index="{b.index}"]', "data-kind")
                    for b in committed[:loaded + 1]] == [b.kind for b in committed[:loaded + 1]]

            # no reload from here on: new blocks (a rejected one among them, which may already have been
            # there at load) must appear by themselves
            page.locator(f'#timeline tr[data-index="{loaded + 1}"]').wait_for(timeout=90_000)
            rejected = page.locator('#timeline tr[data-kind="rejected"]').first
            rejected.wait_for(timeout=90_000)
            newest = int(page.locator("#timeline tbody tr").first.get_attribute("data-index") or "0")
            assert newest > loaded, "no block appeared without a reload"
            assert "rejected" in rejected.inner_text() and "validators rejected" in rejected.inner_text()
            page.wait_for_function("""() => Number(document.querySelector('.card[data-card="rejected"] .value')
                                                    .textContent) >= 1""")  # the cards follow too
            page.wait_for_selector("#score-chart[data-drawn]")
            _shot(page, "timeline")

            index = int(rejected.get_attribute("data-index") or "0")
            block = next(b for b in chains(out)["m0"] if b.index == index)
            assert block.kind == "rejected" and block.contributor == "m2"
            page.goto(f"{url}/blocks/{index}")
            assert "verifies" in page.inner_text("#verdict") and "NOT" not in page.inner_text("#verdict")
            assert block.block_hash in page.content()
            votes = page.locator("#votes tbody tr")
            assert votes.count() == len(block.quality_votes) and "reject" in votes.first.inner_text()
            assert all(v.validator in page.inner_text("dl.fields") for v in block.quality_votes)  # committee drawn
            _shot(page, "block", full_page=True)

            page.goto(url + "/members")
            page.wait_for_selector("#strength-chart[data-drawn]")
            for member in ("m1", "m2"):
                assert "up" in page.inner_text(f'#members tr[data-member="{member}"]')
            _shot(page, "members", full_page=True)

            # level B/C: the supervisor's journal, verified, filtered; a peer's text stays text
            _journal(coalition["vault"] / "journal.jsonl", [b.model_hash for b in chains(out)["m0"]])
            page.goto(url + "/journal?member=m2&outcome=refused")
            assert page.inner_text("#journal-status").startswith("verified")
            actors = page.locator("#journal tbody tr td:nth-child(3)").all_inner_texts()
            assert actors and set(actors) == {"m2"}
            assert "<script>alert('x')</script> not allowed" in page.inner_text("#journal")
            page.goto(url + "/journal")
            _shot(page, "journal")
            assert errors == []

            # refused certificates get no page: another CA's (handshake refused), the coalition CA's for a
            # non-member (not on the genesis allow-list), none at all. Playwright makes the TLS connection for
            # a context with client certificates and reports a refused handshake as its own 503 page.
            for who in ("stranger", "intruder"):
                files = coalition[who]
                refused = browser.new_context(ignore_https_errors=True, client_certificates=[
                    {"origin": url, "certPath": str(files.cert), "keyPath": str(files.key)}]).new_page()
                try:
                    answer = refused.goto(url + "/", timeout=15_000)
                    assert answer is not None and answer.status == 503, who
                    assert "client-certificate error" in refused.content() and refused.locator("#timeline").count() == 0
                except playwright_api.Error:
                    pass  # refused before any answer: also no page
            with pytest.raises(playwright_api.Error):
                browser.new_context(ignore_https_errors=True).new_page().goto(url + "/", timeout=15_000)
        finally:
            browser.close()
    log = (out / "nodes" / "m0" / "data" / "node.log").read_text()
    assert '"tls_refused"' in log and '"peer_refused"' in log  # the node refused both certificates itself
    # the same pages on the loopback-only plain-HTTP port of node.toml's [dashboard]
    with urllib.request.urlopen(f"http://127.0.0.1:{coalition['loopback']}/api/summary", timeout=10) as r:
        summary = json.loads(r.read())
    assert summary["member"] == "m0" and summary["height"] >= index
