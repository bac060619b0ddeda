"""The text of a LangGraph store item that memobs measures: what the store's index embeds.

A store created with ``index={"fields": ["text"], ...}`` embeds (and a
search matches on) ``value["text"]``, not the whole value; that text is what
an agent puts in its prompt, so it is what memobs counts tokens of and
hashes. The paths come from, in order:

1. the ``fields`` option of ``memobs.instrument("langgraph", fields=[...])``;
2. the store's own parsed index configuration (``index_config`` with the
   ``__tokenized_fields`` every LangGraph store computes from its config:
   ``fields`` for ``InMemoryStore``/Postgres, ``text_fields`` for the
   SQLite stores), else its ``fields``/``text_fields``;
3. ``"$"``: the whole value as JSON (sorted keys), which is also what a
   store embeds when no fields are configured.

Paths are read with LangGraph's own ``get_text_at_path`` (nested fields,
``[*]`` arrays, ``{a,b}``); several matches are joined with newlines. A
``put``'s per-call ``index=[...]`` is not used, so the write and the later
reads of an item carry the same text and content hash.
"""

from __future__ import annotations

from typing import Any, Sequence

_WHOLE = "$"


def store_paths(store: Any, fields: Sequence[str] | None) -> list:
    """The paths (strings or LangGraph's pre-tokenized lists) whose text is measured."""
    if fields:
        return list(fields)
    config = getattr(store, "index_config", None)
    if isinstance(config, dict):
        tokenized = config.get("__tokenized_fields")
        if isinstance(tokenized, list) and tokenized:
            return [tokens for _, tokens in tokenized]
        configured = config.get("fields") or config.get("text_fields")
        if isinstance(configured, str):
            return [configured]
        if isinstance(configured, (list, tuple)) and configured:
            return list(configured)
    return [_WHOLE]


def embedded_text(value: Any, paths: list) -> str:
    """The text at ``paths`` in an item's ``value``, joined with newlines."""
    from langgraph.store.base import get_text_at_path

    texts: list[str] = []
    for path in paths:
        texts.extend(get_text_at_path(value, path))
    return "\n".join(texts)


def entity_id(namespace: Any, key: Any) -> str:
    """``"users/alice:prefs"`` for namespace ``("users", "alice")`` and key ``"prefs"``."""
    return f"{'/'.join(str(label) for label in namespace)}:{key}"
