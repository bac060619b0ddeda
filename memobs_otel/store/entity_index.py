"""The per-entity access path of injections, maintained in bulk (schema m003).

``injections`` is append-only: no random-order index is touched per row.
Its per-entity access path is ``injections_by_entity`` — a narrow copy
(entity, session, time, pk, tokens, user) stored in entity order — which
the writer fills in large sorted merges of the rows past the merge mark
(the *tail*), once the tail reaches :func:`merge_threshold` rows. Readers
combine the merged rows (read in entity order) with the tail (read by rowid
range), inside one read transaction so both come from the same snapshot.

Why: a random-order index dirties a page per inserted row in every
exported batch; at a million rows SQLite itself wrote only ~25k rows/s. A
merge of N sorted rows dirties each page of the copy at most once, so its
cost per row shrinks as N grows; the threshold grows with the table so the
cost per row stays flat while the tail stays a small share of the data.

Deleting an ``injections`` row deletes its copy (trigger), so purge and
retention need no extra step.
"""

from __future__ import annotations

import sqlite3

from . import state
from .schema import ENTITY_INDEX_TABLE, MERGED_PK_KEY, MERGED_ROWS_KEY, STATE_TABLE

MERGE_MIN_ROWS = 65_536
# the tail may grow to 1/8 of the merged rows before the next merge
MERGE_FRACTION = 8


present = state.has_state  # the m003 layout: merged copy + merge mark


def merged_pk(conn: sqlite3.Connection) -> int:
    """Rows of ``injections`` with ``pk`` up to this are in the merged copy."""
    return state.read(conn, MERGED_PK_KEY)


def merge_threshold(merged_rows: int) -> int:
    return max(MERGE_MIN_ROWS, merged_rows // MERGE_FRACTION)


def next_injection_pk(conn: sqlite3.Connection, mark: int) -> int:
    """First free injection pk past both the rows and the merge mark.

    Never below the mark: a pk at or under it would be taken for merged
    (after the newest rows were deleted, SQLite would reuse their pks).
    """
    last = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM injections").fetchone()[0]
    return max(last, mark) + 1


def maybe_merge(conn: sqlite3.Connection, mark: int, force: bool = False) -> int:
    """Merge the tail when it is due (or ``force``); return rows merged.

    Runs inside the caller's write transaction.
    """
    last = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM injections").fetchone()[0]
    if last <= mark:
        return 0
    merged_rows = state.read(conn, MERGED_ROWS_KEY)
    if not force and last - mark < merge_threshold(merged_rows):
        return 0
    added = conn.execute(
        f"INSERT OR IGNORE INTO {ENTITY_INDEX_TABLE}"
        " (entity_pk, session_key, time_ns, pk, tokens, user_id)"
        " SELECT entity_pk, COALESCE(session_id, ''), time_ns, pk, tokens, user_id"
        " FROM injections WHERE pk > ? ORDER BY 1, 2, 3, 4",
        (mark,),
    ).rowcount
    # the catalog's last_seen_ns is refreshed here, in bulk (see entity_cache.py)
    conn.execute(
        "UPDATE entities SET last_seen_ns = t.last_ns FROM"
        " (SELECT entity_pk, MAX(time_ns) AS last_ns FROM injections WHERE pk > ?"
        "  GROUP BY entity_pk) AS t"
        " WHERE entities.pk = t.entity_pk"
        " AND (entities.last_seen_ns IS NULL OR t.last_ns > entities.last_seen_ns)",
        (mark,),
    )
    state.write(conn, **{MERGED_PK_KEY: last, MERGED_ROWS_KEY: merged_rows + added})
    return added


def merge_all(conn: sqlite3.Connection) -> None:
    """Merge the whole tail now (before deleting: the catalog rebuild reads
    injections per entity through the merged copy)."""
    if present(conn):
        maybe_merge(conn, merged_pk(conn), force=True)


def recount(conn: sqlite3.Connection) -> None:
    """Store the true merged row count (after deletions shrank it)."""
    if present(conn):
        conn.execute(
            f"INSERT OR REPLACE INTO {STATE_TABLE} (key, value)"
            f" VALUES (?, (SELECT COUNT(*) FROM {ENTITY_INDEX_TABLE}))",
            (MERGED_ROWS_KEY,),
        )
