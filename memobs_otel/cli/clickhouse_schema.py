"""``memobs clickhouse-schema``: the optional narrow table, its view, the decisions table.

    memobs clickhouse-schema                                   # default.otel_traces, one node
    memobs clickhouse-schema --table otel.otel_traces_local --cluster main \\
        --distributed otel_traces                              # a sharded cluster
    memobs clickhouse-schema | clickhouse-client --multiquery  # apply it

Prints SQL, runs nothing. memobs reads the Collector's ``otel_traces`` as it
is; with ``<table>_memobs_events`` present (a materialized view copies each
memobs span event into it as the exporter inserts) it reads that narrow
table instead, which is faster (see :mod:`memobs_otel.store.clickhouse.schema`).
On a cluster, ``--table`` is the per-node table the exporter writes and
``--distributed`` the Distributed table memobs is pointed at (``?table=``).
The last statement creates ``memobs_review_decisions``, which ``memobs
dismiss`` otherwise creates on first use (a read-only user cannot).
"""

from __future__ import annotations

import re

import click

from ..store.clickhouse.schema import decisions_ddl, distributed_ddl, narrow_ddl
from .common import fail, number_at_least

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _split(table: str) -> tuple[str, str]:
    database, _, name = table.rpartition(".")
    database = database or "default"  # the exporter's default database
    if not _NAME.match(name) or not _NAME.match(database):
        fail(f"--table {table!r}: expected [database.]table (letters, digits, _)")
    return database, name


@click.command("clickhouse-schema")
@click.option("--table", "table", default="default.otel_traces", show_default=True, metavar="[DB.]T",
              help="The traces table the Collector's clickhouse exporter writes (per node on a cluster).")
@click.option("--cluster", "cluster", default=None, metavar="C", help="Add ON CLUSTER C to every statement.")
@click.option("--distributed", "distributed", default=None, metavar="T",
              help="With --cluster: the Distributed traces table memobs reads; a Distributed narrow table is added.")
@click.option("--ttl-days", "ttl_days", callback=number_at_least("--ttl-days", int, 1), default=None,
              metavar="N",
              help="TTL of the narrow table (keep it at least the traces table's).")
def command(table: str, cluster: str | None, distributed: str | None, ttl_days: int | None) -> None:
    """Print the DDL of memobs's optional ClickHouse tables (narrow events table and view)."""
    database, name = _split(table)
    if cluster is not None and not _NAME.match(cluster):
        fail(f"--cluster {cluster!r}: expected a cluster name (letters, digits, _)")
    if distributed is not None:
        if cluster is None:
            fail("--distributed needs --cluster")
        if not _NAME.match(distributed):
            fail(f"--distributed {distributed!r}: expected a table name (letters, digits, _)")
    table_ddl, view_ddl, backfill = narrow_ddl(database, name, cluster, ttl_days)
    statements = [
        f"-- memobs: narrow events table for {database}.{name} (optional; memobs uses it when present)",
        table_ddl + ";",
        view_ddl + ";",
        "-- once, after the view exists, to copy what the table held before it (rows the\n"
        "-- exporter inserts meanwhile would be copied twice: pick a quiet moment or a time range):\n"
        + "\n".join("-- " + line for line in backfill.splitlines()[1:]) + ";",
    ]
    if distributed:
        statements.append(distributed_ddl(database, name, distributed, cluster) + ";")
    statements.append("-- memobs: review decisions (memobs dismiss; created on first use otherwise)")
    statements.append(decisions_ddl(database, cluster) + ";")
    click.echo("\n\n".join(statements))
