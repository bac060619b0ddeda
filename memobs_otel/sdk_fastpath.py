"""Span events and attributes stored as the SDK stores them, without its re-cleaning.

The one place memobs relies on OpenTelemetry SDK internals (and the only
one allowed: do not extend it). ``recording`` calls three functions:

- :func:`set_attributes` ``(span, attrs)``: ``span.set_attributes(attrs)``;
- :func:`put_events` ``(span, name, events, shared, clean)``:
  ``span.add_event(name, attrs)`` for each dict;
- :func:`event_limit` ``(span)``: the span's event limit (``None``: none).

Why: ``Span.add_event`` copies the attributes into a new
``BoundedAttributes``, running ``_clean_attribute_value`` over every value
and taking a lock per key, then takes the span's lock once per event;
``Span.set_attributes`` does the same for each span attribute. memobs builds
those values itself (str, int, float, bool, which the cleaning returns
unchanged), so for attributes the cleaning would not change — only
plain-typed values, non-empty str keys, no more keys than the limit allows,
no str longer than the attribute length limit — they are stored as the SDK
stores them, minus the cleaning (the saving is a benchmarks/ row:
``python -m benchmarks --only overhead``):

- events: an immutable SDK ``BoundedAttributes`` holding the dict as its
  ``_dict``, in an SDK ``Event`` stamped with ``time_ns()``, both built
  with the fields their ``__init__`` sets (``object.__new__`` and one
  ``__dict__``; their ``__init__``s would allocate a lock and a dict per
  event only to be replaced). A retrieval's events are appended to the
  span's event list under the span's lock in one ``extend`` (what
  ``_add_event`` does per event);
- span attributes: when none of the keys is on the span yet and they all
  fit under the span's attribute limit (nothing would be evicted), the dict
  is merged into the span's ``BoundedAttributes`` under the span's and the
  attributes' locks (what ``set_attributes`` does per key).

Anything else goes through ``add_event`` / ``set_attributes``.

Safety: the path is used only for span classes whose
``add_event``/``_add_event``/``set_attributes`` are the SDK ``Span``'s own,
and only after :func:`self_check` — once, on a private provider — showed
that what it builds equals, field for field, what the public methods build
from the same attributes (event type, name, timestamp, attribute type and
every instance field but the lock; the span's attributes, their order,
dropped count and limits; immutability, deep copy). If the SDK changes so
that they differ, or any of these names is gone, the public methods are
used. ``ENABLED = False`` forces the public methods (tests compare both).
"""

from __future__ import annotations

import threading
from time import time_ns


def event_limit(span) -> int | None:
    """The span's event limit (the SDK default, 128, for a span without limits; None: unlimited)."""
    limits = getattr(span, "_limits", None)
    if limits is None:
        return 128
    return getattr(limits, "max_events", 128)


try:
    from opentelemetry.attributes import BoundedAttributes as _BoundedAttributes
    from opentelemetry.sdk.trace import Event as _SdkEvent
    from opentelemetry.sdk.trace import Span as _SdkSpan
    from opentelemetry.sdk.util import BoundedList as _BoundedList
except Exception:  # noqa: BLE001 - a different SDK: public add_event only
    _BoundedAttributes = _SdkEvent = _SdkSpan = _BoundedList = None

ENABLED = True  # False: always Span.add_event / set_attributes (tests compare both)
_PLAIN_VALUE_TYPES = frozenset((str, int, float, bool))
_STR_TYPE = frozenset((str,))
_span_classes: dict[type, bool] = {}
_verified: bool | None = None


def _unchanged(attrs: dict, max_attrs, max_len, clean: bool = False) -> bool:
    """Would ``BoundedAttributes`` keep ``attrs`` as they are? (``clean``: keys and value types known good)"""
    if max_attrs is not None and len(attrs) > max_attrs:
        return False
    if not clean and ("" in attrs or not _PLAIN_VALUE_TYPES.issuperset(map(type, attrs.values()))
                      or not _STR_TYPE.issuperset(map(type, attrs))):
        return False
    if max_len is not None:
        for value in attrs.values():
            if type(value) is str and len(value) > max_len:
                return False
    return True


# every fast-path event's attributes' lock: an immutable BoundedAttributes
# takes it only to deep-copy itself, so one lock for all of them is enough
_SHARED_LOCK = threading.RLock()
_new = object.__new__


def _attribute_fields(max_attrs, max_len) -> dict:
    """The fields ``BoundedAttributes(max_attrs, None, True, max_len)`` sets, but ``_dict``."""
    return {"maxlen": max_attrs, "dropped": 0, "max_value_len": max_len, "_lock": _SHARED_LOCK,
            "_immutable": True}


def _fast_event(name: str, attrs: dict, max_attrs, max_len, timestamp=None):
    """The SDK ``Event`` ``add_event(name, attrs)`` would add, or None if ``attrs`` would be changed."""
    if not _unchanged(attrs, max_attrs, max_len):
        return None
    return _build_event(name, attrs, _attribute_fields(max_attrs, max_len),
                        time_ns() if timestamp is None else timestamp)


def _build_event(name: str, attrs: dict, fields: dict, timestamp: int):
    """An SDK ``Event`` holding ``attrs`` as they are (checked by the caller); ``fields``:
    :func:`_attribute_fields`."""
    bounded = _new(_BoundedAttributes)
    bounded.__dict__ = {**fields, "_dict": attrs}
    event = _new(_SdkEvent)
    event.__dict__ = {"_name": name, "_timestamp": timestamp, "_attributes": bounded}
    return event


def self_check() -> bool:
    """Once: do ``_fast_event``/``_extend_events``/``_merge_attributes`` store what the public methods store?"""
    global _verified
    if _verified is not None:
        return _verified
    ok = False
    try:
        import copy

        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        provider = TracerProvider(sampler=ALWAYS_ON, resource=Resource.get_empty(), shutdown_on_exit=False)
        tracer = provider.get_tracer("memobs.selfcheck")
        start = {"memobs.start": "s"}
        attrs = {"memobs.s": "text", "memobs.i": 7, "memobs.f": 0.5, "memobs.b": True}
        span_attrs = {"memobs.n": 3, "memobs.t": "tokens", "memobs.x": 0.25, "memobs.y": False}
        public_span = tracer.start_span("memobs.selfcheck", attributes=start)
        public_span.add_event("memobs.selfcheck", dict(attrs), timestamp=1)
        public_span.add_event("memobs.selfcheck", dict(attrs), timestamp=2)
        public_span.set_attributes(dict(span_attrs))
        public_span.end()
        span = tracer.start_span("memobs.selfcheck", attributes=start)
        if not _span_class_ok(type(span)):
            raise TypeError("not the SDK span")
        limits = span._limits
        built = [_fast_event("memobs.selfcheck", dict(attrs), limits.max_event_attributes,
                             limits.max_attribute_length, t) for t in (1, 2)]
        if None in built or not _extend_events(span, built) or not _merge_attributes(span, dict(span_attrs)):
            raise ValueError("fast path refused plain attributes")
        span.end()

        def fields(obj) -> dict:
            return {key: value for key, value in vars(obj).items() if key not in ("_lock", "_attributes")}

        fast_events, public_events = span.events, public_span.events
        try:
            fast_events[0].attributes["memobs.x"] = 1
            immutable = False
        except TypeError:
            immutable = True
        ok = (len(fast_events) == len(public_events) == 2
              and all(type(fast) is type(public) and type(fast.attributes) is type(public.attributes)
                      and fields(fast) == fields(public)
                      and list(fast.attributes.items()) == list(public.attributes.items()) == list(attrs.items())
                      and fields(fast.attributes) == fields(public.attributes)
                      and fast.dropped_attributes == public.dropped_attributes == 0
                      for fast, public in zip(fast_events, public_events))
              and immutable and dict(copy.deepcopy(fast_events[0].attributes)) == attrs
              and type(span._attributes) is type(public_span._attributes)
              and list(span.attributes.items()) == list(public_span.attributes.items())
              == list({**start, **span_attrs}.items())
              and fields(span._attributes) == fields(public_span._attributes)
              and fields(span._events) == {"dropped": 0, "_dq": span._events._dq}
              and public_span._events.dropped == 0)
    except Exception:  # noqa: BLE001 - any surprise: public add_event only
        ok = False
    _verified = ok
    return ok


def _span_class_ok(cls: type) -> bool:
    return (_SdkSpan is not None and _BoundedList is not None and isinstance(cls, type)
            and issubclass(cls, _SdkSpan)
            and getattr(cls, "add_event", None) is _SdkSpan.add_event
            and getattr(cls, "_add_event", None) is _SdkSpan._add_event
            and getattr(cls, "set_attributes", None) is _SdkSpan.set_attributes)


def _usable(span) -> bool:
    cls = type(span)
    ok = _span_classes.get(cls)
    if ok is None:
        ok = _span_class_ok(cls) and self_check()
        if len(_span_classes) < 64:
            _span_classes[cls] = ok
    return ok


def _extend_events(span, built: list) -> bool:
    """Append SDK ``Event``s to ``span`` as ``_add_event`` would, under one lock; False if it refused."""
    if not built:
        return True
    events = span._events
    if type(events) is not _BoundedList:
        return False
    with span._lock:
        if span._end_time is not None:
            return False  # ended: the public path warns as the SDK does
        events.extend(built)
    return True


def _merge_attributes(span, attrs: dict) -> bool:
    """``span.set_attributes(attrs)`` for attributes the SDK would store unchanged and
    none of which is set yet; False (nothing done) otherwise."""
    bounded = span._attributes
    if type(bounded) is not _BoundedAttributes:
        return False
    stored = bounded._dict
    maxlen = bounded.maxlen
    if (bounded._immutable or (maxlen is not None and len(stored) + len(attrs) > maxlen)
            or not _unchanged(attrs, None, bounded.max_value_len) or not stored.keys().isdisjoint(attrs)):
        return False
    with span._lock:
        if span._end_time is not None:
            return False
        with bounded._lock:
            stored.update(attrs)
    return True


def set_attributes(span, attrs: dict) -> None:
    """``span.set_attributes(attrs)``, stored directly when the SDK would store them unchanged."""
    if not (ENABLED and _usable(span) and _merge_attributes(span, attrs)):
        span.set_attributes(attrs)


def put_events(span, name: str, events: list[dict], shared: bool = False, clean: bool = False) -> None:
    """``span.add_event(name, attrs)`` for each dict, in order.

    ``shared``: the dicts may be referenced elsewhere (a hook saw them), so
    they are copied. ``clean``: every key is a non-empty str and every value
    an exact str, int, float or bool (the caller checked), so only the
    limits are checked here.
    """
    if not (ENABLED and _usable(span)):
        for attrs in events:
            span.add_event(name, attrs)
        return
    limits = span._limits
    max_attrs, max_len = limits.max_event_attributes, limits.max_attribute_length
    fields = _attribute_fields(max_attrs, max_len)
    # clean attributes under no length limit: only the count can be over a limit
    trusted = clean and max_len is None
    built: list = []
    for attrs in events:
        if shared:
            attrs = dict(attrs)
        if (max_attrs is None or len(attrs) <= max_attrs) if trusted else _unchanged(attrs, max_attrs, max_len, clean):
            built.append(_build_event(name, attrs, fields, time_ns()))
        else:  # the SDK would change these: its own add_event, in rank order
            _add_built(span, built)
            built = []
            span.add_event(name, attrs)
    _add_built(span, built)


def _add_built(span, built: list) -> None:
    if not _extend_events(span, built):
        for ev in built:
            span._add_event(ev)  # an ended span: the SDK's own warning
