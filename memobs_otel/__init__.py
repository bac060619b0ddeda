"""memobs_otel — memory observability for AI agents, as OpenTelemetry middleware.

    import memobs_otel as memobs

    memobs.configure(db_path="memobs.db")

    @memobs.observe_retrieval(entity_type="playbook", store="playbooks")
    def search_playbooks(query, k=5):
        ...

    with memobs.context(user_id="u-1", session_id="s-1"):
        hits = search_playbooks("refund policy")

Every entity a decorated search returns becomes a ``memobs.injection`` span
event with its token count, ids, rank, score and content fingerprint; see
the README for the query API, the CLI and the OTLP set-up.
"""

from .citations import record_answer
from .context import context
from .decorators import observe_retrieval
from .hookspecs import hookimpl
from .instrumentation import instrument, uninstrument
from .inventory import record_inventory
from .prompts import record_prompt
from .recording import cite, record_injection, record_write
from .setup import MemobsHandle, configure
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
