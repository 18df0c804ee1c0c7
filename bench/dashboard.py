"""The dashboard on a long chain: time to the first screen of the timeline, 10,000 blocks against 100.

A synthetic chain is built with the ledger's own functions (`tests/ledger/
chainmaker.py`: signed proposals, quality votes, certificates, every kind of
block, each checked by `verify_block`) and written to an SQLite chain store,
as a node keeps it. The dashboard is then served from that store, on the
loopback plain-HTTP server and on the node's mutual-TLS server (`NodeServer`,
TLS 1.3, a member's client certificate), and measured at three levels:

* cold: as a node that has just started, the index is built in a background
  thread (`ChainIndex.catch_up`) while the browser asks for the first page,
  which previews the newest blocks straight from the store; then the time
  the whole index took (once per process; then a few blocks per poll);
* server render: `GET /` answered by the router (warm index; median);
* browser: Debian's Chromium under Playwright opens `/` in a fresh context
  (no cache, a new connection: the mutual-TLS handshake included) and we read
  the page's own Navigation Timing: first contentful paint (the timeline's
  first screen is server-rendered, so it is the first paint), DOM content
  loaded, and the moment the G-score chart (`/api/series`, every block up to
  2,000 points) is drawn. Also the wall time from `goto` to the timeline
  table being visible, measured from Python. Median of `--repeat` loads.

Goal: the first screen of a 10,000-block chain in under 1 s.

    python bench/dashboard.py [--blocks 10000] [--small 100] [--repeat 5] [--out bench/results/dashboard.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "ledger"))
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

from chainmaker import ChainMaker  # noqa: E402
from dash_browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

from tclearn.dashboard import ChainIndex, DashboardSource, LoopbackServer, mount  # noqa: E402
from tclearn.ledger.sqlite_store import SQLiteChainStore  # noqa: E402
from tclearn.pki import init_ca, issue_member  # noqa: E402
from tclearn.transport import MemberAllowList, NodeServer, Query, Router, server_context  # noqa: E402

GOAL_S = 1.0
# a coalition's usual mix: mostly candidates, some governance (membership kept rare: a few members)
MIX = (("increment", 0.55), ("rejected", 0.3), ("hyperparams", 0.08), ("revert", 0.05), ("membership", 0.02))


def build_chain(path: Path, blocks: int, seed: int = 0) -> float:
    """An SQLite chain of `blocks` blocks (genesis included); seconds it took."""
    t = time.perf_counter()
    maker = ChainMaker(n_members=6, committee_size=3, rng=random.Random(seed))
    maker.genesis()
    kinds, weights = zip(*MIX)
    while len(maker.blocks) < blocks:
        kind = maker.rng.choices(kinds, weights)[0]
        if kind in ("increment", "rejected"):
            maker.candidate(accept=kind == "increment")
        elif kind == "hyperparams":
            maker.hyperparams()
        elif kind == "revert":
            maker.revert()
        else:
            maker.membership(add=1, remove=(maker._members()[-1],) if len(maker._members()) > 8 else ())
    with SQLiteChainStore(path) as store:
        for block in maker.blocks:
            store.append(block)
    return time.perf_counter() - t


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def serve_and_measure(chain: Path, repeat: int, pki: Path, browser: Any) -> dict[str, Any]:
    store = SQLiteChainStore(chain, create=False, read_only=True)
    source = DashboardSource(ChainIndex(store), title="bench", member="m0")
    router = Router()
    mount(router, source)
    height = store.height()
    member = issue_member(pki, f"viewer-{height}", hosts=("127.0.0.1",))
    certs = [{"origin": "", "certPath": str(member.cert), "keyPath": str(member.key)}]
    tls = NodeServer(router, server_context(pki / "ca.crt", member.cert, member.key),
                     MemberAllowList.from_certs([member.cert]), member_id="m0").start()
    certs[0]["origin"] = tls.url
    loop = LoopbackServer(router).start()
    out: dict[str, Any] = {"height": height}
    try:
        warm_up(browser, loop.url + "static/dashboard.css")
        # cold: as a node just started, the index is built in the background while the first page is asked
        t = time.perf_counter()
        source.index.catch_up(inline_blocks=0)
        cold = browser_loads(browser, tls.url + "/", certs, 1, warm_first=False)
        cold["indexed_blocks_at_first_screen"] = source.index.height + 1
        source.index.wait()
        out["index_sync_s"] = time.perf_counter() - t
        out["cold_mutual_tls"] = cold
        renders, sizes = [], []
        for _ in range(max(5, repeat)):
            t = time.perf_counter()
            _, _, body = router.dispatch("GET", "/", "m0", b"", Query({}))
            renders.append(time.perf_counter() - t)
            sizes.append(len(body))
        t = time.perf_counter()
        series = router.dispatch("GET", "/api/series", "m0", b"", Query({}))[2]
        out.update(server_render_s=_median(renders), page_bytes=sizes[0], series_s=time.perf_counter() - t,
                   series_bytes=len(series))
        out["loopback_http"] = browser_loads(browser, loop.url, None, repeat)
        out["mutual_tls"] = browser_loads(browser, tls.url + "/", certs, repeat)
    finally:
        loop.stop()
        tls.stop()
        store.close()
    return out


def warm_up(browser: Any, url: str) -> None:
    """One throwaway page load: Chromium's own first-use costs (processes, fonts) are not the dashboard's."""
    context = browser.new_context()
    context.new_page().goto(url)
    context.close()


def browser_loads(browser: Any, url: str, certs: list[dict[str, str]] | None, repeat: int,
                  warm_first: bool = True) -> dict[str, Any]:
    """Median timings of `repeat` loads of `url`, each in a fresh context (a new connection, nothing cached)."""
    fcp, dcl, chart, visible = [], [], [], []
    for n in range(repeat + int(warm_first)):  # a first load warms this context kind: not counted
        kwargs: dict[str, Any] = {"viewport": {"width": 1400, "height": 1000}}
        if certs is not None:
            kwargs.update(client_certificates=certs, ignore_https_errors=True)
        context = browser.new_context(**kwargs)
        page = context.new_page()
        t = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_selector("#timeline tbody tr")
        seen = time.perf_counter() - t
        page.wait_for_selector("#score-chart[data-drawn]", timeout=60_000)
        timing = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const paint = performance.getEntriesByName('first-contentful-paint')[0]
                || performance.getEntriesByName('first-paint')[0];
            return {fcp: paint ? paint.startTime : null, dcl: nav.domContentLoadedEventEnd, now: performance.now()};
        }""")
        context.close()
        if warm_first and n == 0:
            continue
        visible.append(seen)
        if timing["fcp"] is not None:  # Chromium skips the paint entry now and then: the sample is dropped
            fcp.append(timing["fcp"] / 1000)
        dcl.append(timing["dcl"] / 1000)
        chart.append(timing["now"] / 1000)
    return {"first_contentful_paint_s": _median(fcp), "dom_content_loaded_s": _median(dcl),
            "chart_drawn_s": _median(chart), "timeline_visible_wall_s": _median(visible),
            "first_contentful_paint_max_s": max(fcp, default=float("nan")), "paint_samples": len(fcp),
            "loads": len(visible)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dashboard.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {"goal_first_screen_s": GOAL_S, "repeat": args.repeat, "python": platform.python_version(),
                               "cpus": os.cpu_count(), "load_avg_before": os.getloadavg()[0], "chains": {}}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        pki = Path(tmp) / "pki"
        init_ca(pki)
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            for n in (args.small, args.blocks):
                path = Path(tmp) / f"chain-{n}.sqlite"
                build_s = build_chain(path, n)
                row = serve_and_measure(path, args.repeat, pki, browser)
                row["build_s"] = build_s
                results["chains"][str(n)] = row
                print(f"{n} blocks: built in {build_s:.1f} s", flush=True)
        finally:
            browser.close()
    results["load_avg_after"] = os.getloadavg()[0]
    big = results["chains"][str(args.blocks)]
    results["goal_met"] = all(big[k]["first_contentful_paint_s"] < GOAL_S
                              for k in ("mutual_tls", "loopback_http", "cold_mutual_tls"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")


def print_table(results: dict[str, Any]) -> None:
    header = (f"{'blocks':>7} {'index':>8} {'render':>8} {'page':>8} {'series':>9} | {'transport':<13} {'FCP':>7} "
              f"{'DCL':>7} {'visible':>8} {'chart':>7}")
    print(header)
    print("-" * len(header))
    for n, row in results["chains"].items():
        for name in ("loopback_http", "mutual_tls"):
            b = row[name]
            print(f"{n:>7} {row['index_sync_s'] * 1000:>6.0f}ms {row['server_render_s'] * 1000:>6.1f}ms "
                  f"{row['page_bytes'] / 1024:>6.0f}KB {row['series_bytes'] / 1024:>7.0f}KB | {name:<13} "
                  f"{b['first_contentful_paint_s'] * 1000:>5.0f}ms {b['dom_content_loaded_s'] * 1000:>5.0f}ms "
                  f"{b['timeline_visible_wall_s'] * 1000:>6.0f}ms {b['chart_drawn_s'] * 1000:>5.0f}ms")
    for n, row in results["chains"].items():
        c = row["cold_mutual_tls"]
        print(f"{n:>7} blocks, cold (node just started, index built in the background): first contentful paint "
              f"{c['first_contentful_paint_s'] * 1000:.0f} ms over mutual TLS with {c['indexed_blocks_at_first_screen']}"
              f" blocks indexed; chart first drawn (blocks indexed so far) at {c['chart_drawn_s']:.1f} s; whole index "
              f"{row['index_sync_s']:.1f} s")
    print(f"goal: first screen of {max(results['chains'], key=int)} blocks < {results['goal_first_screen_s']} s: "
          f"{'met' if results['goal_met'] else 'NOT met'} (load avg {results['load_avg_before']:.1f} → "
          f"{results['load_avg_after']:.1f} on {results['cpus']} CPUs)")


if __name__ == "__main__":
    main()
