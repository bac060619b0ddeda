"""Turn the timestamps entities report into UTC nanoseconds, or refuse.

Memory stores report ``created_at`` / ``updated_at`` in many shapes. Only
shapes that cannot be misread are accepted: ISO 8601 strings (``Z`` or an
offset; naive means UTC) and epoch numbers (seconds, or milliseconds when the
magnitude can only be milliseconds). Anything else yields ``None`` — the
review queue never guesses an age from a value it could not read.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

# 1e11 seconds is the year 5138; a number that large is an epoch in milliseconds.
_MILLIS_THRESHOLD = 1e11
_NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * _NS_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_timestamp_ns(value) -> int | None:
    """Nanoseconds since the epoch for a reported timestamp, ``None`` if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_number(value)
    if isinstance(value, datetime):
        return datetime_to_ns(value)
    if isinstance(value, str):
        return _from_iso(value.strip())
    return None


def _from_number(value) -> int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    seconds = value / 1000 if abs(value) >= _MILLIS_THRESHOLD else value
    # years 1..9999 only: anything outside is not a timestamp anyone meant
    if not -62_135_596_800 <= seconds <= 253_402_300_799:
        return None
    return int(round(seconds * _NS_PER_S)) if isinstance(seconds, float) else seconds * _NS_PER_S


def _from_iso(text: str) -> int | None:
    # at least YYYY-MM-DD; fromisoformat also accepts "2024" style oddities
    if len(text) < 10 or text[4] != "-":
        return None
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return datetime_to_ns(parsed)


def datetime_to_ns(value: datetime) -> int:
    """UTC nanoseconds for a datetime; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1_000


def ns_to_datetime(value: int | None) -> datetime | None:
    """Timezone-aware UTC datetime for nanoseconds since the epoch."""
    if value is None:
        return None
    return _EPOCH + timedelta(0, 0, int(value) // 1_000)  # (days, seconds, microseconds)


def now_ns(now: datetime | None = None) -> int:
    """``now`` (naive = UTC) as nanoseconds; the current time when ``None``."""
    if now is None:
        now = datetime.now(timezone.utc)
    if not isinstance(now, datetime):
        raise TypeError(f"now must be a datetime, not {type(now).__name__}")
    return datetime_to_ns(now)
