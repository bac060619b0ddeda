"""OpenTelemetry span exporters shipped with memobs."""

from .sqlite import SQLiteSpanExporter

__all__ = ["SQLiteSpanExporter"]
