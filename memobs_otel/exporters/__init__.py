"""OpenTelemetry span exporters (and memobs's span processor) shipped with memobs."""

from .processor import QueueSpanProcessor
from .sqlite import SQLiteSpanExporter

__all__ = ["QueueSpanProcessor", "SQLiteSpanExporter"]
