"""Chroma's columnar results and arguments as one record per id.

``query`` returns one list per query (``{"ids": [[...], ...], "distances":
[[...], ...], ...}``), ``get`` flat lists; ``add``/``upsert``/``update``
take ``ids`` with parallel ``documents``/``metadatas``, each either a list or
a single value. Reads and writes share ``record_text`` and ``lifecycle``,
so a record's text (hence its hash and token count) and lifecycle fields
are the same whichever way memobs saw it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Iterator

from memobs_otel.entities import LIFECYCLE_KEYS, TITLE_KEYS

_FIELD_KEYS = LIFECYCLE_KEYS + TITLE_KEYS
# metadata keys that usually hold the text of a record stored without a document
# (mem0 keeps its memory text in "data"), tried in this order
TEXT_KEYS = ("page_content", "text", "document", "content", "data", "memory")


def metadata_text(metadata: Any) -> str | None:
    """The first string among the metadata's ``TEXT_KEYS``, or None."""
    if isinstance(metadata, Mapping):
        for key in TEXT_KEYS:
            value = metadata.get(key)
            if isinstance(value, str):
                return value
    return None


def record_text(document: Any, metadata: Any) -> str:
    """The text of a record: its document; else the first string among its metadata's
    ``TEXT_KEYS``; else its metadata as JSON (sorted keys); else ``""``."""
    if isinstance(document, str):
        return document
    text = metadata_text(metadata)
    if text is not None:
        return text
    if isinstance(metadata, Mapping) and metadata:
        try:
            return json.dumps(dict(metadata), sort_keys=True, default=str, ensure_ascii=False)
        except Exception:  # noqa: BLE001
            return str(metadata)
    return ""


def lifecycle(metadata: Any) -> dict[str, Any]:
    """The metadata's lifecycle fields (``created_at``, ``status``, ``title``…)."""
    if not isinstance(metadata, Mapping):
        return {}
    found = {key: metadata[key] for key in _FIELD_KEYS if metadata.get(key) is not None}
    if "title" not in found and "name" in found:
        found["title"] = found["name"]
    found.pop("name", None)
    return found


def _column(result: Mapping, key: str, n: int) -> list:
    values = result.get(key)
    return list(values) if isinstance(values, (list, tuple)) and len(values) == n else [None] * n


def _items(ids: list, documents: list, metadatas: list, distances: list, seen: set, out: list) -> None:
    for rid, document, metadata, distance in zip(ids, documents, metadatas, distances):
        if rid is None or str(rid) in seen:
            continue
        seen.add(str(rid))
        out.append({
            "id": str(rid),
            "content": record_text(document, metadata),
            "score": float(distance) if isinstance(distance, (int, float)) and not isinstance(distance, bool)
            else None,
            "metadata": lifecycle(metadata),
        })


def query_items(result: Any) -> list[dict]:
    """One dict per distinct id of a ``query`` result, queries in order; the score is the distance."""
    out: list[dict] = []
    if not isinstance(result, Mapping) or not isinstance(result.get("ids"), (list, tuple)):
        return out
    groups = result["ids"]
    seen: set = set()
    per_query = {key: _column(result, key, len(groups)) for key in ("documents", "metadatas", "distances")}
    for i, ids in enumerate(groups):
        ids = list(ids or ())
        n = len(ids)
        columns = [per_query[key][i] for key in ("documents", "metadatas", "distances")]
        columns = [list(c) if isinstance(c, (list, tuple)) and len(c) == n else [None] * n for c in columns]
        _items(ids, *columns, seen, out)
    return out


def get_items(result: Any) -> list[dict]:
    """One dict per id of a ``get`` result (no score)."""
    out: list[dict] = []
    if not isinstance(result, Mapping) or not isinstance(result.get("ids"), (list, tuple)):
        return out
    ids = list(result["ids"])
    n = len(ids)
    _items(ids, _column(result, "documents", n), _column(result, "metadatas", n), [None] * n, set(), out)
    return out


def _many(value: Any, n: int | None = None) -> list | None:
    """Chroma's ``OneOrMany``: a single value as a one-item list."""
    if value is None:
        return None
    if isinstance(value, (str, Mapping)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def written(ids: Any, documents: Any, metadatas: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(id, document or None, metadata or None)`` for each id given to a write."""
    id_list = _many(ids) or []
    docs = _many(documents)
    metas = _many(metadatas)
    for i, rid in enumerate(id_list):
        document = docs[i] if docs is not None and i < len(docs) else None
        metadata = metas[i] if metas is not None and i < len(metas) else None
        yield str(rid), document, metadata


def id_list(ids: Any) -> list[str]:
    return [str(rid) for rid in _many(ids) or []]
