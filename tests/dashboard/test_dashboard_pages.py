"""The dashboard's pages and API without a browser: rows, bounds, escaping, verification, journal filters."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tclearn.dashboard import ChainIndex, DashboardSource, JournalView, LoopbackServer, mount
from tclearn.dashboard.pages import PAGE_BLOCKS
from tclearn.dashboard.routes import API_MAX_BLOCKS, STATIC_FILES
from tclearn.dashboard.settings import DashboardSettings, dashboard_settings
from tclearn.errors import ConfigError
from tclearn.identity import Identity
from tclearn.ledger.store import MemoryChainStore
from tclearn.transport.errors import RequestError
from tclearn.transport.router import Query, Router
from tclearn.vault.journal import Journal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))
from chainmaker import ChainMaker, random_chain  # noqa: E402


def _serve(store: MemoryChainStore, **kwargs: Any) -> tuple[Router, DashboardSource]:
    source = DashboardSource(ChainIndex(store), title=kwargs.pop("title", "test-coalition"), member="m0", **kwargs)
    router = Router()
    mount(router, source)
    return router, source


def _get(router: Router, path: str, **query: str) -> tuple[int, str, bytes]:
    return router.dispatch("GET", path, "m1", b"", Query(query))


@pytest.fixture
def chain() -> ChainMaker:
    return random_chain(11, 130)


@pytest.fixture
def store(chain: ChainMaker) -> MemoryChainStore:
    store = MemoryChainStore()
    for block in chain.blocks:
        store.append(block)
    return store


def test_timeline_shows_the_newest_page_and_pages_back(store: MemoryChainStore, chain: ChainMaker) -> None:
    router, _ = _serve(store)
    status, ctype, body = _get(router, "/")
    html = body.decode()
    assert status == 200 and ctype.startswith("text/html")
    shown = [int(part.split('"')[0]) for part in html.split('data-index="')[1:]]
    assert shown == list(range(129, 129 - PAGE_BLOCKS, -1))
    rejected = next(b for b in reversed(chain.blocks) if b.kind == "rejected" and b.index > 129 - PAGE_BLOCKS)
    row = html.split(f'data-index="{rejected.index}"')[1].split("</tr>")[0]
    assert "kind-rejected" in row and "validators rejected" in row and "G fell from" in row
    older = _get(router, "/", before="30")[2].decode()
    assert [int(p.split('"')[0]) for p in older.split('data-index="')[1:]] == list(range(29, -1, -1))


def test_api_blocks_since_is_a_bounded_cursor(store: MemoryChainStore, chain: ChainMaker) -> None:
    router, _ = _serve(store)
    answer = json.loads(_get(router, "/api/blocks", since="0")[2])
    assert [b["index"] for b in answer["blocks"]] == list(range(1, 130)) and not answer["more"]
    assert json.loads(_get(router, "/api/blocks", since="129")[2])["blocks"] == []
    chain.random_block()
    store.append(chain.blocks[-1])  # a new block: the next poll returns it, and only it
    new = json.loads(_get(router, "/api/blocks", since="129")[2])
    assert [b["index"] for b in new["blocks"]] == [130] and new["blocks"][0]["kind"] == chain.blocks[-1].kind
    limited = json.loads(_get(router, "/api/blocks", since="0", limit="5")[2])
    assert len(limited["blocks"]) == 5 and limited["more"]
    assert len(json.loads(_get(router, "/api/blocks", since="0", limit="100000")[2])["blocks"]) <= API_MAX_BLOCKS
    assert [b["index"] for b in json.loads(_get(router, "/api/blocks", before="3")[2])["blocks"]] == [0, 1, 2]
    for bad in ({"since": "-1"}, {"since": "x"}, {"since": "1", "before": "2"}, {}):
        with pytest.raises(RequestError) as err:
            _get(router, "/api/blocks", **bad)
        assert err.value.status == 400


def test_series_is_bounded_and_scores_come_from_the_votes(store: MemoryChainStore, chain: ChainMaker) -> None:
    router, source = _serve(store, reference=0.8)
    series = json.loads(_get(router, "/api/series", points="20")[2])
    assert len(series["index"]) <= 21 and series["index"][-1] == 129 and series["reference"] == 0.8
    candidate = next(b for b in chain.blocks if b.kind == "increment")
    votes = candidate.quality_votes
    assert source.index.score(candidate.model_hash) == votes[0].scores["g_new"]
    assert set(series["strengths"]) == set(chain.state.members)


def test_block_page_says_whether_the_block_verifies(store: MemoryChainStore, chain: ChainMaker) -> None:
    router, source = _serve(store)
    block = next(b for b in chain.blocks[1:] if b.kind == "rejected")
    html = _get(router, f"/blocks/{block.index}")[2].decode()
    assert block.block_hash in html and block.prev_hash in html and block.signing_hash in html
    assert "ledger rules and signatures: verify" in html  # chainmaker draws its own committees: no certificate
    for vote in block.quality_votes:
        assert f'data-validator="{vote.validator}"' in html
    genesis = _get(router, "/blocks/0")[2].decode()
    assert "✔ verifies" in genesis
    assert _get(router, "/blocks/999")[0] == 404
    # a block whose strengths were altered after signing: the general's signature no longer holds
    forged = MemoryChainStore()
    for b in chain.blocks[:block.index]:
        forged.append(b)
    forged.append(replace(block, strengths={m: 0.5 for m in block.strengths}).sealed())
    bad = _serve(forged)[0]
    page = _get(bad, f"/blocks/{block.index}")[2].decode()
    assert "does NOT verify" in page and "does not verify" in page


def test_everything_from_peers_is_escaped(tmp_path: Path) -> None:
    maker = ChainMaker(rng=__import__("random").Random(3))
    maker.genesis()
    maker.candidate(accept=False)
    store = MemoryChainStore()
    for b in maker.blocks:
        store.append(b)
    supervisor = Identity.from_seed("sup", b"x")
    clock = iter(range(10**12, 10**12 + 100))
    journal = Journal(tmp_path / "journal.jsonl", supervisor, lambda: next(clock), fsync=False)
    journal.append("m1", "download", "ab" * 32, "refused", '<img src=x onerror="alert(1)">', "<b>ref</b>")
    journal.append("m2", "use", "cd" * 32, "granted")
    journal.close()
    router, _ = _serve(store, title="<script>alert(1)</script>",
                       journal=JournalView(tmp_path / "journal.jsonl", supervisor.public_key))
    for path in ("/", "/blocks/1", "/members", "/journal"):
        html = _get(router, path)[2].decode()
        assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = _get(router, "/journal", member="m1")[2].decode()
    assert "<img" not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "verified: 2 entries" in page and "cd" * 32 not in page
    by_version = json.loads(_get(router, "/api/journal", version="cdcd")[2])
    assert [e["actor"] for e in by_version["entries"]] == ["m2"]
    assert json.loads(_get(router, "/api/journal", outcome="refused")[2])["entries"][0]["actor"] == "m1"
    (tmp_path / "journal.jsonl").write_text((tmp_path / "journal.jsonl").read_text().replace('"use"', '"get"'))
    assert "does NOT verify" in _get(router, "/journal")[2].decode()


def test_static_assets_are_package_data() -> None:
    router, _ = _serve(MemoryChainStore())
    for name, ctype in STATIC_FILES.items():
        status, got, body = _get(router, f"/static/{name}")
        assert status == 200 and got == ctype and body
    assert b"MIT" in _get(router, "/static/uPlot.LICENSE")[2]
    with pytest.raises(RequestError) as err:
        _get(router, "/static/pyproject.toml")
    assert err.value.status == 404


def test_loopback_server_binds_loopback_only_and_is_read_only(store: MemoryChainStore) -> None:
    with pytest.raises(ConfigError):
        LoopbackServer(Router(), host="0.0.0.0")
    router, _ = _serve(store)
    with LoopbackServer(router) as server:
        with urllib.request.urlopen(server.url + "api/summary", timeout=5) as r:
            assert json.loads(r.read())["height"] == 129
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(server.url, data=b"x", method="POST"), timeout=5)
        assert err.value.code == 405
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "api/blocks?since=zz", timeout=5)
        assert err.value.code == 400


def test_dashboard_settings_round_trip_and_refuse_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    settings = dashboard_settings({"port": 8080, "journal": "vault/journal.jsonl", "reference": 0.91}, cfg)
    assert settings.port == 8080 and settings.journal == tmp_path / "vault/journal.jsonl"
    assert "port = 8080" in settings.to_toml() and DashboardSettings().to_toml() == ""
    for bad in ({"port": "80"}, {"port": 70000}, {"enabled": "yes"}, {"reference": "high"}, {"colour": 1}):
        with pytest.raises(ConfigError):
            dashboard_settings(bad, cfg)


def test_peer_health_reports_head_lag_and_unreachable_peers() -> None:
    from tclearn.dashboard.source import PeerHealth

    calls = {"m1": 0}

    def m1() -> dict[str, Any]:
        calls["m1"] += 1
        return {"height": 7, "ready": True, "head": {"hash": "ab" * 32}}

    def m2() -> dict[str, Any]:
        raise ConnectionRefusedError("connection refused")

    health = PeerHealth("m0", lambda: {"height": 10, "head": {"hash": "cd" * 32}}, {"m1": m1, "m2": m2},
                        clock_ms=lambda: 1234)
    rows = {r.member: r for r in health.rows()}
    assert rows["m0"].lag == 0 and rows["m0"].note == "this node"
    assert rows["m1"].reachable and rows["m1"].height == 7 and rows["m1"].lag == 3 and rows["m1"].last_seen_ms == 1234
    assert not rows["m2"].reachable and "refused" in rows["m2"].note and rows["m2"].lag is None
    health.rows()
    assert calls["m1"] == 1  # answers are cached: a page does not cost the peers a request each


def test_first_screen_previews_the_newest_blocks_while_the_index_is_built(store: MemoryChainStore) -> None:
    router, source = _serve(store)
    source.index._sync_lock.acquire()  # the node's background indexing of a long chain, still at work
    try:
        html = _get(router, "/")[2].decode()
        assert source.index.height == -1 and "indexing the chain: 0 of 130 blocks" in html
        shown = [int(part.split('"')[0]) for part in html.split('data-index="')[1:]]
        assert shown == list(range(129, 129 - PAGE_BLOCKS, -1))  # read directly from the store
        assert json.loads(_get(router, "/api/blocks", since="127")[2])["blocks"][-1]["index"] == 129
        assert not json.loads(_get(router, "/api/series")[2])["complete"]
    finally:
        source.index._sync_lock.release()
    assert source.index.wait(timeout_s=30)  # the background indexing the first page started
    assert source.index.height == 129 and json.loads(_get(router, "/api/series")[2])["complete"]
    assert "indexing the chain" not in _get(router, "/")[2].decode()
