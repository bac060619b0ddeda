"""Qdrant points as memobs entities: ids, the text of a payload, lifecycle fields.

Reads and writes use the same functions, so a point's id, text (hence its
content hash and token count) and lifecycle fields are the same whether
memobs saw it written by ``upsert`` or returned by ``query_points``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Iterator

from memobs_otel.entities import LIFECYCLE_KEYS, TITLE_KEYS

# payload keys that usually hold the document text, tried in this order:
# LangChain (page_content), LlamaIndex (text), Chroma-style (document), mem0 (data)
CONTENT_KEYS = ("page_content", "text", "document", "content", "data", "memory")
_FIELD_KEYS = LIFECYCLE_KEYS + TITLE_KEYS


def point_id(raw: Any) -> str | None:
    """A point id as text, written the way Qdrant returns it (UUIDs lower-case, with hyphens)."""
    if raw is None or isinstance(raw, bool):
        return None
    if hasattr(raw, "WhichOneof"):  # a gRPC PointId: {num | uuid}
        kind = raw.WhichOneof("point_id_options")
        raw = getattr(raw, kind) if kind else None
        if raw is None:
            return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, uuid.UUID):
        return str(raw)
    text = str(raw)
    try:
        return str(uuid.UUID(text))  # Qdrant normalises any UUID spelling
    except ValueError:
        return text


def payload_text(payload: Any, content_field: str | None) -> str:
    """The text a payload contributes to the prompt.

    ``content_field`` names the key; unset (or missing from this payload),
    the first of ``CONTENT_KEYS`` holding a string; else the whole payload as
    JSON (sorted keys). No payload (``with_payload=False``): empty text.
    """
    if payload is None:
        return ""
    if not isinstance(payload, Mapping):
        return str(payload)
    for key in (content_field,) if content_field is not None else CONTENT_KEYS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    if content_field is not None:
        for key in CONTENT_KEYS:
            value = payload.get(key)
            if isinstance(value, str):
                return value
    try:
        return json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    except Exception:  # noqa: BLE001 - e.g. non-str keys
        return str(payload)


def lifecycle(payload: Any) -> dict[str, Any]:
    """The payload's lifecycle fields (``created_at``, ``status``, ``title``…).

    From the payload itself, else from its ``metadata`` dict (the layout
    LangChain's ``QdrantVectorStore`` writes).
    """
    if not isinstance(payload, Mapping):
        return {}
    nested = payload.get("metadata")
    sources = (payload, nested) if isinstance(nested, Mapping) else (payload,)
    found: dict[str, Any] = {}
    for key in _FIELD_KEYS:
        for source in sources:
            value = source.get(key)
            if value is not None and not isinstance(value, (Mapping, list)):
                found[key] = value
                break
    if "title" not in found and "name" in found:
        found["title"] = found["name"]
    found.pop("name", None)
    return found


def result_points(result: Any) -> list:
    """The points of a ``QueryResponse``, a list of them (batch) or a list of points (``search``)."""
    points = getattr(result, "points", None)
    if points is not None:
        return list(points)
    found: list = []
    if isinstance(result, (list, tuple)):
        for element in result:
            inner = getattr(element, "points", None)
            if inner is not None:
                found.extend(inner)
            else:
                found.append(element)
    return found


def entity_items(result: Any, content_field: str | None) -> list[dict]:
    """One dict per distinct point, in result order, for memobs's extractor.

    A point returned by several requests of a batch is listed once, at its
    first (best) place.
    """
    items, seen = [], set()
    for point in result_points(result):
        pid = point_id(getattr(point, "id", None))
        if pid is None or pid in seen:
            continue
        seen.add(pid)
        payload = getattr(point, "payload", None)
        score = getattr(point, "score", None)
        items.append({
            "id": pid,
            "content": payload_text(payload, content_field),
            "score": float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
            "metadata": lifecycle(payload),
        })
    return items


def written_points(points: Any) -> Iterator[tuple[str, Any]]:
    """``(id, payload)`` of each point given to ``upsert``: a list of ``PointStruct`` or a ``Batch``."""
    ids = getattr(points, "ids", None)
    if ids is not None:  # models.Batch: columns
        payloads = getattr(points, "payloads", None) or [None] * len(ids)
        for raw, payload in zip(ids, payloads):
            pid = point_id(raw)
            if pid is not None:
                yield pid, payload
        return
    if not isinstance(points, (list, tuple)):
        return  # a one-shot iterator: upsert has consumed it
    for point in points:
        if hasattr(point, "WhichOneof") or type(point).__module__.endswith("_pb2"):
            point = _rest_point(point)
        pid = point_id(getattr(point, "id", None))
        if pid is not None:
            yield pid, getattr(point, "payload", None)


def _rest_point(point: Any) -> Any:
    from qdrant_client.conversions.conversion import GrpcToRest

    return GrpcToRest.convert_point_struct(point)


def selected_ids(selector: Any) -> list[str] | None:
    """The ids a ``delete`` selector names, or None for a filter (which points match is unknown)."""
    if hasattr(selector, "WhichOneof"):  # a gRPC PointsSelector
        if selector.WhichOneof("points_selector_one_of") is None:
            return None
        from qdrant_client.conversions.conversion import GrpcToRest

        selector = GrpcToRest.convert_points_selector(selector)
    if isinstance(selector, (list, tuple)):
        raw = selector
    elif isinstance(getattr(selector, "points", None), (list, tuple)):  # models.PointIdsList
        raw = selector.points
    else:
        return None  # Filter, FilterSelector
    return [pid for pid in map(point_id, raw) if pid is not None]
