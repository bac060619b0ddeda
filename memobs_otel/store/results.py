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


@dataclass(slots=True)
class TurnBudget:
    """One turn of the context budget: its prompt size and the memory injected in it.
    ``memory_share`` above 1 means the turn's prompts were smaller than the memory
    recorded as injected (the app injected only part of what it retrieved)."""

    turn_id: str
    time: datetime | None
    user_id: str | None
    prompt_tokens: int
    memory_tokens: int
    memory_share: float | None
    cited_memory_tokens: int
    uncited_memory_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class EntityTypeBudget:
    """The memory of one entity type in the window's turns; ``memory_share`` is of the
    window's prompt tokens, so the types' shares add up to the total."""

    entity_type: str
    turns: int
    memory_tokens: int
    memory_share: float | None
    cited_memory_tokens: int
    uncited_memory_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in asdict(self).items()}


@dataclass(slots=True)
class DayBudget:
    """The budget of the turns that began on one UTC day (the report's chart)."""

    day: str  # YYYY-MM-DD
    turns: int
    prompt_tokens: int
    memory_tokens: int
    memory_share: float | None
    uncited_memory_tokens: int
    uncited_share: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ContextBudget:
    """What share of the prompt is memory (SPEC §6b), over the window's turns that have
    both memory and a prompt size. ``memory_share`` is ``memory_tokens / prompt_tokens``
    (``None`` when there is no prompt token); it is never capped at 1."""

    days_back: float
    user_id: str | None
    turns: int
    prompt_tokens: int
    memory_tokens: int
    memory_share: float | None
    cited_memory_tokens: int
    uncited_memory_tokens: int
    turns_over_prompt: int  # turns whose memory exceeds their prompt (share > 1), counted above
    by_entity_type: list[EntityTypeBudget] = field(default_factory=list)
    top_turns: list[TurnBudget] = field(default_factory=list)
    by_day: list[DayBudget] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {k: _jsonable(getattr(self, k)) for k in (
            "days_back", "user_id", "turns", "prompt_tokens", "memory_tokens", "memory_share",
            "cited_memory_tokens", "uncited_memory_tokens", "turns_over_prompt")}
        out["by_entity_type"] = [t.to_dict() for t in self.by_entity_type]
        out["top_turns"] = [t.to_dict() for t in self.top_turns]
        out["by_day"] = [d.to_dict() for d in self.by_day]
        return out
