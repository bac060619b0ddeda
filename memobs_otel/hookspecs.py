"""The memobs plugin hooks (pluggy, project name ``memobs_otel``).

Write a plugin as a module or class with functions decorated by
``memobs.hookimpl`` and publish it in the ``memobs_otel`` entry-point group::

    [project.entry-points.memobs_otel]
    myplugin = "my_package.memobs_plugin"

A hook implementation that raises is logged once and skipped; it never
reaches the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # annotations only: these modules import this one
    from .citations import Citation
    from .entities import Entity
    from .instrumentation import Instrumentor
    from .trace_buffer import InjectedEntity

hookspec = pluggy.HookspecMarker("memobs_otel")
hookimpl = pluggy.HookimplMarker("memobs_otel")


@hookspec(firstresult=True)
def memobs_extract_entities(result: Any, entity_type: str) -> list[Entity] | None:
    """Turn a retrieval ``result`` into a list of ``memobs_otel.entities.Entity``.

    Called for every recorded retrieval before the built-in extractor.
    Return ``None`` to leave the result to other plugins and the built-in
    extractor; return a list (maybe empty) to take it over — set each
    entity's ``rank`` (0-based). ``entity_type`` is the decorator's type when
    it is a string, else ``"memory"`` (a callable type is applied after).
    Stops at first non-None result.
    """


@hookspec
def memobs_entity_attributes(entity: Entity, attributes: dict[str, Any]) -> None:
    """Adjust the attributes of one ``memobs.injection`` or write event in place.

    Called once per entity with the event's attribute dict, after memobs
    filled it and before it is added to the span: delete keys to redact,
    add keys to enrich. The return value is ignored.
    """


@hookspec
def memobs_register_instrumentations(register: Callable[[Instrumentor], None]) -> None:
    """Register framework instrumentations with ``register(instrumentor)``.

    ``instrumentor`` is a ``memobs_otel.instrumentation.Instrumentor``
    subclass instance with a unique ``name`` (what ``memobs.instrument(name)``
    takes). Called once, when plugins load. A later registration with the
    same name replaces the earlier one.
    """


@hookspec
def memobs_detect_citations(answer: str, entities: list[InjectedEntity]) -> list[Citation] | None:
    """Find which injected ``entities`` the ``answer`` text cites.

    ``entities`` are ``memobs_otel.trace_buffer.InjectedEntity`` records
    (entity_type, entity_id, content, rank) injected earlier in the current
    trace. Return a list of ``memobs_otel.citations.Citation`` (or ``None``).
    Every implementation is called; the results are merged, keeping the
    highest score per entity.
    """
