"""Turning a search function's return value into memory entities.

An ``Entity`` is what gets injected into a prompt: an id, its content, the
retriever's score and rank, its metadata and lifecycle fields. The built-in
extractor understands, by shape rather than by import (so no framework
needs to be installed):

- ``None`` (nothing), a string (one entity), a dict (one entity);
- mem0-style results ``{"results": [...]}``;
- lists, tuples, sets and iterables of any of the shapes here (a one-shot
  iterator given to ``extract_entities`` is read; one *inside* a result is
  skipped, never consumed; a decorated search's one-shot result is recorded
  item by item as the caller takes it, see ``streaming``);
- ``(item, score)`` pairs, as ``similarity_search_with_score`` returns;
- dataclasses and pydantic models;
- LangChain ``Document`` (``page_content`` + ``metadata`` + ``id``);
- LlamaIndex ``NodeWithScore`` (``.node`` + ``.score``) and its nodes
  (``node_id``, ``get_content()``, ``metadata``);
- any other object: its attributes, read like dict keys.

Fields are looked up under common names (``id``/``memory_id``/``doc_id``…,
``content``/``memory``/``text``/``page_content``…, ``score``/``similarity``…);
lifecycle fields (``created_at``, ``updated_at``, ``status``, ``version``,
``parent_id``, ``superseded_by``, ``title``/``name``) come from the item
itself, else from its ``metadata``. An item without an id gets a stable one:
the first 16 hex chars of its content hash. Plugins can take over extraction
for their own types with the ``memobs_extract_entities`` hook.
"""

from __future__ import annotations

import dataclasses
import json
from abc import get_cache_token
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable, NamedTuple

from .measure import content_hash  # bounded: a 10 MB item without an id costs what a 64K one does

ID_KEYS = ("id", "entity_id", "memory_id", "doc_id", "document_id", "node_id", "id_", "uuid", "key", "_id")
CONTENT_KEYS = ("content", "memory", "text", "page_content", "document", "body", "value", "data")
SCORE_KEYS = ("score", "similarity", "relevance_score", "_score")
LIFECYCLE_KEYS = ("created_at", "updated_at", "status", "version", "parent_id", "superseded_by")
TITLE_KEYS = ("title", "name")
_OPTIONAL_KEYS = frozenset(LIFECYCLE_KEYS + TITLE_KEYS)
_NO_METADATA: dict[str, Any] = {}  # never mutated: Entity gets a copy


@dataclass
class Entity:
    entity_type: str
    entity_id: str
    content: str
    score: float | None = None
    rank: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: Any = None
    updated_at: Any = None
    status: str | None = None
    version: Any = None
    parent_id: str | None = None
    superseded_by: str | None = None
    title: str | None = None
    # the text an answer would quote, when it differs from ``content`` (what the
    # prompt holds): LlamaIndex puts metadata lines before a node's text, and an
    # answer repeats the text, so citations compare against this
    cite_text: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.entity_type, self.entity_id)


def attribute_value(value: Any) -> str | int | float | bool | None:
    """A value as an OpenTelemetry attribute (primitive) or ``None``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_mapping(value: Any) -> bool:
    # dict first: the ABC check costs a Python-level __instancecheck__ call
    return isinstance(value, dict) or isinstance(value, Mapping)


def _as_mapping(item: Any) -> Mapping[str, Any] | None:
    """A read-only field view of an item, or None for unsupported values."""
    if _is_mapping(item):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return None


class _Attrs(Mapping):
    """Dict-like view of an arbitrary object's attributes."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    # A property may raise anything, SystemExit included: that is the item's
    # code, run only because memobs reads it, so it counts as "missing"
    # (KeyboardInterrupt excepted: it is the user's; see guard).
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self._obj, key)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - properties may raise
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return getattr(self._obj, key, default)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001
            return default

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0


# --- pydantic models without the cost of missing attributes ------------------------
# Every key an extractor probes and a model lacks goes through pydantic's
# ``__getattr__`` and a raised AttributeError, the costliest lookup there is
# (a LangChain Document lacks ~20 of them). For a pydantic v2 model whose attribute lookup is
# pydantic's own, with no extra fields, a name that is neither on the class
# nor a private attribute resolves exactly to the instance ``__dict__`` entry
# or to "missing" — so it is read from there; every other name takes the
# ordinary path.

_plain_models: dict[type, dict[str, bool] | None] = {}


def _model_slow_names(cls: type) -> dict[str, bool] | None:
    """Per-name "use real getattr" cache for a plain pydantic model class, else None."""
    try:
        return _plain_models[cls]
    except KeyError:
        pass
    owner = next((c for c in cls.__mro__ if "__getattr__" in vars(c)), None)
    plain = (owner is not None and owner.__module__ == "pydantic.main" and owner.__name__ == "BaseModel"
             and cls.__getattribute__ is object.__getattribute__
             and isinstance(getattr(cls, "__pydantic_fields__", None), dict)
             and isinstance(getattr(cls, "__private_attributes__", None), dict))
    names: dict[str, bool] | None = {} if plain else None
    if len(_plain_models) < 1024:
        _plain_models[cls] = names
    return names


def _model_dict(obj: Any) -> dict[str, Any] | None:
    """``obj.__dict__`` when missing names can be read from it (see above), else None."""
    if _model_slow_names(type(obj)) is None:
        return None
    try:
        if object.__getattribute__(obj, "__pydantic_extra__"):
            return None
        found = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return found if type(found) is dict else None


def _needs_getattr(cls: type, name: str) -> bool:
    names = _plain_models[cls]
    slow = names.get(name)
    if slow is None:
        slow = names[name] = hasattr(cls, name) or name in cls.__private_attributes__
    return slow


def _has_attr(obj: Any, name: str) -> bool:
    """``hasattr(obj, name)``."""
    found = _model_dict(obj)
    if found is None or _needs_getattr(type(obj), name):
        return hasattr(obj, name)
    return name in found


class _ModelAttrs(_Attrs):
    """``_Attrs`` of a plain pydantic model (see ``_model_dict``)."""

    def __init__(self, obj: Any, found: dict[str, Any]) -> None:
        self._obj = obj
        self._dict = found
        self._cls = type(obj)
        self._names = _plain_models[self._cls]

    def __getitem__(self, key: str) -> Any:
        if _needs_getattr(self._cls, key):
            return super().__getitem__(key)
        try:
            return self._dict[key]
        except KeyError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        slow = self._names.get(key)  # inlined _needs_getattr: this is the hot call
        if slow is None:
            slow = _needs_getattr(self._cls, key)
        if slow:
            return super().get(key, default)
        return self._dict.get(key, default)

    def raw(self, key: str, default: Any = None) -> Any:
        """``getattr(obj, key, default)``, exceptions included."""
        if _needs_getattr(self._cls, key):
            return getattr(self._obj, key, default)
        return self._dict.get(key, default)


def _attrs(item: Any) -> _Attrs:
    found = _model_dict(item)
    return _Attrs(item) if found is None else _ModelAttrs(item, found)


# --- whole-item fast path for plain pydantic models (LangChain ``Document``) ------
# For a plain model class (above) that is neither a Mapping nor a dataclass,
# whose every probed name (below) is read from the instance ``__dict__`` by
# ``_ModelAttrs``, extraction reads that dict directly: the same lookups,
# without a view object and a method call per probed key, and without the
# per-item Mapping/dataclass checks (``is_dataclass`` on a pydantic instance
# goes through the model metaclass's ``__getattr__`` and a raised
# AttributeError). The per-class answer is dropped whenever an ABC
# registration changes (``abc.get_cache_token``).

_PROBED_NAMES = frozenset(("metadata", "get_content", "node", "score") + ID_KEYS + CONTENT_KEYS + SCORE_KEYS
                          + LIFECYCLE_KEYS + TITLE_KEYS)
_fast_models: dict[type, bool] = {}
_fast_models_token = get_cache_token()


def _check_abc_token() -> None:
    """Forget the per-class answers below when an ABC registration changed."""
    global _fast_models_token
    token = get_cache_token()
    if token != _fast_models_token:
        _fast_models.clear()
        _model_plans.clear()
        _fast_models_token = token


def _is_fast_model(cls: type) -> bool:
    """True for a plain pydantic model class that ``_model_fields`` may read directly."""
    _check_abc_token()
    try:
        return _fast_models[cls]
    except KeyError:
        pass
    fast = (_model_slow_names(cls) is not None and cls in _plain_models and not issubclass(cls, Mapping)
            and not dataclasses.is_dataclass(cls) and hasattr(cls, "model_fields")
            and not any(_needs_getattr(cls, name) for name in _PROBED_NAMES))
    if len(_fast_models) < 1024:
        _fast_models[cls] = fast
    return fast


def _model_fields(item: Any) -> dict[str, Any] | None:
    """The instance ``__dict__`` of a fast-path model (see above), else None."""
    # once per item: _is_fast_model's cached answer and _model_dict, inlined
    fast = _fast_models.get(type(item)) if get_cache_token() == _fast_models_token else None
    if fast is None:
        fast = _is_fast_model(type(item))
    if not fast:
        return None
    try:
        # plain attribute access: the class's lookup is object's (checked), and
        # pydantic's __getattr__ raises AttributeError for these when unset, too
        if item.__pydantic_extra__:
            return None
        found = item.__dict__
    except AttributeError:
        return None
    return found if type(found) is dict else None


# --- per-class plans for those models (LangChain ``Document``) ------------------------
# A fast-path model class (above) has its fields, and only them, in the
# instance ``__dict__``. When none of them is a lifecycle/title field,
# ``get_content`` or ``node``, an item whose ``__dict__`` holds exactly those
# fields is read by a plan made once per class: the probed names it has, in
# probe order. Same lookups and results as ``entity_from_item`` (which any
# other item, or metadata with lifecycle fields, still goes through).


class _Plan(NamedTuple):
    keys: frozenset  # the model's fields: an item's __dict__ must hold exactly these
    content_keys: tuple[str, ...]
    id_keys: tuple[str, ...]
    score_keys: tuple[str, ...]
    metadata: bool


_model_plans: dict[type, _Plan | None] = {}
_UNPLANNED: Any = object()


def _model_plan(cls: type) -> _Plan | None:
    _check_abc_token()
    plan = _model_plans.get(cls, _UNPLANNED)
    if plan is not _UNPLANNED:
        return plan
    plan = None
    fields = getattr(cls, "__pydantic_fields__", None) if _is_fast_model(cls) else None
    if isinstance(fields, dict) and all(type(name) is str for name in fields):
        names = frozenset(fields)
        if names.isdisjoint(_OPTIONAL_KEYS) and "get_content" not in names and "node" not in names:
            plan = _Plan(names, tuple(k for k in CONTENT_KEYS if k in names), tuple(k for k in ID_KEYS if k in names),
                         tuple(k for k in SCORE_KEYS if k in names), "metadata" in names)
    if len(_model_plans) < 1024:
        _model_plans[cls] = plan
    return plan


def _planned_entity(item: Any, plan: _Plan, entity_type: str, score: float | None, rank: int) -> Entity | None:
    """``entity_from_item`` for an item of a planned class, or None: then use ``entity_from_item``."""
    try:
        if item.__pydantic_extra__:
            return None
        fields = item.__dict__
    except AttributeError:
        return None
    if type(fields) is not dict or fields.keys() != plan.keys:
        return None
    metadata = fields["metadata"] if plan.metadata else None
    if metadata is None:
        metadata = _NO_METADATA
    elif type(metadata) is not dict or not metadata.keys().isdisjoint(_OPTIONAL_KEYS):
        return None
    content = None
    for key in plan.content_keys:
        content = fields[key]
        if content is not None:
            break
    if type(content) is not str:
        return None
    raw_id = None
    for key in plan.id_keys:
        raw_id = fields[key]
        if raw_id is not None:
            break
    if raw_id is None and metadata is not _NO_METADATA:
        raw_id = _first(metadata, ID_KEYS)
    if score is None:
        raw_score = None
        for key in plan.score_keys:
            raw_score = fields[key]
            if raw_score is not None:
                break
        score = float(raw_score) if isinstance(raw_score, (int, float)) and not isinstance(raw_score, bool) else None
    entity_id = str(raw_id) if raw_id is not None else content_hash(content)[:16]
    return Entity(entity_type, entity_id, content, score, rank, {} if metadata is _NO_METADATA else dict(metadata))


def _first(fields: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None:
            return value
    return None


def _content_of(item: Any, fields: Mapping[str, Any], model: bool = False) -> str:
    """The item's content; ``model``: ``fields`` is a fast-path model's ``__dict__``."""
    if model or not _is_mapping(item):
        try:
            if model:
                get_content = fields.get("get_content")
            elif type(fields) is _ModelAttrs:
                get_content = fields.raw("get_content")
            else:
                get_content = getattr(item, "get_content", None)  # LlamaIndex nodes
            if callable(get_content):
                text = get_content()
                if isinstance(text, str):
                    return text
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - the item's code, SystemExit included
            pass
    value = _first(fields, CONTENT_KEYS)
    if isinstance(value, str):
        return value
    if value is not None:
        return _stable_text(value)
    if model or isinstance(fields, _Attrs):
        try:
            dump = getattr(item, "model_dump", None)  # pydantic: its fields as JSON
            if callable(dump):
                return _stable_text(dump())
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001
            pass
        return _str(item)
    return _stable_text(fields)


def _str(value: Any) -> str:
    """``str(value)``, or the type's name when the value's ``__str__`` raises (anything but Ctrl-C)."""
    try:
        return str(value)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        return f"<{type(value).__qualname__}>"


def _stable_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        return _str(value)


def entity_from_item(item: Any, entity_type: str, score: float | None = None, rank: int = 0) -> Entity:
    """One entity from one result item (a dict, model, document or node)."""
    if isinstance(item, str):
        return Entity(entity_type, content_hash(item)[:16], item, score, rank)
    model = False
    if type(item) is dict:
        fields = item
    else:
        fields = _model_fields(item)
        if fields is not None:
            model = True
        else:
            fields = _as_mapping(item)
            if fields is None:
                fields = _attrs(item)
    get = fields.get
    metadata = get("metadata")
    if metadata is None or not _is_mapping(metadata):
        metadata = _NO_METADATA
    content = None
    if type(item) is dict or (model and get("get_content") is None):
        content = _first(fields, CONTENT_KEYS)  # what _content_of finds first for these
    if not isinstance(content, str):
        content = _content_of(item, fields, model)
    raw_id = _first(fields, ID_KEYS)
    if raw_id is None and metadata is not _NO_METADATA:
        raw_id = _first(metadata, ID_KEYS)
    if score is None:
        raw_score = _first(fields, SCORE_KEYS)
        score = float(raw_score) if _is_number(raw_score) else None
    entity_id = str(raw_id) if raw_id is not None else content_hash(content)[:16]
    if type(fields) is dict and fields.keys().isdisjoint(_OPTIONAL_KEYS) and (
            metadata is _NO_METADATA or (type(metadata) is dict and metadata.keys().isdisjoint(_OPTIONAL_KEYS))):
        # the common hit (plain dict, Document): no lifecycle field, no title anywhere
        return Entity(entity_type, entity_id, content, score, rank, {} if metadata is _NO_METADATA else dict(metadata))

    # the item's own field, else its metadata's (LIFECYCLE_KEYS order)
    lifecycle = [fields.get(key) for key in LIFECYCLE_KEYS]
    if metadata is not _NO_METADATA:
        lifecycle = [metadata.get(key) if value is None else value
                     for key, value in zip(LIFECYCLE_KEYS, lifecycle)]
    title = _first(fields, TITLE_KEYS)
    if title is None and metadata is not _NO_METADATA:
        title = _first(metadata, TITLE_KEYS)
    created_at, updated_at, status, version, parent_id, superseded_by = (
        value if value is None else attribute_value(value) for value in lifecycle)
    return Entity(
        entity_type=entity_type,
        entity_id=entity_id,
        content=content,
        score=score,
        rank=rank,
        metadata=dict(metadata),
        created_at=created_at,
        updated_at=updated_at,
        status=status,
        version=version,
        parent_id=parent_id,
        superseded_by=superseded_by,
        title=attribute_value(title) if title is not None and not _is_mapping(title) else None,
    )


def _items(result: Any) -> list[tuple[Any, float | None]]:
    """Flatten a result into ``(item, score)`` pairs."""
    if result is None:
        return []
    if type(result) is list and not _is_mapping(result):
        return _list_items(result)
    if isinstance(result, (str, bytes)):
        return [(result.decode("utf-8", "replace") if isinstance(result, bytes) else result, None)]
    if _is_mapping(result):
        inner = result.get("results")
        if isinstance(inner, (list, tuple)):  # mem0 {"results": [...], "relations": ...}
            return _items(inner)
        return [(result, None)]
    if isinstance(result, tuple) and len(result) == 2 and _is_number(result[1]) and not _is_number(result[0]):
        return [(result[0], float(result[1]))]
    if _has_attr(result, "node") and _has_attr(result, "score"):  # NodeWithScore
        score = getattr(result, "score", None)
        return [(result.node, float(score) if _is_number(score) else None)]
    if _as_mapping(result) is not None or hasattr(type(result), "model_fields"):
        return [(result, None)]
    if isinstance(result, Iterable):
        return _list_items(result)
    return [(result, None)]


def _list_items(result: Iterable) -> list[tuple[Any, float | None]]:
    """``_items`` of an iterable that is none of the single-item shapes."""
    pairs: list[tuple[Any, float | None]] = []
    for element in result:
        if isinstance(element, (list, tuple)) and len(element) == 2:
            first, second = element[0], element[1]
            if _is_number(second) and not _is_number(first):  # (item, score)
                pairs.append((first, float(second)))
                continue
        if isinstance(element, (dict, str)):
            pairs.append((element, None))
        elif (found := _model_fields(element)) is not None and not ("node" in found and "score" in found):
            pairs.append((element, None))  # what _items(element) returns for it
        elif isinstance(element, Mapping):
            pairs.append((element, None))
        elif not hasattr(type(element), "__next__"):
            pairs.extend(_items(element))
        # else: a one-shot iterator inside the result is the host's to consume:
        # memobs neither reads nor records it (see ``streaming``)
    return pairs


def _list_entities(result: list, entity_type: str) -> list[Entity]:
    """``entity_from_item`` of each pair of ``_list_items(result)``, ranked from 0.

    Elements that are items of a planned model class, or ``(item, score)``
    tuples of one with a float or int score, are read by the plan (no
    generic shape checks: a pydantic model is not a number); every other
    element goes through ``_list_items`` and ``entity_from_item``.
    """
    _check_abc_token()
    plans = _model_plans
    entities: list[Entity] = []
    append = entities.append
    rank = 0
    for element in result:
        score = None
        item = element
        if type(element) is tuple and len(element) == 2:
            item = element[0]
            score = element[1]
            if type(score) is float or type(score) is int:
                score = float(score)
            else:
                item = None  # not the planned shape
        if item is not None:
            plan = plans.get(type(item), _UNPLANNED)
            if plan is _UNPLANNED:
                plan = _model_plan(type(item))
            if plan is not None:
                entity = _planned_entity(item, plan, entity_type, score, rank)
                if entity is not None:
                    append(entity)
                    rank += 1
                    continue
        for item, score in _list_items((element,)):
            append(entity_from_item(item, entity_type, score, rank))
            rank += 1
    return entities


def extract_entities(result: Any, entity_type: str | Callable[[Entity], str]) -> list[Entity]:
    """The built-in extractor: every entity in ``result``, ranked from 0.

    ``entity_type`` is a string, or a callable given each entity (its type
    set to ``"memory"`` first) that returns the type to use.
    """
    static_type = entity_type if isinstance(entity_type, str) else "memory"
    if type(result) is list and not _is_mapping(result):
        entities = _list_entities(result, static_type)
    else:
        entities = [entity_from_item(item, static_type, score, rank)
                    for rank, (item, score) in enumerate(_items(result))]
    if not isinstance(entity_type, str):
        for entity in entities:
            entity.entity_type = str(entity_type(entity))
    return entities
