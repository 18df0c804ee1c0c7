"""The dashboard's HTML pages, rendered on the server: `string.Template` and escaped text.

Every value that reaches a page goes through `esc` (member ids, reasons and
scores come from peers' signed records: a peer chooses them); pages carry no
inline script or inline data, the browser code (`static/dashboard.js`) reads
the JSON API and builds its nodes with `textContent`. Each page works without
JavaScript; the script adds the charts and the live timeline.

Bounds: the timeline shows `PAGE_BLOCKS` blocks per page (`?before=N` pages
back), the journal `PAGE_ENTRIES` entries per page.
"""

from __future__ import annotations

import html
import time
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any, Iterable, Sequence
from urllib.parse import quote

from tclearn.dashboard.index import BlockRow, Verdict
from tclearn.dashboard.source import DashboardSource
from tclearn.ledger.block import KINDS, Block

__all__ = ["block_page", "journal_page", "members_page", "timeline_page", "not_found_page", "esc", "PAGE_BLOCKS",
           "PAGE_ENTRIES", "JOURNAL_FILTERS"]

PAGE_BLOCKS = 50
PAGE_ENTRIES = 100
JOURNAL_FILTERS = ("member", "version", "action", "outcome")
_NAV = (("timeline", "/", "Chain"), ("members", "/members", "Members"), ("journal", "/journal", "Audit journal"))


def esc(value: Any) -> str:
    """HTML-escaped text of `value` (quotes too: values also land in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


@lru_cache(maxsize=None)
def _layout() -> Template:
    return Template(resources.files("tclearn.dashboard").joinpath("templates/layout.html").read_text("utf-8"))


def _page(source: DashboardSource, page: str, title: str, body: str, *, charts: bool = False) -> str:
    nav = "".join(f'<a href="{href}"{" class=here" if key == page else ""}>{esc(label)}</a>'
                  for key, href, label in _NAV)
    head = '<link rel="stylesheet" href="/static/uPlot.min.css">' if charts else ""
    scripts = ('<script src="/static/uPlot.iife.min.js"></script>' if charts else "") + \
        '<script src="/static/dashboard.js"></script>'
    return _layout().substitute(title=esc(title), head=head, page=esc(page), coalition=esc(source.title), nav=nav,
                                member=esc(source.member), height=esc(source.height), body=body,
                                scripts=scripts)


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _kind(kind: str) -> str:
    safe = kind if kind in KINDS else "genesis"
    return f'<span class="kind kind-{safe}">{esc(kind)}</span>'


def _table(headers: Sequence[str], rows: Iterable[str], *, table_id: str = "", numeric: Sequence[int] = ()) -> str:
    ths = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def timeline_row(row: BlockRow, head_score: float | None, committee: int) -> str:
    votes = f"✓{row.accepts} ✗{row.rejects} of {committee}" if row.kind in ("increment", "rejected") else ""
    return (f'<tr class="row-{esc(row.kind)}" data-index="{row.index}" data-kind="{esc(row.kind)}">'
            f'<td class="num"><a href="/blocks/{row.index}">{row.index}</a></td>'
            f"<td>{esc(fmt_time(row.timestamp))}</td><td>{_kind(row.kind)}</td><td>{esc(row.contributor or '')}</td>"
            f"<td>{esc(votes)}</td><td class=num>{esc(_score(head_score))}</td>"
            f"<td class=num>{esc(_score(row.g_new))}</td><td>{esc(', '.join(row.flagged))}</td>"
            f"<td>{esc(row.reason)}</td></tr>")


TIMELINE_HEADERS = ("#", "time (UTC)", "kind", "proposer", "quality votes", "G (head)", "G (candidate)", "flagged",
                    "decision / reason")


def timeline_page(source: DashboardSource, before: int | None) -> str:
    index = source.index
    height = source.height
    top = height if before is None else min(height, before - 1)
    start = max(0, top - PAGE_BLOCKS + 1)
    rows = list(reversed(index.rows_or_preview(start, top - start + 1)))
    config = index.genesis_config()
    committee = config.committee_size if config is not None else 0
    heads = index.rows_or_preview(height, 1)
    head_score = index.head_score(heads[0]) if heads else None
    cards = [("height", str(height)), ("head G score", _score(head_score) or "–")]
    if source.reference is not None:
        cards.append((source.reference_label, _score(source.reference)))
    for kind in KINDS[1:]:
        cards.append((kind, str(index.kind_counts.get(kind, 0))))
    if index.height < height:
        source_notes = [f"indexing the chain: {index.height + 1} of {height + 1} blocks so far (counts and chart "
                        f"complete when it is done; the rows below are read directly)"]
    else:
        source_notes = []
    card_html = "".join(f'<div class="card" data-card="{esc(label)}"><div class="label">{esc(label)}</div>'
                        f'<div class="value">{esc(value)}</div></div>' for label, value in cards)
    pager = []
    if start > 0:
        pager.append(f'<a href="/?before={start}">older blocks →</a>')
    if before is not None:
        pager.append('<a href="/">← newest</a>')
    live = ('<span id="live" class="live">live: new blocks appear here (polling)</span>' if before is None
            else '<span class="muted">an older page: not live</span>')
    body = (f"<h1>Chain</h1><div class=cards>{card_html}</div>"
            f'<div class="chart" id="score-chart" data-reference="{esc("" if source.reference is None else source.reference)}"'
            f' data-reference-label="{esc(source.reference_label)}"></div>'
            f"<h2>Timeline {live}</h2>"
            + _table(TIMELINE_HEADERS, (timeline_row(r, index.head_score(r), committee) for r in rows),
                     table_id="timeline", numeric=(0, 5, 6))
            + f'<div class="pager">{"".join(pager)}</div>'
            f'<p class=muted id=notes>{esc(" · ".join(source_notes + source.notes))}</p>')
    page = _page(source, "timeline", "Chain", body, charts=True)
    return page.replace('<body data-page="timeline">',
                        f'<body data-page="timeline" data-height="{height}" data-live="{int(before is None)}"'
                        f' data-committee="{committee}">', 1)


def _fields(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl class=fields>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _verdict(verdict: Verdict) -> str:
    if verdict.ok:
        return ('<div class="verdict ok-box" id="verdict"><span class=ok>✔ verifies</span> against the chain before '
                "it: hash, link, the general's signature, strengths, the kind's rules, every vote's signature, the "
                "committee drawn for the height and the ≥ 2/3 certificate.</div>")
    lines = []
    if verdict.ledger:
        lines.append(f"ledger rules: {esc(verdict.ledger)}")
    elif verdict.ledger == "":
        lines.append("ledger rules and signatures: verify")
    if verdict.certificate:
        lines.append(f"consensus certificate: {esc(verdict.certificate)}")
    return (f'<div class="verdict bad-box" id="verdict"><span class=bad>✘ does NOT verify</span><br>'
            f"{'<br>'.join(lines)}</div>")


def _hex(data: bytes, n: int = 32) -> str:
    text = data.hex()
    return f'<code title="{esc(text)}">{esc(text[:n])}…</code>' if len(text) > n else f"<code>{esc(text)}</code>"


def block_page(source: DashboardSource, block: Block, verdict: Verdict, committee: Sequence[str] = ()) -> str:
    index = source.index
    row = index.row(block.index)
    i = block.index
    links = []
    if i > 0:
        links.append(f'<a href="/blocks/{i - 1}">← block {i - 1}</a>')
    if i < source.height:
        links.append(f'<a href="/blocks/{i + 1}">block {i + 1} →</a>')
    pairs = [("kind", _kind(block.kind)), ("time", esc(fmt_time(block.timestamp))),
             ("contributor", esc(block.contributor or "")), ("general", esc(block.general)),
             ("block hash", f"<code>{esc(block.block_hash)}</code>"),
             ("previous block", f'<a class=hash href="/blocks/{max(0, i - 1)}">{esc(block.prev_hash)}</a>'
              if i > 0 else f"<code>{esc(block.prev_hash)}</code>"),
             ("signing hash", f"<code>{esc(block.signing_hash)}</code>"),
             ("model hash", f"<code>{esc(block.model_hash)}</code>"),
             ("data ids root", f"<code>{esc(block.data_ids_root)}</code>"),
             ("general's signature", _hex(block.general_signature)),
             ("committee drawn", esc(", ".join(committee)) or "<span class=muted>none (genesis)</span>"),
             ("head G score", esc(_score(index.score(block.model_hash))) or "<span class=muted>not measured</span>")]
    if row is not None and row.reason:
        pairs.append(("decision" if block.kind != "rejected" else "why rejected", esc(row.reason)))
    proposal = block.payload.get("proposal")
    if isinstance(proposal, dict):
        for key in ("proposer", "parent_model_hash", "model_hash", "increment_hash", "sample_count", "reused_count"):
            if key in proposal:
                value = proposal[key]
                pairs.append((f"proposal: {key}", f"<code>{esc(value)}</code>" if isinstance(value, str) and
                              len(value) == 64 else esc(value)))
    flagged = set(row.flagged) if row else set()
    votes = []
    for v in block.quality_votes:
        s = v.scores
        cells = [esc(v.validator), '<span class=ok>accept</span>' if v.accept else '<span class=bad>reject</span>']
        cells += [esc(_score(s.get(k))) for k in ("g_old", "g_new", "l_old", "l_new", "upper_bound")]
        cells.append('<span class=bad>flagged</span>' if v.validator in flagged else "")
        votes.append(f'<tr data-validator="{esc(v.validator)}">' +
                     "".join(f"<td{' class=num' if 2 <= n <= 6 else ''}>{c}</td>" for n, c in enumerate(cells))
                     + "</tr>")
    cert = [f"<tr><td>{esc(bv.validator)}</td><td><code>{esc(bv.signing_hash[:16])}…</code></td>"
            f"<td>{_hex(bv.signature, 24)}</td></tr>" for bv in block.block_votes]
    strengths = [f"<tr><td>{esc(m)}</td><td class=num>{s:.4f}</td></tr>" for m, s in sorted(block.strengths.items())]
    size = len(committee) or (index.state.config.committee_size if index.state is not None else 0)
    body = (f'<h1>Block {i} {_kind(block.kind)}</h1><div class="pager">{"".join(links)}</div>'
            + _verdict(verdict) + _fields(pairs)
            + f"<h2>Quality votes ({len(block.quality_votes)} of a committee of {size})</h2>"
            + (_table(("validator", "vote", "G old", "G new", "L old", "L new", "upper bound", "G check"), votes,
                      table_id="votes", numeric=(2, 3, 4, 5, 6))
               if votes else "<p class=muted>no quality votes (a governance block or genesis)</p>")
            + f"<h2>Certificate: {len(block.block_votes)} block votes</h2>"
            + (_table(("validator", "signed hash", "signature"), cert, table_id="certificate")
               if cert else "<p class=muted>none (genesis is signed by the founder alone)</p>")
            + "<h2>Strengths at this block</h2>" + _table(("member", "strength"), strengths, numeric=(1,)))
    return _page(source, "block", f"Block {i}", body)


def members_page(source: DashboardSource) -> str:
    index = source.index
    health = {h.member: h for h in source.health.rows()} if source.health is not None else {}
    rows = []
    for m in index.members():
        h = health.get(m.member)
        status = ("" if h is None else ('<span class=ok>up</span>' if h.reachable else '<span class=bad>unreachable</span>'))
        rows.append(
            f'<tr data-member="{esc(m.member)}"><td>{esc(m.member)}{" <span class=muted>(removed)</span>" if m.removed else ""}'
            f"</td><td class=num>{m.strength:.4f}</td><td class=num>{m.contributed}</td><td class=num>{m.accepted}</td>"
            f"<td class=num>{m.rejected}</td><td class=num>{m.votes}</td><td class=num>{m.flagged}</td>"
            f"<td>{esc(m.last_active_index if m.last_active_index is not None else '')}</td>"
            f"<td>{status}</td><td class=num>{esc('' if h is None or h.height is None else h.height)}</td>"
            f"<td>{esc(fmt_time(h.last_seen_ms) if h else '')}</td>"
            f"<td class=num>{esc('' if h is None or h.lag is None else h.lag)}</td>"
            f"<td class=muted>{esc(h.note if h else '')}</td></tr>")
    body = ("<h1>Members</h1>"
            + _table(("member", "strength", "samples (D_i)", "accepted", "rejected", "quality votes", "flagged",
                      "last active (block)", "health", "head", "last seen (UTC)", "lag (blocks)", "note"), rows,
                     table_id="members", numeric=(1, 2, 3, 4, 5, 6, 9, 11))
            + "<h2>Strengths over time</h2><div class=chart id=strength-chart></div>")
    return _page(source, "members", "Members", body, charts=True)


def journal_page(source: DashboardSource, filters: dict[str, str], before: int | None) -> str:
    if source.journal is None:
        body = ("<h1>Audit journal</h1><p>This coalition keeps no audit journal here: the journal is the level B/C "
                "supervisor's record of every vault request (name it with <code>[dashboard] journal = …</code> in "
                "<code>node.toml</code>).</p>")
        return _page(source, "journal", "Audit journal", body)
    entries = select_entries(source.journal_entries(), filters, before, PAGE_ENTRIES)
    options = {"outcome": ("", "granted", "refused", "recorded")}
    fields = []
    for name in JOURNAL_FILTERS:
        value = filters.get(name, "")
        if name in options:
            opts = "".join(f'<option value="{esc(o)}"{" selected" if o == value else ""}>{esc(o or "any")}</option>'
                           for o in options[name])
            fields.append(f'<label>{name}<select name="{name}">{opts}</select></label>')
        else:
            fields.append(f'<label>{name}<input name="{name}" value="{esc(value)}"></label>')
    form = f'<form class="filters" method="get" action="/journal">{"".join(fields)}<button>filter</button></form>'
    rows = [f'<tr class="outcome-{esc(e.outcome)}"><td class=num>{e.seq}</td><td>{esc(fmt_time(e.time_ms))}</td>'
            f"<td>{esc(e.actor)}</td><td>{esc(e.action)}</td><td>{_version(e.object)}</td>"
            f"<td>{_OUTCOMES.get(e.outcome, esc(e.outcome))}</td>"
            f"<td>{esc(e.reason)}</td><td>{esc(e.ref)}</td></tr>" for e in entries]
    pager = ""
    if len(entries) == PAGE_ENTRIES:
        query = esc("&".join(f"{k}={quote(v)}" for k, v in filters.items() if v))
        pager = f'<div class=pager><a href="/journal?{query}{"&" if query else ""}before={entries[-1].seq}">older →</a></div>'
    body = (f"<h1>Audit journal</h1><p class=muted id=journal-status>{esc(source.journal.status)}</p>{form}"
            + _table(("seq", "time (UTC)", "member", "action", "version", "outcome", "reason", "ref"), rows,
                     table_id="journal", numeric=(0,)) + pager)
    return _page(source, "journal", "Audit journal", body)


_OUTCOMES = {"granted": "<span class=ok>granted</span>", "refused": "<span class=bad>refused</span>"}


def _version(obj: str | None) -> str:
    """A journal object (a model version): shortened, linking to the journal filtered on it."""
    if not obj:
        return ""
    short = obj if len(obj) <= 16 else obj[:16] + "…"
    return f'<a href="/journal?version={esc(quote(obj))}" title="{esc(obj)}"><code>{esc(short)}</code></a>'


def select_entries(entries: Sequence[Any], filters: dict[str, str], before: int | None, limit: int) -> list[Any]:
    """Newest first, matching every filter (member = actor, version = a prefix of object), seq < before, ≤ limit."""
    out = []
    for e in reversed(entries):
        if before is not None and e.seq >= before:
            continue
        if filters.get("member") and e.actor != filters["member"]:
            continue
        if filters.get("version") and not (e.object or "").startswith(filters["version"]):
            continue
        if filters.get("action") and e.action != filters["action"]:
            continue
        if filters.get("outcome") and e.outcome != filters["outcome"]:
            continue
        out.append(e)
        if len(out) >= limit:
            break
    return out


def not_found_page(source: DashboardSource, what: str) -> str:
    return _page(source, "missing", "Not found", f"<h1>Not found</h1><p>{esc(what)}</p>")
