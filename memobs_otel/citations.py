"""Citations: which injected memories did the answer actually use?

    with memobs.context(session_id=chat_id):      # the turn
        answer = chain.invoke(question)
        cited = memobs.record_answer(answer)     # [("document", "d3"), ...]

``memobs.record_answer(text)`` looks at the entities injected earlier in the
same *turn* (kept in memory by ``memobs_otel.trace_buffer``, content
included, even with content capture off — nothing leaves the process), runs
every ``memobs_detect_citations`` hook, keeps the highest score per entity,
records one ``memobs.citation`` event per cited entity and returns the cited
``(entity_type, entity_id)`` keys, in injection order. It never raises;
with nothing injected it returns ``[]``.

**The turn** is the current trace, and also the innermost ``memobs.context``
block. A block is what makes citations work when the retrievals are not in
the caller's trace — an LCEL chain with no span of yours around it (each
retriever call is then a trace of its own), ``RunnableParallel``,
``batch``, a LlamaIndex query or chat engine, retrievals in threads the
framework's pool runs: everything retrieved inside the block counts, in any
trace, in any thread started inside it. Without a block, the turn is the
current trace (your agent's request span around the retrieval and the
answer). With neither a block nor a span, nothing is recorded and a message
saying so (with the fix: wrap the turn in ``memobs.context``) is logged once.

What memobs can and cannot tell apart:

- one block per request or conversation turn separates them, also when they
  run at the same time, and also inside one span of yours: an answer does
  not see what a sibling block retrieved in the same trace (it does see what
  enclosing and nested blocks retrieved);
- ``chain.batch([...])`` inside one block is **one** turn: memobs cannot
  know which input's answer used which input's documents, so an answer may
  be credited with a document retrieved for another input of the batch.
  To keep the items apart, give each its own block, e.g.
  ``RunnableLambda(answer_one).batch(questions)`` where ``answer_one`` opens
  ``memobs.context`` around ``chain.invoke`` and ``record_answer``;
- without any block, retrievals in traces other than the current one are
  not seen.

**Where the events go**: on the current span when it is recording (your
agent's span); else on one span of their own per answer (``cite_memory``,
with the block's ids and ``gen_ai.conversation.id``).

**Duplicates**: when several injected entities have the same content (the
same text — for memories longer than ``trace_buffer.MAX_CONTENT_CHARS``,
the same beginning), at most one of them is cited: the one a marker names
(or a plugin cites by another method than overlap), else the higher-ranked
(lower ``memobs.entity.rank``; on a tie the one injected first). Overlap
cannot tell copies apart, and crediting each copy would make a duplicate
look useful.

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
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterable

from opentelemetry import trace

from . import config, guard, plugins, semconv, trace_buffer
from .context import current_turns
from .fingerprint import shingles
from .hookspecs import hookimpl
from .recording import cite, memory_span_ids

NO_TURN_MESSAGE = ("memobs: record_answer() called with neither a span nor a memobs.context around it, "
                   "so memobs cannot tell which retrievals belong to this answer; nothing recorded. "
                   "Wrap the turn (the retrieval and the answer) in `with memobs.context(...):`")

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
            if key not in known:  # only what was injected in this turn can be cited
                continue
            if key not in best or score > best[key].score:
                best[key] = Citation(key[0], key[1], method, score)
    return best


def _one_per_content(best: dict[tuple[str, str], Citation], entities: list) -> None:
    """Of cited entities with the same content, keep one (see the module docstring)."""
    groups: dict[str, list[tuple[tuple, int, tuple[str, str]]]] = {}
    for position, entity in enumerate(entities):
        key = (entity.entity_type, entity.entity_id)
        citation = best.get(key)
        if citation is not None and entity.content:
            named = citation.method != semconv.CITATION_OVERLAP
            # best first: named by the answer, then higher-ranked, then injected first
            groups.setdefault(entity.content, []).append(((not named, entity.rank, position), position, key))
    for members in groups.values():
        if len(members) > 1:
            members.sort()
            named = [key for (unnamed, _, _), _, key in members if not unnamed]
            keep = set(named) if named else {members[0][2]}
            for _, _, key in members:
                if key not in keep:
                    del best[key]


def _record_answer(text: Any) -> list[tuple[str, str]]:
    if not isinstance(text, str) or not text:
        return []
    current = trace.get_current_span()
    span_context = current.get_span_context()
    trace_id = span_context.trace_id if span_context.is_valid else 0
    turns = current_turns()
    if not trace_id and not turns:
        guard.log_once("record_answer without a turn", message=NO_TURN_MESSAGE)
        return []
    entities = trace_buffer.turn_entities(trace_id, turns)
    if not entities:
        return []
    plugins.load_plugins()
    order = {(e.entity_type, e.entity_id): i for i, e in enumerate(entities)}
    results = plugins.call_hook("memobs_detect_citations", answer=text, entities=entities)
    best = _merge(results, order)
    _one_per_content(best, entities)
    cited = sorted(best, key=order.__getitem__)
    # an answer recorded again in the same turn (streamed chunks, a retry) cites nothing twice
    new = _first_time_in_turn(turns[-1] if turns else trace_id, cited)
    if not new:
        return cited
    if current.is_recording():
        _cite_all(best, new)
    else:  # one span of the turn's own for the answer's citations
        span = config.get_tracer().start_span(semconv.CITE_SPAN_NAME, attributes=memory_span_ids())
        with trace.use_span(span, end_on_exit=True):
            _cite_all(best, new)
    return cited


# per turn (innermost memobs.context block, else trace): the keys already cited in it;
# the most recent MAX_TURNS_CITED turns are kept
MAX_TURNS_CITED = 1024
_cited_in_turn: "OrderedDict[int, set[tuple[str, str]]]" = OrderedDict()
_cited_lock = threading.Lock()


def _first_time_in_turn(turn_key: int, cited: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The keys of ``cited`` not yet cited in this turn (and marks them cited)."""
    with _cited_lock:
        done = _cited_in_turn.get(turn_key)
        if done is None:
            done = _cited_in_turn[turn_key] = set()
            while len(_cited_in_turn) > MAX_TURNS_CITED:
                _cited_in_turn.popitem(last=False)
        else:
            _cited_in_turn.move_to_end(turn_key)
        new = [key for key in cited if key not in done]
        done.update(new)
    return new


def _cite_all(best: dict[tuple[str, str], Citation], cited: list[tuple[str, str]]) -> None:
    for key in cited:
        citation = best[key]
        cite(citation.entity_type, citation.entity_id, method=citation.method, score=citation.score)


def record_answer(text: str) -> list[tuple[str, str]]:
    """Record a citation for each entity injected in this turn that ``text`` cites.

    Returns the cited ``(entity_type, entity_id)`` keys in injection order.
    Never raises.
    """
    if not config.settings.enabled:
        return []
    return guard.safe_invoke("record_answer", _record_answer, text, default=[])
