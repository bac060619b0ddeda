"""Citations: which injected memories did the answer actually use?

    answer = llm.invoke(prompt)
    cited = memobs.record_answer(answer)     # [("document", "d3"), ...]

``memobs.record_answer(text)`` looks at the entities injected earlier in the
*same trace* (kept in memory by ``memobs_otel.trace_buffer``, content
included, even with content capture off — nothing leaves the process), runs
every ``memobs_detect_citations`` hook, keeps the highest score per entity,
records one ``memobs.citation`` event per cited entity on the current span
and returns the cited ``(entity_type, entity_id)`` keys, in injection order.
Call it inside the span (or a child of the span) that did the retrieval —
typically your agent's request span. An agent with no span around its turn
can call it right after the turn: outside any span it looks at the
retrievals made in the current context (thread or asyncio task) since the
previous ``record_answer``. It never raises; with nothing injected it
returns ``[]``.

Two detectors are built in:

**Markers** (method ``marker``, score 1.0): the answer names an entity id,
e.g. because the prompt asked the model to cite its sources. The default
pattern matches ``[mem:<id>]`` (any entity type) and ``[<type>:<id>]`` (that
type only)::

    "Refunds take 5 days [mem:policy-12]."       -> cites any type's "policy-12"
    "See [playbook:pb-7]."                        -> cites ("playbook", "pb-7")

Set ``memobs_otel.citations.marker_pattern`` (a string or compiled regex)
or ``MEMOBS_CITATION_PATTERN`` to use another: a regex with a named group
``id`` (else its first group is the id) and optionally a named group
``type``; a ``type`` of ``mem`` (``ANY_TYPE_PREFIX``) matches every type.
Only ids injected in the trace are cited: a marker naming anything else is
ignored.

**Overlap** (method ``overlap``, score = the fraction): the answer repeats the
entity's wording. Both texts are cut into lower-cased 3-word shingles
(``memobs_otel.fingerprint.shingles``); the score is the fraction of the
entity's shingles found in the answer. At or above the threshold —
``memobs_otel.citations.overlap_threshold`` or ``MEMOBS_CITATION_OVERLAP``,
default ``0.5`` — it is a citation. A threshold above 1 turns overlap
detection off.

Plugins add detectors by implementing ``memobs_detect_citations(answer,
entities)`` and returning ``Citation`` objects; ``memobs.cite(type, id)``
records an explicit citation directly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterable

from opentelemetry import trace

from . import config, guard, plugins, semconv, trace_buffer
from .fingerprint import shingles
from .hookspecs import hookimpl
from .recording import cite

DEFAULT_MARKER_PATTERN = r"\[(?P<type>[A-Za-z][\w.-]*):(?P<id>[^\[\]\s]+)\]"
ANY_TYPE_PREFIX = "mem"
DEFAULT_OVERLAP_THRESHOLD = 0.5

# module settings; None = read the environment variable, else the default
marker_pattern: str | re.Pattern | None = None
overlap_threshold: float | None = None


@dataclass(frozen=True)
class Citation:
    """One detected citation of an injected entity."""

    entity_type: str
    entity_id: str
    method: str = semconv.CITATION_EXPLICIT
    score: float = 1.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.entity_type, self.entity_id)


_compiled: dict[str, re.Pattern] = {}


def _pattern() -> re.Pattern:
    chosen = marker_pattern if marker_pattern is not None else os.environ.get("MEMOBS_CITATION_PATTERN")
    if isinstance(chosen, re.Pattern):
        return chosen
    source = chosen or DEFAULT_MARKER_PATTERN
    found = _compiled.get(source)
    if found is None:
        try:
            found = re.compile(source)
            if "id" not in found.groupindex and found.groups < 1:
                raise ValueError("the pattern has no 'id' group")
        except (re.error, ValueError) as exc:
            guard.log_once(f"citation pattern {source!r}", exc,
                           f"memobs: citation pattern {source!r} is not usable; using the default")
            found = re.compile(DEFAULT_MARKER_PATTERN)
        _compiled[source] = found
    return found


def _threshold() -> float:
    if overlap_threshold is not None:
        return float(overlap_threshold)
    raw = os.environ.get("MEMOBS_CITATION_OVERLAP")
    if raw is None or not raw.strip():
        return DEFAULT_OVERLAP_THRESHOLD
    try:
        return float(raw)
    except ValueError:
        guard.log_once("MEMOBS_CITATION_OVERLAP",
                       message=f"memobs: MEMOBS_CITATION_OVERLAP={raw!r} is not a number; using {DEFAULT_OVERLAP_THRESHOLD}")
        return DEFAULT_OVERLAP_THRESHOLD


def detect_markers(answer: str, entities: Iterable[Any]) -> list[Citation]:
    """Citations for the injected entities whose id the answer names in a marker."""
    by_id: dict[str, list[Any]] = {}
    for entity in entities:
        by_id.setdefault(entity.entity_id, []).append(entity)
    if not by_id:
        return []
    pattern = _pattern()
    use_named = "id" in pattern.groupindex
    has_type = "type" in pattern.groupindex
    found: list[Citation] = []
    for match in pattern.finditer(answer):
        entity_id = match.group("id") if use_named else match.group(1)
        wanted = match.group("type") if has_type else None
        for entity in by_id.get(entity_id, ()):
            if wanted is None or wanted == ANY_TYPE_PREFIX or wanted == entity.entity_type:
                found.append(Citation(entity.entity_type, entity.entity_id, semconv.CITATION_MARKER, 1.0))
    return found


def overlap_score(answer_shingles: set[str], content: str) -> float:
    """The fraction of ``content``'s shingles that occur in the answer."""
    own = shingles(content)
    if not own:
        return 0.0
    return len(own & answer_shingles) / len(own)


def detect_overlap(answer: str, entities: Iterable[Any], threshold: float | None = None) -> list[Citation]:
    """Citations for the injected entities whose wording the answer repeats."""
    limit = _threshold() if threshold is None else threshold
    if limit > 1:
        return []
    answer_shingles = shingles(answer)
    if not answer_shingles:
        return []
    found = []
    for entity in entities:
        if not entity.content:
            continue
        score = overlap_score(answer_shingles, entity.content)
        if score > 0 and score >= limit:
            found.append(Citation(entity.entity_type, entity.entity_id, semconv.CITATION_OVERLAP, score))
    return found


@hookimpl
def memobs_detect_citations(answer: str, entities: list) -> list:
    """The built-in detectors: id markers, then shingle overlap."""
    return detect_markers(answer, entities) + detect_overlap(answer, entities)


def _merge(results: list, known: dict[tuple[str, str], int]) -> dict[tuple[str, str], Citation]:
    best: dict[tuple[str, str], Citation] = {}
    for result in results:
        for item in result or ():
            try:
                key = (str(item.entity_type), str(item.entity_id))
                score = float(item.score)
                method = str(item.method)
            except (AttributeError, TypeError, ValueError):
                guard.log_once("citation result", message="memobs: a citation detector returned something "
                                                          "that is not a Citation; ignored")
                continue
            if key not in known:  # only what was injected in this trace can be cited
                continue
            if key not in best or score > best[key].score:
                best[key] = Citation(key[0], key[1], method, score)
    return best


def _record_answer(text: Any) -> list[tuple[str, str]]:
    if not isinstance(text, str) or not text:
        return []
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        entities = trace_buffer.injected_in(span_context.trace_id)
    else:  # no span around the turn: the retrievals since the last answer in this context
        entities = [e for trace_id in trace_buffer.take_pending() for e in trace_buffer.injected_in(trace_id)]
    if not entities:
        return []
    plugins.load_plugins()
    order = {(e.entity_type, e.entity_id): i for i, e in enumerate(entities)}
    results = plugins.call_hook("memobs_detect_citations", answer=text, entities=entities)
    best = _merge(results, order)
    cited = sorted(best, key=order.__getitem__)
    for key in cited:
        citation = best[key]
        cite(citation.entity_type, citation.entity_id, method=citation.method, score=citation.score)
    return cited


def record_answer(text: str) -> list[tuple[str, str]]:
    """Record a citation for each entity injected in this trace that ``text`` cites.

    Returns the cited ``(entity_type, entity_id)`` keys in injection order.
    Never raises.
    """
    if not config.settings.enabled:
        return []
    return guard.safe_invoke("record_answer", _record_answer, text, default=[])
