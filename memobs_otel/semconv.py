"""Every attribute, event and span name memobs emits, in one place.

The names follow the OpenTelemetry GenAI memory/retrieval conventions
(``gen_ai.*``), OpenInference's retriever conventions (``openinference.*``,
``retrieval.documents.*``) so that Phoenix, Langfuse and MLflow show a
retrieval span with its documents, and memobs's own ``memobs.*`` namespace for
what neither covers: one event per injected memory entity, citations and
writes. The SQLite exporter, the OTLP ingester and the query module read
the same constants, so a name changes here or nowhere.
"""

# --- retrieval span -------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_MEMORY_STORE_ID = "gen_ai.memory.store.id"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"  # = session.id, on retrieval and memory spans
# the query text, only with content capture on: retrieval / search_memory
GEN_AI_RETRIEVAL_QUERY_TEXT = "gen_ai.retrieval.query.text"
GEN_AI_MEMORY_QUERY_TEXT = "gen_ai.memory.query.text"
# how many documents the call returned: not a GenAI convention name, so memobs's own
MEMOBS_RECORD_COUNT = "memobs.record.count"
GEN_AI_MEMORY_RECORD_COUNT = MEMOBS_RECORD_COUNT  # the constant's old name (the value was gen_ai.*)

OPERATION_SEARCH_MEMORY = "search_memory"
OPERATION_RETRIEVAL = "retrieval"

OPENINFERENCE_SPAN_KIND = "openinference.span.kind"
OPENINFERENCE_KIND_RETRIEVER = "RETRIEVER"
INPUT_VALUE = "input.value"  # the query text; only with content capture on
# the documents as one JSON list (id, score, metadata; content only with capture on),
# for UIs that show only a span's input and output (MLflow, Langfuse)
OUTPUT_VALUE = "output.value"
OUTPUT_MIME_TYPE = "output.mime_type"
MIME_JSON = "application/json"
RETRIEVAL_DOCUMENT_PREFIX = "retrieval.documents"
RETRIEVAL_DOCUMENT_ID = "document.id"
RETRIEVAL_DOCUMENT_SCORE = "document.score"
RETRIEVAL_DOCUMENT_CONTENT = "document.content"
RETRIEVAL_DOCUMENT_METADATA = "document.metadata"  # JSON: title, lifecycle fields, source_id
# entity metadata keys a plugin sets that go into document.metadata too (LlamaIndex: the node's source)
DOCUMENT_METADATA_KEYS = ("source_id",)
MAX_RETRIEVAL_DOCUMENTS = 32  # documents listed as span attributes

MEMOBS_INJECTION_COUNT = "memobs.injection.count"
MEMOBS_INJECTION_TOKENS = "memobs.injection.tokens"
MEMOBS_TOKENIZER = "memobs.tokenizer"
MEMOBS_TOKENS_ESTIMATED = "memobs.tokens.estimated"
# set on a retrieval span that ran inside another one (an ensemble's member
# retriever): its documents are listed, but the injections belong to the outer
# span, so no memobs.injection events are emitted for it.
MEMOBS_NESTED = "memobs.retrieval.nested"
# on the child spans that carry events past the SDK's per-span event limit
MEMOBS_OVERFLOW_SPAN_NAME = "memobs.injection.overflow"
MEMOBS_OVERFLOW_FIRST_RANK = "memobs.overflow.first_rank"

USER_ID = "user.id"
SESSION_ID = "session.id"
MEMOBS_REQUEST_ID = "memobs.request.id"
# the memobs.context block (turn, SPEC §2) a span was started in: 16 hex chars,
# random per block; put on every span started inside it (turns.TurnSpanProcessor)
MEMOBS_TURN_ID = "memobs.turn.id"
ERROR_TYPE = "error.type"

# --- events ---------------------------------------------------------------
EVENT_INJECTION = "memobs.injection"
EVENT_CITATION = "memobs.citation"
EVENT_WRITE = "memobs.entity.write"

ENTITY_TYPE = "memobs.entity.type"
ENTITY_ID = "memobs.entity.id"
ENTITY_RANK = "memobs.entity.rank"
ENTITY_SCORE = "memobs.entity.score"
ENTITY_TOKENS = "memobs.entity.tokens"
ENTITY_TOKENS_ESTIMATED = "memobs.entity.tokens_estimated"  # true when the count is estimated past the cap
ENTITY_CONTENT_HASH = "memobs.entity.content_hash"
ENTITY_SIMHASH = "memobs.entity.simhash"
# b-bit MinHash of the normalised text (128 hex chars, see fingerprint.py): the
# duplicate signal's fingerprint, for memories of every length
ENTITY_MINHASH = "memobs.entity.minhash"
ENTITY_CREATED_AT = "memobs.entity.created_at"
ENTITY_UPDATED_AT = "memobs.entity.updated_at"
ENTITY_STATUS = "memobs.entity.status"
ENTITY_VERSION = "memobs.entity.version"
ENTITY_PARENT_ID = "memobs.entity.parent_id"
ENTITY_SUPERSEDED_BY = "memobs.entity.superseded_by"
ENTITY_TITLE = "memobs.entity.title"
ENTITY_CONTENT = "memobs.entity.content"  # only with content capture on

# lifecycle fields read from an item or its metadata -> event attribute
LIFECYCLE_ATTRIBUTES = {
    "created_at": ENTITY_CREATED_AT,
    "updated_at": ENTITY_UPDATED_AT,
    "status": ENTITY_STATUS,
    "version": ENTITY_VERSION,
    "parent_id": ENTITY_PARENT_ID,
    "superseded_by": ENTITY_SUPERSEDED_BY,
    "title": ENTITY_TITLE,
}

CITATION_METHOD = "memobs.citation.method"
CITATION_SCORE = "memobs.citation.score"
CITATION_EXPLICIT = "explicit"
CITATION_MARKER = "marker"
CITATION_OVERLAP = "overlap"

WRITE_OP = "memobs.write.op"
WRITE_OPS = ("create", "update", "delete", "archive")
# span name (and gen_ai.operation.name) per write op, as the GenAI memory conventions
# name them: create and update are both an upsert, update_memory; an archive is an
# update whose status is "archived"
WRITE_SPAN_NAMES = {
    "create": "update_memory",
    "update": "update_memory",
    "delete": "delete_memory",
    "archive": "update_memory",
}
CITE_SPAN_NAME = "cite_memory"

# --- inventory (memobs.record_inventory, inventory.py) ----------------------
# one write event per item, op "inventory": the item is in the store (no injection)
WRITE_OP_INVENTORY = "inventory"
INVENTORY_SPAN_NAME = "inventory"  # "inventory {store}"
INVENTORY_OVERFLOW_SPAN_NAME = "memobs.inventory.overflow"
INVENTORY_ENTITY_TYPE = "memobs.inventory.entity_type"
INVENTORY_COMPLETE = "memobs.inventory.complete"  # bool: the snapshot is the whole store (scope)
INVENTORY_ID_PREFIXES = "memobs.inventory.id_prefixes"  # str[]: the scope is these entity ids only
INVENTORY_COUNT = "memobs.inventory.count"
# on the delete write the SQLite writer derives for an entity a complete inventory lacks
INVENTORY_ABSENT = "memobs.inventory.absent"

# --- prompt size (context budget, SPEC §6b) -------------------------------
# what LLM instrumentations record of a call's prompt size
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"  # GenAI conventions, OpenLLMetry
LLM_TOKEN_COUNT_PROMPT = "llm.token_count.prompt"  # OpenInference
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
LLM_MODEL_NAME = "llm.model_name"  # OpenInference
# memobs.record_prompt's span (and the LangChain/LlamaIndex plugins' when no
# LLM instrumentation records the call): memobs's own attribute, so that no
# backend counts it as an LLM call's usage
PROMPT_SPAN_NAME = "memobs.prompt"
MEMOBS_PROMPT_TOKENS = "memobs.prompt.tokens"

# --- instrumentation scope ------------------------------------------------
TRACER_NAME = "memobs_otel"
