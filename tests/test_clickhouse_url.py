"""Store URLs: what ``open_store`` makes of chdb:// and clickhouse:// (no server needed)."""

from __future__ import annotations

import pytest

from memobs_otel.store import StoreError
from memobs_otel.store.clickhouse.url import BadStoreURL, is_clickhouse_url, parse


def test_server_urls(monkeypatch):
    monkeypatch.delenv("MEMOBS_CLICKHOUSE_PASSWORD", raising=False)
    t = parse("clickhouse://reader:s%40cret@ch.internal:8123/otel?table=otel_traces")
    assert (t.kind, t.host, t.port, t.user, t.password, t.database, t.table, t.secure) == \
        ("server", "ch.internal", 8123, "reader", "s@cret", "otel", "otel_traces", False)
    assert t.display() == "clickhouse://reader@ch.internal:8123/otel?table=otel_traces"  # no password
    t = parse("clickhouses://reader@ch.internal/otel")
    assert (t.port, t.secure, t.table, t.password) == (8443, True, "otel_traces", "")
    t = parse("clickhouse://ch.internal?table=logs.otel_traces_dist&verify=false")
    assert (t.user, t.database, t.table, t.verify) == ("default", "logs", "otel_traces_dist", False)
    monkeypatch.setenv("MEMOBS_CLICKHOUSE_PASSWORD", "from-env")
    assert parse("clickhouse://reader@ch.internal/otel").password == "from-env"


def test_chdb_urls():
    t = parse("chdb:///var/lib/traces")
    assert (t.kind, t.path, t.database, t.table) == ("chdb", "/var/lib/traces", "default", "otel_traces")
    assert parse("chdb:///var/lib/traces?table=otel.spans").qualified == "otel.spans"


@pytest.mark.parametrize("url", [
    "clickhouse://h/db1?table=db2.t",     # two databases named
    "clickhouse://h/db?table=t;DROP",     # not a name
    "clickhouse://h/db?secure=maybe",
    "chdb:///x?table=`t`",
])
def test_bad_urls(url):
    with pytest.raises(BadStoreURL) as caught:
        parse(url)
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, ValueError)


def test_what_is_a_url():
    assert is_clickhouse_url("chdb:///x") and is_clickhouse_url("CLICKHOUSE://h")
    assert not is_clickhouse_url("memobs.db") and not is_clickhouse_url("chdb.db")
    assert not is_clickhouse_url("c:/data/memobs.db")
