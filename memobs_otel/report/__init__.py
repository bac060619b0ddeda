"""``memobs report``: one self-contained HTML page about memory health.

    from memobs_otel.report import write_report
    write_report("memobs.db", "memobs-report.html", days=30)

The page shows headline numbers (entities, injections, tokens injected,
citation rate, tokens wasted on uncited injections), injections and tokens
over time, the top entities by tokens, the citation-rate distribution, the
review queue with its signals, scores and reasons, and a detail section per
entity (capped: the top entities by tokens plus the top of the review
queue). :mod:`.data` gathers aggregates through the Store API and
:mod:`.queries`; :mod:`.svg` draws the charts; :mod:`.html` renders the page.
The database is only ever read.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from typing import Callable

from ..store import open_store
from .data import ReportData, gather
from .html import render

__all__ = ["ReportData", "build_report", "gather", "render", "write_report"]


def build_report(
    db_path: str | os.PathLike,
    days: float = 30,
    user_id: str | None = None,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[ReportData, str]:
    """Gather the data from ``db_path`` (read-only) and render the page."""
    with open_store(db_path) as store:
        data = gather(store, days=days, user_id=user_id, now=now, on_step=on_step)
    if on_step:
        on_step("rendering")
    return data, render(data)


def write_report(
    db_path: str | os.PathLike,
    out_path: str | os.PathLike,
    days: float = 30,
    user_id: str | None = None,
    now: datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ReportData:
    """Write the report for ``db_path`` to ``out_path`` (atomically: a
    temporary file in the same folder, then renamed)."""
    data, page = build_report(db_path, days=days, user_id=user_id, now=now, on_step=on_step)
    out_path = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".memobs-report-", suffix=".html", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # as open() would have made it
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return data
