"""Result records of the query API, with ``to_dict()`` for JSON output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(slots=True)
class InjectionStat:
    """How often an entity was injected in the window, what it cost, how often it was used."""

    entity_type: str
    entity_id: str
    surfaced_count: int
    total_prompt_tokens: int
    distinct_session_count: int
    citation_count: int
    citation_rate: float
    first_injected_at: datetime | None
    last_injected_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class ReviewCandidate:
    """An entity a human should look at, with every signal that fired."""

    entity_type: str
    entity_id: str
    title: str
    signals: list[str] = field(default_factory=list)
    score: int = 0
    injection_count: int = 0
    citation_count: int = 0
    citation_rate: float = 0.0
    wasted_tokens: int = 0
    last_injected_at: datetime | None = None
    last_modified_at: datetime | None = None
    superseded_by: str | None = None
    duplicate_of: str | None = None
    # what a person would do, in one line, e.g. "merge into kb-7" (signals.action)
    action: str = ""
    # shown only with include_dismissed=True: a dismissal hides it (decisions.py)
    dismissed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}
