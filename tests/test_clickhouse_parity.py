"""The ClickHouse store gives the SQLite store's answers for the same spans.

The same SDK spans (tests/clickhouse_scenario.py) go into a SQLite file
through the real ``SQLiteSpanExporter`` and into embedded ClickHouse (chdb)
as the Collector's clickhouse exporter writes them (pinned DDL, every
attribute value a string; tests/clickhouse_exporter_rows.py). Then
``injection_stats`` and ``memory_review`` must be equal — every field, same
order — for all users and each user, several windows and ``now``s, through
``otel_traces`` directly and through the optional narrow table. With
``MEMOBS_TEST_CLICKHOUSE_URL`` set (``clickhouse://user:password@host:8123/db``)
the same runs against that server.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest

pytest.importorskip("clickhouse_connect")

from clickhouse_exporter_rows import create_traces_table, export  # noqa: E402
from clickhouse_scenario import END, TYPES, USERS, build_spans  # noqa: E402

import memobs_otel as memobs  # noqa: E402
from memobs_otel.exporters import SQLiteSpanExporter  # noqa: E402
from memobs_otel.store.clickhouse.schema import narrow_ddl  # noqa: E402

NOWS = (END, END - timedelta(days=45), END + timedelta(days=40))
DAYS = (7, 30, 90)


@pytest.fixture(scope="module")
def spans():
    return build_spans()


def _sqlite_file(path, spans):
    exporter = SQLiteSpanExporter(path)
    # batches, in time order, as a BatchSpanProcessor sends them
    for i in range(0, len(spans), 64):
        exporter.export(spans[i:i + 64])
    exporter.shutdown()
    return str(path)


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory, spans):
    return _sqlite_file(tmp_path_factory.mktemp("parity") / "memobs.db", spans)


def _chdb_client(folder):
    pytest.importorskip("chdb")
    import clickhouse_connect

    return clickhouse_connect.get_client(interface="chdb", path=str(folder))


@pytest.fixture(scope="module")
def chdb_folder(tmp_path_factory, spans):
    folder = tmp_path_factory.mktemp("chdb")
    client = _chdb_client(folder)
    create_traces_table(client, "otel", "otel_traces")
    export(client, spans[: len(spans) // 2], "otel", "otel_traces")  # two exporter batches
    export(client, spans[len(spans) // 2:], "otel", "otel_traces")
    # the same rows in a second database, read through the narrow table
    create_traces_table(client, "narrow", "otel_traces")
    for statement in narrow_ddl("narrow", "otel_traces")[:2]:  # table + view, then the exporter writes
        client.command(statement)
    export(client, spans, "narrow", "otel_traces")
    client.close()
    return folder


def _compare(sqlite_store, ch_store, nows=NOWS, windows=DAYS):
    checked = 0
    for now in nows:
        for days in windows:
            for user in (None, *USERS):
                assert ch_store.injection_stats(days_back=days, user_id=user, now=now) == \
                    sqlite_store.injection_stats(days_back=days, user_id=user, now=now), (now, days, user)
                expected = sqlite_store.memory_review(days_back=days, user_id=user, now=now)
                assert ch_store.memory_review(days_back=days, user_id=user, now=now) == expected, \
                    (now, days, user)
                checked += len(expected)
            for etype in TYPES:
                assert ch_store.injection_stats(days_back=days, entity_type=etype, now=now) == \
                    sqlite_store.injection_stats(days_back=days, entity_type=etype, now=now)
            for kwargs in ({"min_injections": 1, "max_cite_rate": 0.9}, {"min_wasted_tokens": 0},
                           {"signal_filter": ["duplicate", "stale"]}, {"signal_filter": []}):
                assert ch_store.memory_review(days_back=days, now=now, **kwargs) == \
                    sqlite_store.memory_review(days_back=days, now=now, **kwargs), kwargs
    return checked


def test_scenario_exercises_every_signal(sqlite_path):
    with memobs.open_store(sqlite_path) as store:
        review = store.memory_review(days_back=30, now=END)
        fired = {name for c in review for name in c.signals}
        assert fired == {"supersedeable", "stale", "high_cost_low_cite", "duplicate"}
        assert len(store.injection_stats(days_back=30, now=END)) >= 20


@pytest.mark.parametrize("database", ["otel", "narrow"])
def test_chdb_gives_the_sqlite_answers(sqlite_path, chdb_folder, database):
    with memobs.open_store(sqlite_path) as sqlite_store, \
            memobs.open_store(f"chdb://{chdb_folder}?table={database}.otel_traces") as ch_store:
        assert ch_store.uses_narrow_table is (database == "narrow")
        if database == "narrow":
            assert _compare(sqlite_store, ch_store) > 100
        else:
            # each read of otel_traces opens its ~200 daily partitions (the test
            # data spans 200 days): fewer windows keep the test short
            assert _compare(sqlite_store, ch_store, NOWS[::2], DAYS[1:2]) > 20


def test_dismissals_agree(tmp_path, spans):
    """The same decisions in both stores hide the same candidates."""
    path = _sqlite_file(tmp_path / "memobs.db", spans)
    client = _chdb_client(tmp_path / "ch")
    create_traces_table(client)
    export(client, spans)
    client.close()
    with memobs.open_store(path) as sqlite_store, \
            memobs.open_store(f"chdb://{tmp_path / 'ch'}?table=otel.otel_traces") as ch_store:
        queue = sqlite_store.memory_review(days_back=30, now=END)
        assert len(queue) >= 4
        first, second, third = queue[0], queue[1], queue[2]
        for store in (sqlite_store, ch_store):
            store.dismiss(first.entity_type, first.entity_id, note="keep it", now=END)
            store.dismiss(second.entity_type, second.entity_id, signals=second.signals[:1],
                          until=END + timedelta(days=3), now=END)
            store.dismiss(third.entity_type, third.entity_id, now=END)
            assert store.undismiss(third.entity_type, third.entity_id) is True
            assert store.undismiss(third.entity_type, third.entity_id) is False
        assert ch_store.dismissals() == sqlite_store.dismissals()
        for now in (END, END + timedelta(days=5)):
            for include in (False, True):
                assert ch_store.memory_review(days_back=30, now=now, include_dismissed=include) == \
                    sqlite_store.memory_review(days_back=30, now=now, include_dismissed=include)
        hidden = {(c.entity_type, c.entity_id) for c in queue} - {
            (c.entity_type, c.entity_id) for c in ch_store.memory_review(days_back=30, now=END)}
        assert (first.entity_type, first.entity_id) in hidden
        with pytest.raises(ValueError, match="no entity"):
            ch_store.dismiss("user_memory", "no-such-id")


SERVER = os.environ.get("MEMOBS_TEST_CLICKHOUSE_URL")


@pytest.mark.skipif(not SERVER, reason="MEMOBS_TEST_CLICKHOUSE_URL is not set: no ClickHouse server to test "
                                       "against (clickhouse://user:password@host:8123/database)")
def test_server_gives_the_sqlite_answers(sqlite_path, spans):
    import clickhouse_connect

    from memobs_otel.store.clickhouse.url import parse

    target = parse(SERVER)
    table = f"memobs_test_{uuid.uuid4().hex[:12]}"
    client = clickhouse_connect.get_client(host=target.host, port=target.port, username=target.user,
                                           password=target.password or "", secure=target.secure,
                                           database=target.database)
    try:
        create_traces_table(client, target.database, table)
        export(client, spans, target.database, table)
        url = SERVER.split("?")[0] + f"?table={target.database}.{table}"
        with memobs.open_store(sqlite_path) as sqlite_store, memobs.open_store(url) as ch_store:
            assert _compare(sqlite_store, ch_store) > 100
    finally:
        client.command(f"DROP TABLE IF EXISTS `{target.database}`.`{table}`")
        client.close()


@pytest.mark.parametrize("user", [None, "carol"])
def test_the_report_gathers_the_same_data(sqlite_path, chdb_folder, user):
    from dataclasses import asdict

    from memobs_otel.report import build_report

    expected, _ = build_report(sqlite_path, days=30, user_id=user, now=END)
    found, page = build_report(f"chdb://{chdb_folder}?table=narrow.otel_traces", days=30, user_id=user, now=END)
    assert found.db_path == f"chdb://{chdb_folder}?table=narrow.otel_traces"
    mine, theirs = asdict(found), asdict(expected)
    for field in ("db_path", "schema_version"):
        mine.pop(field), theirs.pop(field)
    assert mine == theirs
    assert found.details and found.headline.known_entities > 20
    assert "memobs" in page


def test_complete_inventories_delete_the_same_entities(sqlite_path, chdb_folder):
    """The snapshots of the scenario: both stores delete exactly what they lack."""
    from memobs_otel.store.clickhouse import inventories

    with memobs.open_store(sqlite_path) as sqlite_store, \
            memobs.open_store(f"chdb://{chdb_folder}?table=otel.otel_traces") as ch_store:
        derived = inventories.derived_deletes(ch_store)
        # the latest playbook snapshot lacks 3, 9, 13 (11 is on its overflow child);
        # alice's us-1… scope lacks us-16 (us-12 was deleted before it)
        assert sorted(derived) == [("playbook", "pl-13"), ("playbook", "pl-3"), ("playbook", "pl-9"),
                                   ("user_memory", "us-16")]
        status = dict(sqlite_store.connection.execute("SELECT entity_id, status FROM entities"))
        assert {key[1]: status[key[1]] for key in derived} == dict.fromkeys(
            ("pl-13", "pl-3", "pl-9", "us-16"), "deleted")
        assert status["pl-11"] == "active"
