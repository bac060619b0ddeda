"""The report's data as JSON: ``memobs report --json``.

The same numbers the HTML page shows, from the same :class:`~.data.ReportData`
(gathered once, in one read snapshot), as plain JSON values: timestamps as
ISO 8601 strings (UTC, ``Z``), the API's records through their
``to_dict()``, the schema version as ``[major, minor]``. Review candidates
carry the page's plain-words ``reasons`` beside the API's fields; sessions
carry ``last_at`` for the page's "last" time. The page's caps apply
(``review`` holds at most ``REVIEW_ROWS`` rows, ``review_total`` counts
them all; ``memobs review --json`` lists every candidate).

Fields added to ``ReportData`` later are converted the same way, so this
module needs no change when the page shows more.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from typing import Any

from ..store import open_store
from ..store.timeparse import ns_to_datetime
from .data import ReportData, gather, reasons
from .queries import SessionUse


def build_report_dict(db_path: str | os.PathLike, days: float = 30, user_id: str | None = None,
                      now: datetime | None = None) -> dict[str, Any]:
    """Gather the report's data from ``db_path`` (read-only) as JSON values; no page is rendered."""
    with open_store(db_path) as store:
        return report_dict(gather(store, days=days, user_id=user_id, now=now))


def report_dict(data: ReportData) -> dict[str, Any]:
    """``data`` as JSON-ready values, with ``bucket_unit`` and ``empty``."""
    out = {field.name: plain(getattr(data, field.name)) for field in dataclasses.fields(data)}
    out["bucket_unit"] = data.bucket_unit
    out["empty"] = data.empty
    out["rate_bins"] = [{"label": label, "entities": n} for label, n in data.rate_bins]
    out["review"] = [{**c.to_dict(), "reasons": reasons(c, data.days)} for c in data.review]
    return out


def plain(value: Any) -> Any:
    """A JSON value for ``value`` (records, dataclasses, datetimes, containers)."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, SessionUse):
        return {"session_id": value.session_id, "injections": value.injections,
                "last_at": plain(ns_to_datetime(value.last_ns))}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
