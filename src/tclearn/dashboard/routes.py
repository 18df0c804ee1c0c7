"""`mount(router, source)`: the dashboard's pages, JSON API and static files on a node's `Router`.

    GET /                      the chain: cards, G score chart, timeline (`?before=N` pages back)
    GET /blocks/{index}        one block: hashes, votes, certificate, whether it verifies
    GET /members               members, strengths, health (head, last seen, lag)
    GET /journal               level B/C audit journal, filtered by member, version, action, outcome
    GET /api/summary           height, head, counts per kind, reference score
    GET /api/blocks?since=H    rows of the blocks after H (oldest first, at most API_MAX_BLOCKS)
    GET /api/blocks?before=N   rows of the blocks before N (newest last, at most `limit` ≤ API_MAX_BLOCKS)
    GET /api/series?points=P   G score per block and strengths over time (at most MAX_SERIES_POINTS blocks)
    GET /api/members           the members table as JSON
    GET /api/journal?…         journal entries (same filters, at most API_MAX_ENTRIES)
    GET /static/{name}         the vendored chart library, the page script and style

Live updates are polled, not pushed (server-sent events): a handler of the
node's server returns one whole body with a Content-Length under a send
deadline (`ServerLimits.send_deadline_s`), and each member holds at most
`max_connections_per_member` connections; a never-ending event stream would
hold one of those slots and one thread per open tab, and be cut by the
deadline. The page asks `/api/blocks?since=H` every `POLL_MS` instead: one
small request on a kept-alive connection, answered from the in-memory index
with an empty list when nothing is new (the `since` cursor plays the part of
an ETag, which a handler here cannot read).

Every read is bounded by the constants below; a parameter that is not a
small integer is a 400.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Mapping

from tclearn.dashboard import pages
from tclearn.dashboard.source import DashboardSource
from tclearn.transport.errors import RequestError
from tclearn.transport.router import HandlerResult, Router

__all__ = ["mount", "API_MAX_BLOCKS", "API_MAX_ENTRIES", "MAX_SERIES_POINTS", "POLL_MS", "STATIC_FILES"]

API_MAX_BLOCKS = 200
API_MAX_ENTRIES = 500
MAX_SERIES_POINTS = 5000
DEFAULT_SERIES_POINTS = 2000
POLL_MS = 1500
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"
STATIC_FILES = {
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def _static() -> dict[str, bytes]:
    root = resources.files("tclearn.dashboard").joinpath("static")
    return {name: root.joinpath(name).read_bytes() for name in STATIC_FILES}


def _int(query: Mapping[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise RequestError(400, f"{name} must be a non-negative integer")
    return max(lo, min(hi, int(raw)))


def _json(value: Any, status: int = 200) -> HandlerResult:
    return status, _JSON, json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _html(text: str, status: int = 200) -> HandlerResult:
    return status, _HTML, text.encode("utf-8")


def _filters(query: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name in pages.JOURNAL_FILTERS:
        value = query.get(name, "")
        if len(value) > 128:
            raise RequestError(400, f"{name} is longer than 128 characters")
        out[name] = value
    return out


def mount(router: Router, source: DashboardSource) -> None:
    """Register the dashboard's routes on `router` (GET only: the dashboard never changes anything)."""
    static = _static()

    def timeline(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        height = source.height
        return _html(pages.timeline_page(source, _int(query, "before", None, 1, height + 1)))

    def block(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        height = source.height
        raw = query.get("index", "")
        if not raw.isdigit() or int(raw) > height:
            return _html(pages.not_found_page(source, f"no block {raw} on this chain (height {height})"), 404)
        found = source.index.store.get(int(raw))
        index = source.index
        return _html(pages.block_page(source, found, index.verify(found), index.committee(found.index)))

    def members(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        return _html(pages.members_page(source))

    def journal(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        return _html(pages.journal_page(source, _filters(query), _int(query, "before", None, 0, 1 << 40)))

    def api_summary(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        height, index = source.height, source.index
        heads = index.rows_or_preview(height, 1)
        config = index.genesis_config()
        return _json({"title": source.title, "member": source.member, "height": height,
                      "indexed": index.height, "complete": index.height >= height,
                      "head": heads[0].to_json(index.head_score(heads[0])) if heads else None,
                      "kinds": dict(index.kind_counts), "reference": source.reference,
                      "reference_label": source.reference_label, "poll_ms": POLL_MS,
                      "committee": config.committee_size if config is not None else None})

    def api_blocks(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        height, index = source.height, source.index
        since = _int(query, "since", None, 0, 1 << 40)
        before = _int(query, "before", None, 0, 1 << 40)
        if (since is None) == (before is None):
            raise RequestError(400, "give exactly one of since or before")
        limit = _int(query, "limit", API_MAX_BLOCKS, 1, API_MAX_BLOCKS) or API_MAX_BLOCKS
        if since is not None:
            rows = index.rows_or_preview(since + 1, limit)
        else:
            end = min(height + 1, before or 0)
            rows = index.rows_or_preview(max(0, end - limit), end - max(0, end - limit))
        return _json({"height": height, "blocks": [r.to_json(index.head_score(r)) for r in rows],
                      "more": bool(rows) and since is not None and rows[-1].index < height})

    def api_series(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        points = _int(query, "points", DEFAULT_SERIES_POINTS, 2, MAX_SERIES_POINTS) or DEFAULT_SERIES_POINTS
        series = source.index.series(points)
        series["complete"] = source.index.height >= source.height
        series["reference"] = source.reference
        series["reference_label"] = source.reference_label
        return _json(series)

    def api_members(caller: str, body: bytes, query: Any) -> HandlerResult:
        source.sync()
        health = [h.to_json() for h in source.health.rows()] if source.health is not None else []
        return _json({"members": [m.to_json() for m in source.index.members()], "health": health})

    def api_journal(caller: str, body: bytes, query: Any) -> HandlerResult:
        if source.journal is None:
            return _json({"status": "no journal", "entries": []})
        limit = _int(query, "limit", API_MAX_ENTRIES, 1, API_MAX_ENTRIES) or API_MAX_ENTRIES
        entries = pages.select_entries(source.journal_entries(), _filters(query),
                                       _int(query, "before", None, 0, 1 << 40), limit)
        return _json({"status": source.journal.status, "entries": [e.to_json() for e in entries]})

    def static_file(caller: str, body: bytes, query: Any) -> HandlerResult:
        name = query.get("name", "")
        if name not in static:
            raise RequestError(404, "no such file")
        return 200, STATIC_FILES[name], static[name]

    for pattern, handler in (("/", timeline), ("/blocks/{index}", block), ("/members", members),
                             ("/journal", journal), ("/api/summary", api_summary), ("/api/blocks", api_blocks),
                             ("/api/series", api_series), ("/api/members", api_members),
                             ("/api/journal", api_journal), ("/static/{name}", static_file)):
        router.route("GET", pattern, handler, max_body_bytes=0)
