"""Versioned schema of the memobs SQLite file.

Migrations are plain functions ``m001_initial``, ``m002_…`` applied in order
by :func:`migrate`, each recorded by name in ``_memobs_migrations``. A shipped
migration is never edited; a new change is a new function. Every statement
is ``IF NOT EXISTS`` so a migration tolerates a partial earlier run, and
:func:`migrate` runs inside ``BEGIN IMMEDIATE`` so several processes opening
one new file at once apply each migration exactly once.

Tables (ids as lowercase hex text, times as integer nanoseconds since the
epoch, UTC):

- ``spans`` — every span received; ``user_id``/``session_id``/``request_id``
  copied from its attributes; ``attributes``/``resource`` as JSON; one row
  per ``(start_ns, trace_id, span_id)`` (m005; m001: per ``(trace_id, span_id)``).
- ``events`` — every span event except ``memobs.injection`` (the bulk of
  the data), which is stored once, as its ``injections`` row; ``user_id``
  from the event, else its span.
- ``entities`` — the entity catalog: one row per ``(entity_type, entity_id)``
  with the latest value of each lifecycle field (``*_t`` = time of the event
  that set it) and ``first_seen_ns`` (first injection or write).
- ``injections`` — one row per ``memobs.injection`` event: every known
  attribute as a column, any other attribute in ``extra`` (JSON).
- ``citations`` / ``writes`` — one row per ``memobs.citation`` /
  ``memobs.entity.write`` event (the event itself is also in ``events``).

- ``export_losses`` (m006) — what the exporting pipeline could not store as
  received, one row per ``kind`` with a running ``count``: ``spans-shed``
  (spans the span processor had to drop), ``spans-export-failed`` (spans in
  a batch the exporter could not write), ``spans-unwritten-at-shutdown``,
  ``otlp-…`` (the same for the OTLP exporter configured beside it),
  ``values-sanitised`` (values stored altered: lone surrogates
  replaced by U+FFFD, integers past 64 bits as text). ``first_ns`` /
  ``last_ns``: when the first / latest were recorded.

- ``review_decisions`` (m007) — dismissals from the review queue, one row
  per entity (``signals`` NULL = all, ``until_ns`` NULL = for good, ``note``,
  ``decided_ns``); never touched by purge or retention. m007 also adds a
  ``minhash`` BLOB column to ``entities`` and ``injections``.

- m008 — the context budget's turns: ``spans.turn_id`` (``memobs.turn.id``,
  else the trace id), ``llm_calls`` (one row per span with a prompt size:
  turn, time, user, ``input_tokens``, model, source ``llm``/``memobs``) and
  ``turn_injections`` (per span and entity type with injections: its turn,
  token sum and the pk range of the span's ``injections`` rows). See
  docs/budget.md.

Readable views (m002): ``v_spans``, ``v_injections``, ``v_citations``,
``v_writes``, ``v_entities`` — ISO 8601 timestamps, entity type and id
spelled out, simhash as 16 hex chars.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Callable

from .transaction import immediate_transaction

MIGRATIONS_TABLE = "_memobs_migrations"


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the open transaction.

    ``executescript`` would COMMIT first, breaking the all-or-nothing
    migration, so statements are executed one by one.
    """
    for statement in _split_statements(script):
        db.execute(statement)


def m001_initial(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE IF NOT EXISTS spans (
            pk INTEGER PRIMARY KEY,
            trace_id TEXT NOT NULL,
            span_id TEXT NOT NULL,
            parent_span_id TEXT,
            name TEXT NOT NULL,
            kind TEXT,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            status TEXT,
            user_id TEXT,
            session_id TEXT,
            request_id TEXT,
            attributes TEXT NOT NULL DEFAULT '{}',
            resource TEXT NOT NULL DEFAULT '{}',
            scope TEXT,
            UNIQUE (trace_id, span_id)
        );
        CREATE INDEX IF NOT EXISTS spans_user ON spans (user_id);
        CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);

        CREATE TABLE IF NOT EXISTS events (
            pk INTEGER PRIMARY KEY,
            span_pk INTEGER NOT NULL,
            name TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            user_id TEXT,
            attributes TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX IF NOT EXISTS events_span ON events (span_pk);
        CREATE INDEX IF NOT EXISTS events_user ON events (user_id);

        CREATE TABLE IF NOT EXISTS entities (
            pk INTEGER PRIMARY KEY,
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            first_seen_ns INTEGER,
            last_seen_ns INTEGER,
            content_t INTEGER, content_hash TEXT, simhash INTEGER,
            content_head_t INTEGER, content_head TEXT,
            title_t INTEGER, title TEXT,
            created_t INTEGER, created_at, created_ns INTEGER,
            updated_t INTEGER, updated_at, updated_ns INTEGER,
            status_t INTEGER, status TEXT,
            version_t INTEGER, version,
            parent_t INTEGER, parent_id TEXT,
            superseded_t INTEGER, superseded_by TEXT,
            UNIQUE (entity_type, entity_id)
        );

        CREATE TABLE IF NOT EXISTS injections (
            pk INTEGER PRIMARY KEY,
            span_pk INTEGER NOT NULL,
            trace_id TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            entity_pk INTEGER NOT NULL,
            rank INTEGER,
            score REAL,
            tokens INTEGER NOT NULL DEFAULT 0,
            content_hash TEXT,
            simhash INTEGER,
            user_id TEXT,
            session_id TEXT,
            request_id TEXT,
            created_at, updated_at, status TEXT, version, parent_id TEXT,
            superseded_by TEXT, title TEXT, content TEXT,
            extra TEXT
        );
        CREATE INDEX IF NOT EXISTS injections_entity
            ON injections (entity_pk, time_ns, tokens, session_id);
        CREATE INDEX IF NOT EXISTS injections_user
            ON injections (user_id, entity_pk, time_ns, tokens, session_id);

        CREATE TABLE IF NOT EXISTS citations (
            pk INTEGER PRIMARY KEY,
            event_pk INTEGER NOT NULL,
            span_pk INTEGER NOT NULL,
            trace_id TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            entity_pk INTEGER NOT NULL,
            method TEXT,
            score REAL,
            user_id TEXT,
            session_id TEXT,
            request_id TEXT
        );
        CREATE INDEX IF NOT EXISTS citations_entity
            ON citations (entity_pk, time_ns, trace_id);
        CREATE INDEX IF NOT EXISTS citations_user
            ON citations (user_id, entity_pk, time_ns, trace_id);
        CREATE INDEX IF NOT EXISTS citations_span ON citations (span_pk);

        CREATE TABLE IF NOT EXISTS writes (
            pk INTEGER PRIMARY KEY,
            event_pk INTEGER NOT NULL,
            span_pk INTEGER NOT NULL,
            trace_id TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            entity_pk INTEGER NOT NULL,
            op TEXT,
            status TEXT,
            content_hash TEXT,
            simhash INTEGER,
            tokens INTEGER,
            user_id TEXT,
            session_id TEXT,
            request_id TEXT
        );
        CREATE INDEX IF NOT EXISTS writes_entity ON writes (entity_pk, time_ns);
        CREATE INDEX IF NOT EXISTS writes_user ON writes (user_id, entity_pk, time_ns);
        CREATE INDEX IF NOT EXISTS writes_span ON writes (span_pk);
        """
    )


_ISO = "strftime('%Y-%m-%dT%H:%M:%fZ', {col} / 1e9, 'unixepoch')"


def _iso(col: str) -> str:
    return _ISO.format(col=col)


def m002_readable_views(db: sqlite3.Connection) -> None:
    # printf('%016x') prints a negative (signed 64-bit) simhash as its
    # unsigned two's complement, i.e. the 16 hex chars that were emitted.
    run_script(
        db,
        f"""
        CREATE VIEW IF NOT EXISTS v_spans AS
        SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.status,
               {_iso('s.start_ns')} AS start_time, {_iso('s.end_ns')} AS end_time,
               (s.end_ns - s.start_ns) / 1e6 AS duration_ms,
               s.user_id, s.session_id, s.request_id, s.attributes, s.resource, s.scope
        FROM spans s;

        CREATE VIEW IF NOT EXISTS v_injections AS
        SELECT {_iso('i.time_ns')} AS time, i.trace_id, s.span_id, s.name AS span_name,
               e.entity_type, e.entity_id, i.rank, i.score, i.tokens, i.content_hash,
               printf('%016x', i.simhash) AS simhash,
               i.user_id, i.session_id, i.request_id
        FROM injections i JOIN spans s ON s.pk = i.span_pk
        JOIN entities e ON e.pk = i.entity_pk;

        CREATE VIEW IF NOT EXISTS v_citations AS
        SELECT {_iso('c.time_ns')} AS time, c.trace_id, s.span_id, s.name AS span_name,
               e.entity_type, e.entity_id, c.method, c.score,
               c.user_id, c.session_id, c.request_id
        FROM citations c JOIN spans s ON s.pk = c.span_pk
        JOIN entities e ON e.pk = c.entity_pk;

        CREATE VIEW IF NOT EXISTS v_writes AS
        SELECT {_iso('w.time_ns')} AS time, w.trace_id, s.span_id, s.name AS span_name,
               e.entity_type, e.entity_id, w.op, w.status, w.content_hash,
               CASE WHEN w.simhash IS NULL THEN NULL
                    ELSE printf('%016x', w.simhash) END AS simhash,
               w.tokens, w.user_id, w.session_id, w.request_id
        FROM writes w JOIN spans s ON s.pk = w.span_pk
        JOIN entities e ON e.pk = w.entity_pk;

        CREATE VIEW IF NOT EXISTS v_entities AS
        SELECT entity_type, entity_id, title, status, version, parent_id, superseded_by,
               created_at, updated_at,
               CASE WHEN created_ns IS NULL THEN NULL ELSE {_iso('created_ns')} END
                   AS created_at_parsed,
               CASE WHEN updated_ns IS NULL THEN NULL ELSE {_iso('updated_ns')} END
                   AS updated_at_parsed,
               content_hash,
               CASE WHEN simhash IS NULL THEN NULL ELSE printf('%016x', simhash) END
                   AS simhash,
               CASE WHEN first_seen_ns IS NULL THEN NULL ELSE {_iso('first_seen_ns')} END
                   AS first_seen,
               CASE WHEN last_seen_ns IS NULL THEN NULL ELSE {_iso('last_seen_ns')} END
                   AS last_seen
        FROM entities;

        CREATE INDEX IF NOT EXISTS events_name_time ON events (name, time_ns);
        """
    )


# m003: the per-entity access path of injections, maintained in bulk.
ENTITY_INDEX_TABLE = "injections_by_entity"
STATE_TABLE = "_memobs_state"
MERGED_PK_KEY = "injections_merged_pk"
MERGED_ROWS_KEY = "injections_merged_rows"


def m003_deferred_injection_index(db: sqlite3.Connection) -> None:
    # Two random-order indexes on ``injections`` (by entity, by user) made
    # every exported batch dirty thousands of index pages: at a million rows
    # SQLite alone managed ~25k rows/s. ``injections`` becomes append-only
    # (rowid order) and its per-entity access path is ``injections_by_entity``,
    # a narrow entity-ordered copy that the writer fills in large sorted
    # merges of the rows past ``injections_merged_pk`` (the "tail"). Readers
    # combine both: merged rows through the entity order, the tail by rowid
    # range. ``session_key`` is ``session_id`` with '' for none (a WITHOUT
    # ROWID key cannot hold NULL).
    run_script(
        db,
        f"""
        CREATE TABLE IF NOT EXISTS {ENTITY_INDEX_TABLE} (
            entity_pk INTEGER NOT NULL,
            session_key TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            pk INTEGER NOT NULL,
            tokens INTEGER,
            user_id TEXT,
            PRIMARY KEY (entity_pk, session_key, time_ns, pk)
        ) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
            key TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );

        CREATE TRIGGER IF NOT EXISTS injections_by_entity_delete AFTER DELETE ON injections
        BEGIN
            DELETE FROM {ENTITY_INDEX_TABLE}
            WHERE entity_pk = old.entity_pk AND session_key = COALESCE(old.session_id, '')
              AND time_ns = old.time_ns AND pk = old.pk;
        END;
        """
    )
    marked = db.execute(
        f"SELECT 1 FROM {STATE_TABLE} WHERE key = ?", (MERGED_PK_KEY,)
    ).fetchone()
    if marked is None:
        # every row already stored is merged now, in one sorted pass
        db.execute(f"DELETE FROM {ENTITY_INDEX_TABLE}")
        db.execute(
            f"INSERT INTO {ENTITY_INDEX_TABLE} (entity_pk, session_key, time_ns, pk, tokens, user_id)"
            " SELECT entity_pk, COALESCE(session_id, ''), time_ns, pk, tokens, user_id"
            " FROM injections ORDER BY 1, 2, 3, 4"
        )
        db.execute(
            f"INSERT INTO {STATE_TABLE} (key, value) VALUES (?, (SELECT COALESCE(MAX(pk), 0) FROM injections)),"
            " (?, (SELECT COUNT(*) FROM injections))",
            (MERGED_PK_KEY, MERGED_ROWS_KEY),
        )
    db.execute("DROP INDEX IF EXISTS injections_entity")
    db.execute("DROP INDEX IF EXISTS injections_user")


# m004: writers cache the catalog; deleting catalog rows must tell them.
ENTITIES_GENERATION_KEY = "entities_generation"


def m004_entities_generation(db: sqlite3.Connection) -> None:
    # A writer keeps (entity_type, entity_id) -> pk and the catalog row of
    # the entities it has seen, so that an injection that changes nothing
    # costs no catalog write (see ``store/entity_cache.py``). Catalog rows
    # are deleted only by the rebuild after a purge or retention, which adds
    # one to ``entities_generation``: a writer seeing it move forgets all.
    db.execute(
        f"INSERT OR IGNORE INTO {STATE_TABLE} (key, value) VALUES (?, 0)", (ENTITIES_GENERATION_KEY,)
    )


# m005: the per-batch random-order index pages, gone.
SPANS_KEY_INDEX = "spans_key"


def m005_time_led_keys(db: sqlite3.Connection) -> None:
    # An exported batch carries spans in (roughly) time order, but the span
    # dedup key ``UNIQUE (trace_id, span_id)`` and the two citation indexes
    # led by entity put each row on a random page: at a million injection
    # events each batch of 512 spans dirtied ~550 pages of the span key and
    # ~1,100 of the citation indexes, written to the WAL on every commit.
    # The dedup key becomes ``(start_ns, trace_id, span_id)``: a span sent
    # again has the same start, so it still finds itself, and new spans land
    # on the index's last pages (``spans_start`` is its prefix, so it goes).
    # The citation indexes are led by time: the queries read citations by
    # time window (then group by entity), and the catalog rebuild scans them
    # once per chunk of entities. Removing a table constraint needs a table
    # rebuild; the views naming ``spans`` are dropped and made again around it.
    # The new table spells out m001's columns again on purpose: a shipped
    # migration is never edited, so m001's text cannot be shared.
    has_old_key = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'sqlite_autoindex_spans_1'"
    ).fetchone() is not None
    if has_old_key:
        views = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid"
        ).fetchall()
        for name, _ in views:
            db.execute(f'DROP VIEW "{name}"')
        run_script(
            db,
            """
            DROP TABLE IF EXISTS spans_m005;
            CREATE TABLE spans_m005 (
                pk INTEGER PRIMARY KEY,
                trace_id TEXT NOT NULL,
                span_id TEXT NOT NULL,
                parent_span_id TEXT,
                name TEXT NOT NULL,
                kind TEXT,
                start_ns INTEGER NOT NULL,
                end_ns INTEGER NOT NULL,
                status TEXT,
                user_id TEXT,
                session_id TEXT,
                request_id TEXT,
                attributes TEXT NOT NULL DEFAULT '{}',
                resource TEXT NOT NULL DEFAULT '{}',
                scope TEXT
            );
            INSERT INTO spans_m005 (pk, trace_id, span_id, parent_span_id, name, kind, start_ns,
                end_ns, status, user_id, session_id, request_id, attributes, resource, scope)
            SELECT pk, trace_id, span_id, parent_span_id, name, kind, start_ns,
                end_ns, status, user_id, session_id, request_id, attributes, resource, scope
            FROM spans ORDER BY pk;
            DROP TABLE spans;
            ALTER TABLE spans_m005 RENAME TO spans;
            """,
        )
        for _, sql in views:
            db.execute(sql)
    run_script(
        db,
        f"""
        CREATE UNIQUE INDEX IF NOT EXISTS {SPANS_KEY_INDEX} ON spans (start_ns, trace_id, span_id);
        CREATE INDEX IF NOT EXISTS spans_user ON spans (user_id);
        DROP INDEX IF EXISTS spans_start;
        DROP INDEX IF EXISTS citations_entity;
        DROP INDEX IF EXISTS citations_user;
        CREATE INDEX IF NOT EXISTS citations_time ON citations (time_ns, entity_pk, trace_id);
        CREATE INDEX IF NOT EXISTS citations_user_time
            ON citations (user_id, time_ns, entity_pk, trace_id);
        """,
    )


EXPORT_LOSSES_TABLE = "export_losses"


def m006_export_losses(db: sqlite3.Connection) -> None:
    # The exporting side never loses a span silently: what it had to shed,
    # could not write or had to alter is counted here, in the file the user
    # reads (``memobs stats`` / ``review`` / ``doctor`` show it), not only in
    # a log line. Counts are added, never reset, by the exporter.
    db.execute(
        f"""CREATE TABLE IF NOT EXISTS {EXPORT_LOSSES_TABLE} (
            kind TEXT PRIMARY KEY,
            count INTEGER NOT NULL DEFAULT 0,
            first_ns INTEGER,
            last_ns INTEGER
        )"""
    )


REVIEW_DECISIONS_TABLE = "review_decisions"


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def m007_review_decisions_minhash(db: sqlite3.Connection) -> None:
    # Two additions for the review queue (issue 19):
    # - ``minhash``: the MinHash fingerprint of ``memobs.entity.minhash``
    #   (64 bytes, see fingerprint.py) on each injection row and as the
    #   catalog's latest value (part of the ``content`` group: it travels
    #   with content_hash/simhash). simhash stays: rows and traces from
    #   before have only it, and the duplicate signal falls back to it.
    # - ``review_decisions``: what a person decided about a candidate (one
    #   row per entity: the latest decision). ``signals`` is NULL for all,
    #   else the dismissed signal names joined by ','; ``until_ns`` NULL for
    #   good. It carries no user data: purge and retention leave it alone.
    # ADD COLUMN has no IF NOT EXISTS: the columns are checked first.
    for table in ("entities", "injections"):
        if not _has_column(db, table, "minhash"):
            db.execute(f"ALTER TABLE {table} ADD COLUMN minhash BLOB")
    db.execute(
        f"""CREATE TABLE IF NOT EXISTS {REVIEW_DECISIONS_TABLE} (
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            signals TEXT,
            until_ns INTEGER,
            note TEXT,
            decided_ns INTEGER NOT NULL,
            PRIMARY KEY (entity_type, entity_id)
        )"""
    )


LLM_CALLS_TABLE = "llm_calls"
TURN_INJECTIONS_TABLE = "turn_injections"


def m008_turns(db: sqlite3.Connection) -> None:
    # The context budget (issue 22, SPEC §6b) compares, per turn, the memory
    # injected with the prompt sizes of the turn's LLM calls:
    # - ``spans.turn_id``: the span's ``memobs.turn.id`` (its memobs.context
    #   block), else its trace id: without a block the turn is the trace.
    # - ``llm_calls``: one row per span carrying a prompt size
    #   (``gen_ai.usage.input_tokens``, OpenInference's
    #   ``llm.token_count.prompt``: source 'llm'; memobs.record_prompt's
    #   ``memobs.prompt.tokens``: source 'memobs'), with its turn and model.
    # - ``turn_injections``: one row per span and entity type with injection
    #   events: their token sum, and the contiguous pk range of the span's
    #   ``injections`` rows (the writer gives a span's injections
    #   consecutive pks). The budget sums these rows instead of reading every
    #   injection, and reads a range only for the cited entities
    #   (``injections`` has no span index on purpose, see m003). Its indexes
    #   are led by time (appended in order): an index on the random turn ids
    #   would dirty a random page per span on every batch (see m005). They
    #   cover what the budget reads: no table row is looked up per turn.
    #   No index by span: only purge and retention look rows up by span, and
    #   they scan these (small) tables once per run instead of every batch
    #   paying for two more index inserts per span.
    # - ``citations.turn_id``: the turn of the citation's span, so the budget
    #   need not read ``spans`` rows (their JSON often overflows to more pages).
    for table in ("spans", "citations"):
        if not _has_column(db, table, "turn_id"):
            db.execute(f"ALTER TABLE {table} ADD COLUMN turn_id TEXT")
    run_script(
        db,
        f"""
        CREATE TABLE IF NOT EXISTS {LLM_CALLS_TABLE} (
            pk INTEGER PRIMARY KEY,
            span_pk INTEGER NOT NULL,
            turn_id TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            user_id TEXT,
            input_tokens INTEGER NOT NULL,
            model TEXT,
            source TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS llm_calls_time
            ON {LLM_CALLS_TABLE} (time_ns, turn_id, source, input_tokens);

        CREATE TABLE IF NOT EXISTS {TURN_INJECTIONS_TABLE} (
            turn_id TEXT NOT NULL,
            span_pk INTEGER NOT NULL,
            time_ns INTEGER NOT NULL,
            user_id TEXT,
            entity_type TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            first_pk INTEGER NOT NULL,
            last_pk INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS turn_injections_time
            ON {TURN_INJECTIONS_TABLE} (time_ns, turn_id, entity_type, user_id, tokens, first_pk, last_pk);
        """,
    )


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    m001_initial,
    m002_readable_views,
    m003_deferred_injection_index,
    m004_entities_generation,
    m005_time_led_keys,
    m006_export_losses,
    m007_review_decisions_minhash,
    m008_turns,
)
SCHEMA_VERSION = len(MIGRATIONS)


def applied_migrations(db: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in the file, in order applied."""
    if not has_migrations_table(db):
        return []
    return [r[0] for r in db.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY rowid")]


def has_migrations_table(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MIGRATIONS_TABLE,)
    ).fetchone()
    return row is not None


def migrate(db: sqlite3.Connection, migrations=MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded in ``db``; return their names.

    Idempotent, and safe when several processes migrate one file at once:
    the check and the changes happen under one write lock.
    """
    names = {m.__name__ for m in migrations}
    applied = set(applied_migrations(db)) if has_migrations_table(db) else set()
    if names <= applied:
        return []
    done: list[str] = []
    with immediate_transaction(db):
        db.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied = set(applied_migrations(db))
        for migration in migrations:
            if migration.__name__ in applied:
                continue
            migration(db)
            db.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                (migration.__name__, datetime.now(timezone.utc).isoformat()),
            )
            done.append(migration.__name__)
    return done


def _split_statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
