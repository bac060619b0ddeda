"""memobs for LlamaIndex chat memory: the chat history a chat engine puts in the prompt.

    memobs.instrument("llamaindex")         # retrievers and chat memory together

    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm)
    engine.chat("And the refund window?")   # the history it injects is recorded

Chat engines (``condense_plus_context``, ``context``, ``condense_question``,
``simple``) and agents read the conversation so far with their memory's
``get(input=...)``/``aget(...)`` and put the messages it returns in the
prompt, beside the retrieved nodes. memobs records that call like a
retrieval: a span ``"search_memory {store}"`` (``store`` = the memory's class
name, e.g. ``Memory`` or ``ChatMemoryBuffer``) and one ``memobs.injection``
event per message returned, entity type ``chat_message``:

- entity id: the first 16 hex chars of the content hash of
  ``"{role}: {text}"`` (messages have no id of their own; the same message
  in the same role is the same entity wherever it reappears);
- text: the message's text blocks (``ChatMessage.content``), which is what
  the token count, hashes and (with content capture on) the content are of;
  messages without text (a tool call alone) are not recorded;
- rank: the message's position in the returned history (0 = oldest); no
  score.

What is patched: ``get`` and ``aget`` of every ``BaseMemory`` subclass
defined when ``memobs.instrument("llamaindex")`` runs (LlamaIndex's own
``Memory``, ``ChatMemoryBuffer``, ``ChatSummaryMemoryBuffer``,
``SimpleComposableMemory``, ``VectorMemory``, and yours if defined first),
only where a class defines the method itself. Where one runs the other
(``Memory.get`` runs ``aget``; ``ChatMemoryBuffer.aget`` runs ``get`` in a
thread; a composable memory runs its members), the inner call is a nested
span without injection events, so each message is counted once. ``get_all``
(the engine's ``chat_history`` property, not a prompt) is not recorded.

Options: ``chat_entity_type`` of ``memobs.instrument("llamaindex", ...)``
(default ``"chat_message"``).
"""

from __future__ import annotations

from typing import Any

from memobs_otel import semconv
from memobs_otel.fingerprint import content_hash
from memobs_otel.instrumentation import PreparedCall, all_subclasses, prepared_retrieval_wrappers
from memobs_otel.recording import RetrievalSpec

ENTITY_TYPE = "chat_message"
_KIND = "llamaindex chat memory"


def _role(message: Any) -> str:
    role = getattr(message, "role", None)
    return str(getattr(role, "value", role))


def message_entities(messages: Any) -> list[dict]:
    """The messages of a memory's ``get`` as entities (see the module docstring)."""
    found = []
    for message in messages if isinstance(messages, list) else ():
        text = getattr(message, "content", None)
        if not isinstance(text, str) or not text:
            continue
        found.append({"id": content_hash(f"{_role(message)}: {text}")[:16], "content": text})
    return found


def _memory_classes() -> list[type]:
    import llama_index.core.memory  # noqa: F401 - defines LlamaIndex's memory classes
    from llama_index.core.memory.types import BaseMemory

    return all_subclasses(BaseMemory)


def wrap_chat_memory(instrumentor: Any, entity_type: str = ENTITY_TYPE) -> None:
    """Patch every chat memory class's ``get``/``aget`` through ``instrumentor.wrap``."""

    def prepare(memory: Any, args: tuple, kwargs: dict) -> PreparedCall:
        spec = RetrievalSpec(entity_type, type(memory).__name__, semconv.OPERATION_SEARCH_MEMORY)
        query = args[0] if args else kwargs.get("input")
        return PreparedCall(spec, query if isinstance(query, str) else None, None, message_entities)

    get, aget = prepared_retrieval_wrappers(_KIND, prepare)
    for cls in _memory_classes():
        own = vars(cls)
        if "get" in own and not getattr(own["get"], "__isabstractmethod__", False):
            instrumentor.wrap(cls, "get", get)
        if "aget" in own and not getattr(own["aget"], "__isabstractmethod__", False):
            instrumentor.wrap(cls, "aget", aget)
