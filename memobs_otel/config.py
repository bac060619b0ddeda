"""Runtime settings, read from the environment and from ``configure()``.

| variable | meaning | default |
|---|---|---|
| ``MEMOBS_ENABLED`` | ``false`` makes every decorator and patch a pass-through | ``true`` |
| ``OTEL_SDK_DISABLED`` | ``true`` does the same (the OTel-wide switch) | ``false`` |
| ``MEMOBS_CAPTURE_CONTENT`` | ``true`` exports memory content and query text; ``local`` keeps the first 280 characters of each memory in the local SQLite file only, never on spans (``local_content``) | ``false`` |
| ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` | ``true`` (or ``SPAN_ONLY``/``EVENT_ONLY``/``SPAN_AND_EVENT``) does the same | unset |
| ``MEMOBS_TOKEN_ENCODING`` | tiktoken encoding for token counts | ``cl100k_base`` |
| ``MEMOBS_TOKEN_EXACT_CHARS`` | memories up to this many characters are counted exactly, longer ones estimated past it (``tokens``) | ``8192`` |
| ``MEMOBS_MEMORY_BUDGET_MB`` | bytes memobs itself may hold in memory: half for the measurement cache (``measure``), half for the citation buffer (``trace_buffer``) | ``64`` |

The environment is read when memobs is imported and again at every
``memobs.configure()`` (or ``reload_settings()``); the hot path only reads
the cached ``settings`` object, so the kill switch costs one attribute read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from opentelemetry import trace

from . import semconv
from . import guard, trace_buffer
from .measure import Measurer
from .tokens import DEFAULT_ENCODING, exact_chars_from_env, get_tokenizer

DEFAULT_MEMORY_BUDGET_MB = 64
MEMORY_BUDGET_ENV = "MEMOBS_MEMORY_BUDGET_MB"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_GENAI_CONTENT_ON = _TRUE | {"span_only", "event_only", "span_and_event"}


def env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def _capture_from_env() -> bool | str:
    if os.environ.get("MEMOBS_CAPTURE_CONTENT", "").strip().lower() == "local":
        return "local"
    if env_flag("MEMOBS_CAPTURE_CONTENT", False):
        return True
    genai = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    return genai in _GENAI_CONTENT_ON


def _memory_budget_from_env() -> float:
    return guard.env_number(MEMORY_BUDGET_ENV, DEFAULT_MEMORY_BUDGET_MB, 0, above=True)


@dataclass
class Settings:
    enabled: bool = True
    capture_content: bool = False
    capture_local: bool = False  # content kept for the local SQLite file only (local_content)
    encoding: str = DEFAULT_ENCODING
    measurer: Measurer | None = None  # built lazily: loading an encoding takes ~0.2 s
    token_exact_chars: int = 8_192
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_MB * 1024 * 1024

    def get_measurer(self) -> Measurer:
        measurer = self.measurer
        if measurer is None:
            measurer = self.measurer = Measurer(get_tokenizer(self.encoding), exact_chars=self.token_exact_chars,
                                                budget_bytes=self.memory_budget_bytes // 2)
            if self.capture_local:
                measurer.on_new = _remember_locally
        return measurer


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("memobs_otel")
    except Exception:  # noqa: BLE001
        return "0"


settings = Settings()
_tracer_provider = None  # set by configure(); None = the global provider
_tracer = trace.get_tracer(semconv.TRACER_NAME, _version())  # same name and version as with a provider


def _remember_locally(content: str, measurement) -> None:
    from . import local_content

    local_content.remember(measurement.content_hash, content)


def reload_settings(capture_content: bool | str | None = None, encoding: str | None = None) -> Settings:
    """Re-read the environment; explicit arguments win over variables.

    ``capture_content``: ``True`` (exported), ``False``, or ``"local"`` (the
    local SQLite file only: see ``local_content``).
    """
    enabled = env_flag("MEMOBS_ENABLED", True) and not env_flag("OTEL_SDK_DISABLED", False)
    if isinstance(capture_content, str) and capture_content.strip().lower() != "local":
        raise ValueError(f"capture_content must be True, False or 'local', not {capture_content!r}")
    capture = _capture_from_env() if capture_content is None else capture_content
    local = isinstance(capture, str)
    capture = False if local else bool(capture)
    enc = encoding or os.environ.get("MEMOBS_TOKEN_ENCODING") or DEFAULT_ENCODING
    exact_chars = exact_chars_from_env()
    budget = int(_memory_budget_from_env() * 1024 * 1024)
    if enc != settings.encoding or exact_chars != settings.token_exact_chars \
            or budget != settings.memory_budget_bytes or local != settings.capture_local:
        settings.measurer = None  # a new one: with local capture it remembers every memory it measures
    settings.enabled, settings.capture_content, settings.encoding = enabled, capture, enc
    settings.capture_local = local
    settings.token_exact_chars, settings.memory_budget_bytes = exact_chars, budget
    trace_buffer.set_budget(budget - budget // 2)
    return settings


def use_tracer_provider(provider) -> None:
    """Make memobs record through ``provider`` (``None``: the global one)."""
    global _tracer_provider, _tracer
    _tracer_provider = provider
    if provider is None:
        _tracer = trace.get_tracer(semconv.TRACER_NAME, _version())
    else:
        _tracer = provider.get_tracer(semconv.TRACER_NAME, _version())


def get_tracer():
    return _tracer


def tracer_provider():
    """The provider memobs records through: ``configure()``'s (or
    :func:`use_tracer_provider`'s), else the global one."""
    return _tracer_provider or trace.get_tracer_provider()


reload_settings()
