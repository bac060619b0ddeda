"""memobs's store API over ClickHouse, where the Collector already writes traces.

    import memobs_otel as memobs
    store = memobs.open_store("clickhouse://reader:secret@ch.internal:8123/otel?table=otel_traces")
    store = memobs.open_store("chdb:///var/lib/traces?table=otel.otel_traces")   # embedded
    store.injection_stats(days_back=30)     # the SQLite store's answers, same order
    store.memory_review(days_back=30)

Agents send OTLP to an OpenTelemetry Collector; its ``clickhouse`` exporter
writes ``otel_traces`` (span events as ``Events.Name`` / ``Events.Attributes``
arrays, every attribute value a string). This package reads that table as
the exporter writes it:

- :mod:`.url` — the ``chdb://`` / ``clickhouse://`` URLs;
- :mod:`.client` — clickhouse-connect for both (``interface="chdb"`` in process);
- :mod:`.schema` — the events relation over ``otel_traces``, the optional
  narrow table + materialized view (``memobs clickhouse-schema``), the
  review decisions table;
- :mod:`.facts` — the per-entity aggregates in SQL;
- :mod:`.inventories` — the deletes complete inventory snapshots derive;
- :mod:`.report_queries` — the report's aggregates (``memobs report``);
- :mod:`.store` — :class:`ClickHouseStore`, the API.

Maintainer notes: docs/clickhouse.md.
"""

from __future__ import annotations

from .client import AccessDenied, ClickHouseError
from .store import ClickHouseStore
from .url import BadStoreURL, is_clickhouse_url, parse

__all__ = ["AccessDenied", "BadStoreURL", "ClickHouseError", "ClickHouseStore", "is_clickhouse_url", "parse"]
