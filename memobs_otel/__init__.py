"""memobs_otel — memory observability for AI agents, as OpenTelemetry middleware.

    import memobs_otel as memobs

    memobs.configure(db_path="memobs.db")

    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def search_playbooks(query, k=5):
        ...

    with memobs.context(user_id="u-1", session_id="s-1"):   # one turn
        hits = search_playbooks("refund policy")
        answer = llm(prompt_with(hits))
        memobs.record_answer(answer)                       # which entries the answer used

Every entity a decorated search returns becomes a ``memobs.injection`` span
event with its token count, ids, rank, score and content fingerprints. Then
``memobs review --db memobs.db`` lists what to act on (or, from Python,
``memobs.open_store("memobs.db").memory_review()``).

Entry points:

- set-up: ``configure`` (provider, SQLite file, OTLP); ``instrument`` /
  ``uninstrument`` for LangChain, LlamaIndex, mem0, LangGraph, Google ADK,
  Qdrant and Chroma (``plugins/memobs_*``), or ``@observe_retrieval``;
- recording: ``context`` (the turn), ``record_answer`` and ``cite``
  (citations), ``record_injection``, ``record_write``, ``record_inventory``,
  ``record_prompt`` (the context budget); none of them ever raises;
- reading: ``open_store`` (SQLite path, ``chdb://`` or ``clickhouse://``
  URL) → ``injection_stats``, ``memory_review``, ``context_budget``,
  ``dismiss``; the ``memobs`` CLI (``memobs --help``) and
  ``memobs_otel.report`` for the HTML page;
- extending: ``hookimpl`` and the hooks in ``hookspecs``.

The README is the user guide; ``docs/`` holds the maintainer notes.
"""

from .citations import record_answer
from .context import context
from .decorators import observe_retrieval
from .hookspecs import hookimpl
from .instrumentation import instrument, uninstrument
from .inventory import record_inventory
from .prompts import record_prompt
from .recording import cite, record_injection, record_write
from .pipeline import MemobsHandle, configure
from .store import InjectionStat, ReviewCandidate, StoreError, open_store

__all__ = [
    "InjectionStat",
    "MemobsHandle",
    "ReviewCandidate",
    "StoreError",
    "cite",
    "configure",
    "context",
    "hookimpl",
    "instrument",
    "observe_retrieval",
    "open_store",
    "record_answer",
    "record_injection",
    "record_inventory",
    "record_prompt",
    "record_write",
    "uninstrument",
]
