"""Render :class:`~.data.ReportData` as one self-contained HTML page.

Styles and the small script (sortable tables, review-queue filter) are
inlined; charts are inline SVG from :mod:`.svg`. Nothing is fetched: a
Content-Security-Policy forbids every network source and allows only this
page's own script (by hash), so even a value that slipped through escaping
could not run or load anything. Every value from the database passes
:func:`html.escape` — entity ids, titles and session ids are untrusted.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from html import escape
from importlib import resources

from ..store.timeparse import ns_to_datetime
from . import budget as budget_section
from . import svg
from .data import EntityDetail, ReportData, reasons

SIGNAL_LABELS = {
    "supersedeable": "supersedeable",
    "stale": "stale",
    "high_cost_low_cite": "high cost, low cite",
    "duplicate": "duplicate",
}


def _e(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "–"


def _fmt_day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d")


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _n(value) -> str:
    return svg.fmt_int(value)


def _plural(n: int, word: str) -> str:
    return f"{_n(n)} {word}" + ("" if n == 1 else "s")


def _days(days: float) -> str:
    text = f"{days:g}"
    return f"{text} day" if text == "1" else f"{text} days"


def render(data: ReportData) -> str:
    script = _asset("report.js")
    style = _asset("report.css")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    anchors = {(d.entity_type, d.entity_id): f"entity-{i + 1}" for i, d in enumerate(data.details)}
    scope = f"last {_days(data.days)}" + (f", user {_e(data.user_id)}" if data.user_id is not None else "")
    body = [
        '<header class="top">',
        "<h1>Memory health</h1>",
        '<p class="meta">',
        f'<span>database <code data-field="db">{_e(data.db_path)}</code></span>',
        f'<span data-field="window">{scope}: {_e(_fmt_time(data.window_start))} → '
        f"{_e(_fmt_time(data.window_end))} UTC</span>",
        f"<span>schema v{data.schema_version[0]}</span>",
        f"<span>generated {_e(_fmt_time(data.generated_at))} UTC by memobs report</span>",
        "</p>",
        "</header>",
        "<main>",
    ]
    if data.empty:
        body.append(_empty_state(data))
    else:
        body += [
            _context_budget(data),
            _headline(data),
            _over_time(data),
            _top_and_rates(data),
            _review(data, anchors),
            _details(data, anchors),
            _definitions(),
        ]
    body.append("</main>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="memobs report">'
        f"<title>memobs memory health — {_e(scope)}</title>"
        f"<style>{style}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{script}</script>\n</body></html>\n"
    )


def _empty_state(data: ReportData) -> str:
    who = f" for user {_e(data.user_id)}" if data.user_id is not None else ""
    return (
        '<section class="empty" id="empty-state">'
        f"<h2>No memory activity yet{who}</h2>"
        f"<p>This database holds no injected or written memory entities in the last {_e(_days(data.days))}.</p>"
        "<p>Record some with <code>memobs.configure()</code> and a search decorated with "
        "<code>@memobs.observe_retrieval</code>, or try <code>memobs demo</code>, then run "
        "<code>memobs report</code> again (a larger <code>--days</code> looks further back).</p>"
        "</section>"
    )


def _card(metric: str, label: str, value: str, note: str = "") -> str:
    return (
        f'<div class="card" data-metric="{_e(metric)}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{note}</div></div>'
    )


def _headline(data: ReportData) -> str:
    h = data.headline
    share = f"{_pct(h.wasted_tokens / h.tokens)} of tokens injected" if h.tokens else "no tokens injected"
    return (
        '<section id="headline" class="cards">'
        + _card("entities", "Entities", _n(h.known_entities), f"{_n(h.injected_entities)} injected in the window")
        + _card("injections", "Injections", _n(h.injections), f"{_n(h.citations)} cited")
        + _card("tokens", "Tokens injected", _n(h.tokens), "prompt tokens spent on memory")
        + _card("citation-rate", "Citation rate", _pct(h.citation_rate), "cited injections / injections")
        + _card("wasted-tokens", "Tokens wasted", _n(h.wasted_tokens), _e(share) + " (uncited)")
        + _card("review", "Review queue", _n(h.review_candidates), "entities to look at")
        + "</section>"
    )


def _context_budget(data: ReportData) -> str:
    """The first section: memory's share of the prompt (``report/budget.py``), on the
    other charts' time axis, or per day when those are hourly."""
    budget = data.budget
    if data.bucket_hours >= 24 and data.bucket_starts:
        origin = int(data.bucket_starts[0].timestamp()) * 1_000_000_000
        width = data.bucket_hours * 3_600 * 1_000_000_000
        share, uncited = budget_section.series(budget, origin, width, len(data.bucket_starts))
        labels, per = [_fmt_day(d) for d in data.bucket_starts], data.bucket_unit
    else:
        days = budget.by_day if budget is not None else []
        share = [round(100 * d.memory_share, 1) if d.memory_share is not None else 0.0 for d in days]
        uncited = [round(100 * d.uncited_share, 1) if d.uncited_share is not None else 0.0 for d in days]
        labels, per = [d.day for d in days], "day"
    return budget_section.render(budget, labels, share, uncited, per)


def _over_time(data: ReportData) -> str:
    per = data.bucket_unit
    hourly = data.bucket_hours == 1
    # an hour's bar is labelled with its start time; a day's with its date
    labels = [_fmt_time(d) if hourly else _fmt_day(d) for d in data.bucket_starts]
    note = ""
    if hourly:
        note = ('<p class="hint" id="over-time-unit">Everything in the window happened within two days: '
                "one bar per hour (UTC).</p>")
    return (
        '<section id="over-time"><h2>Over time</h2>' + note + '<div class="grid2">'
        f'<figure><figcaption>Injections per {_e(per)}</figcaption>'
        + svg.bar_chart(data.injections_series, labels, f"Injections per {per}")
        + f'</figure><figure><figcaption>Tokens injected per {_e(per)}</figcaption>'
        + svg.bar_chart(data.tokens_series, labels, f"Tokens injected per {per}", css_class="bar-alt")
        + "</figure></div></section>"
    )


def _top_and_rates(data: ReportData) -> str:
    rows = [
        (
            f"{s.entity_type}/{s.entity_id}",
            s.total_prompt_tokens,
            f"{s.entity_type}/{s.entity_id}: {_n(s.total_prompt_tokens)} tokens, "
            f"{_n(s.surfaced_count)} injections, cited {_pct(s.citation_rate)}",
        )
        for s in data.top_entities
    ]
    more = ""
    if data.entities_with_stats > len(rows):
        more = f'<p class="hint">Top {len(rows)} of {_n(data.entities_with_stats)} injected entities.</p>'
    return (
        '<section id="top-entities"><div class="grid2">'
        "<figure><figcaption>Top entities by tokens injected</figcaption>"
        + svg.hbar_chart(rows, "Top entities by tokens injected")
        + more
        + '</figure><figure id="citation-rates"><figcaption>Citation rate per entity '
        "(entities injected in the window)</figcaption>"
        + svg.histogram(data.rate_bins, "Citation rate distribution")
        + "</figure></div></section>"
    )


def _signal_badges(signals: list[str]) -> str:
    return " ".join(
        f'<span class="badge sig-{_e(s)}">{_e(SIGNAL_LABELS.get(s, s))}</span>' for s in signals
    )


def _breakable(text: str) -> str:
    """Escaped ``text`` with a line-break opportunity after each ``/``, ``:``
    and ``#``: a long id in a narrow column wraps at its own separators
    (the CSS breaks anywhere only as a last resort)."""
    return _BREAK_AFTER.sub(r"\1<wbr>", _e(text))


_BREAK_AFTER = re.compile(r"([/:#])")


def _time_cell(value: datetime | None) -> str:
    """Date and time that wrap at the space between them, never inside."""
    text = _fmt_time(value)
    return " ".join(f'<span class="nw">{_e(part)}</span>' for part in text.split(" "))


def _entity_ref(entity_type: str, entity_id: str, anchors: dict) -> str:
    text = f"<code>{_breakable(entity_type + '/' + entity_id)}</code>"
    anchor = anchors.get((entity_type, entity_id))
    return f'<a href="#{anchor}">{text}</a>' if anchor else text


# Column widths of the review table (its layout is fixed, so long ids and
# titles wrap inside their column instead of widening the table past the
# page): see docs/report.md.
_REVIEW_COLS = "<colgroup>" + "".join(
    f'<col class="c-{name}">' for name in (
        "score", "signals", "entity", "action", "title", "injections", "cited", "wasted", "reasons",
        "last-injected", "last-modified")
) + "</colgroup>"


def _review(data: ReportData, anchors: dict) -> str:
    head = (
        '<section id="review"><h2>Review queue</h2>'
        '<p class="hint">Entities a human should look at: superseded, stale, costly but rarely cited, '
        "or near-duplicates of a newer entity. Highest score first, then most tokens wasted; "
        "the action says what to do. Dismissed candidates (<code>memobs dismiss</code>) are not shown.</p>"
    )
    if not data.review:
        return head + '<p class="ok" id="review-empty">Nothing to review: no signal fired in the window.</p></section>'
    filters = (
        '<div class="filters"><label>Filter <input type="search" id="review-filter" '
        'placeholder="id, title or reason"></label> <label>Signal <select id="review-signal">'
        '<option value="">all</option>'
        + "".join(f'<option value="{_e(k)}">{_e(v)}</option>' for k, v in SIGNAL_LABELS.items())
        + '</select></label> <span id="review-count" class="hint"></span></div>'
    )
    rows = []
    for c in data.review:
        rows.append(
            f'<tr data-signals="{_e(" ".join(c.signals))}">'
            f'<td class="num" data-sort="{c.score}">{c.score}</td>'
            f"<td>{_signal_badges(c.signals)}</td>"
            f'<td class="entity">{_entity_ref(c.entity_type, c.entity_id, anchors)}</td>'
            f'<td class="action">{_breakable(c.action)}</td>'
            f'<td class="title">{_breakable(c.title)}</td>'
            f'<td class="num" data-sort="{c.injection_count}">{_n(c.injection_count)}</td>'
            f'<td class="num" data-sort="{c.citation_rate:.6f}">{_n(c.citation_count)} ({_pct(c.citation_rate)})</td>'
            f'<td class="num" data-sort="{c.wasted_tokens}">{_n(c.wasted_tokens)}</td>'
            f'<td class="reasons">{"<br>".join(_breakable(r) for r in reasons(c, data.days))}</td>'
            f'<td class="time">{_time_cell(c.last_injected_at)}</td>'
            f'<td class="time">{_time_cell(c.last_modified_at)}</td>'
            "</tr>"
        )
    capped = ""
    if data.review_total > len(data.review):
        capped = (f'<p class="hint">Showing the first {_n(len(data.review))} of {_n(data.review_total)} '
                  "candidates; <code>memobs review --json</code> lists them all.</p>")
    return (
        head + filters
        + '<div class="scroll"><table id="review-queue" class="sortable fixed">' + _REVIEW_COLS + '<thead><tr>'
        '<th data-type="num">Score</th><th>Signals</th><th>Entity</th><th>Action</th><th>Title</th>'
        '<th data-type="num">Injections</th><th data-type="num">Cited</th>'
        '<th data-type="num">Tokens wasted</th><th>Reasons</th><th>Last injected</th>'
        "<th>Last modified</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>" + capped + "</section>"
    )


def _details(data: ReportData, anchors: dict) -> str:
    per = data.bucket_unit
    parts = [
        '<section id="entities"><h2>Entities</h2>',
        f'<p class="hint">{len(data.details)} entities: those with the most tokens injected '
        "and those at the top of the review queue (see <code>memobs stats</code> for all). "
        f"Bars: injections per {_e(per)} over the window.</p>",
    ]
    for d in data.details:
        parts.append(_detail(d, anchors[(d.entity_type, d.entity_id)], per))
    parts.append("</section>")
    return "".join(parts)


def _detail(d: EntityDetail, anchor: str, per: str) -> str:
    sessions = "".join(
        f"<li><code>{_e(s.session_id if s.session_id is not None else '(no session)')}</code> — "
        f"{_n(s.injections)} injection{'s' if s.injections != 1 else ''}, last "
        f"{_e(_fmt_time(ns_to_datetime(s.last_ns)))}</li>"
        for s in d.recent_sessions
    )
    facts = [
        ("Injections", _n(d.injections)),
        ("Tokens injected", _n(d.tokens)),
        ("Cited", f"{_n(d.citations)} ({_pct(d.citation_rate)})"),
        ("Sessions", _n(d.sessions)),
        ("First seen", _fmt_time(d.first_seen_at)),
        ("Last injected", _fmt_time(d.last_injected_at)),
    ]
    if d.status:
        facts.append(("Status", d.status))
    return (
        f'<details class="entity" id="{anchor}"><summary>'
        f"<code>{_e(d.entity_type)}/{_e(d.entity_id)}</code> "
        f'<span class="title">{_e(d.title)}</span> {_signal_badges(d.signals)}'
        f'<span class="summary-num">{_plural(d.tokens, "token")} · {_plural(d.injections, "injection")}</span>'
        "</summary><div class=\"entity-body\">"
        + svg.sparkline(d.per_bucket, f"Injections per {per} of {d.entity_type}/{d.entity_id}")
        + "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts) + "</dl>"
        + ("<ul class=\"reasons\">" + "".join(f"<li>{_e(r)}</li>" for r in d.reasons) + "</ul>" if d.reasons else "")
        + (f"<p>Recent sessions:</p><ul>{sessions}</ul>" if sessions else "")
        + "</div></details>"
    )


def _definitions() -> str:
    return (
        '<footer class="defs"><h2>How to read this</h2><ul>'
        "<li><b>Citation rate</b>: injections the answer used (an explicit <code>memobs.cite</code>, "
        "an id marker, or high text overlap), once per trace, over injections.</li>"
        "<li><b>Tokens wasted</b>: per entity, tokens injected × (1 − citation rate), summed.</li>"
        "<li><b>Signals</b>: supersedeable (a newer version replaces it), stale (not injected and not "
        "modified in the window), high cost, low cite (often injected, rarely used), duplicate "
        "(a newer entity has near-identical content).</li>"
        "<li>All times are UTC. Generated by <code>memobs report</code>; the same numbers as "
        "<code>memobs stats</code> and <code>memobs review</code>.</li>"
        "</ul></footer>"
    )

