"""The writer's copy of the entity catalog: keys -> pk and each entity's row.

Why it exists: most injection events repeat what the catalog already holds
(same content hash, same created_at). Writing the catalog row of every
entity a batch names made ingest slow (with 50k entities, most catalog
pages were rewritten by every batch). With this cache an event is compared
to the stored row in Python first, and only an event that changes
something — a new entity, a new value, an earlier first sighting — leads
to a catalog write, of the columns it sets.

What the catalog then says (see ``catalog.py``): per field group the value
of the latest event carrying it; a group's ``*_t`` is the time its current
value was first seen (an event repeating the value does not move it), and
an event with a different value wins when it is not older than ``*_t`` —
so a late batch carrying an old value can win until the current value is
injected again. ``last_seen_ns`` is written with the row (new entity,
changed field) and refreshed in bulk when the injection index is merged;
readers that need the exact last injection use the injection rows.

Validity: the cache only ever holds what was read or written inside a
write transaction. At the start of each one, :meth:`EntityCache.sync`
forgets the rows when another connection committed since
(``PRAGMA data_version``) and everything when catalog rows were deleted
(``entities_generation``, moved by the rebuild after purge or retention).
"""

from __future__ import annotations

import sqlite3
from typing import Iterable

from . import catalog, state
from .schema import ENTITIES_GENERATION_KEY

# the catalog columns after (entity_type, entity_id), in table order
COLUMNS: tuple[str, ...] = tuple(catalog._COLUMNS[2:])
_AT = {name: i for i, name in enumerate(COLUMNS)}
FIRST, LAST = _AT["first_seen_ns"], _AT["last_seen_ns"]
# group -> (index of the field in ``catalog.FIELDS`` saying it is carried,
#           index of its time column, indexes of its value columns)
_GROUPS = tuple(
    (group, catalog._FIELD_GROUP.index(group), _AT[time_col], tuple(_AT[c] for c in cols))
    for group, (time_col, cols) in catalog.GROUPS.items()
)
_CORE = (_AT["content_hash"], _AT["simhash"], _AT["created_at"])
# last_seen_ns never goes back: the index merge may have moved it past the cache
_UPDATE_SQL = "UPDATE entities SET " + ", ".join(
    "last_seen_ns = NULLIF(MAX(COALESCE(last_seen_ns, 0), COALESCE(?, 0)), 0)"
    if c == "last_seen_ns" else f"{c} = ?"
    for c in COLUMNS
) + " WHERE pk = ?"


def core_of(row: list) -> tuple:
    """What the writer's fast path compares: (content_hash, simhash, created_at, first_seen_ns)."""
    return (row[_CORE[0]], row[_CORE[1]], row[_CORE[2]], row[FIRST])


class EntityCache:
    """One writer's cache; see the module docstring."""

    LIMIT = 262_144  # entities kept; past it the cache starts over
    _CHUNK = 400  # keys per lookup statement

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.pks: dict[tuple[str, str], int] = {}
        self.rows: dict[int, list] = {}
        self.core: dict[int, tuple] = {}
        self.generation: int | None = None
        self.data_version: int | None = None
        self._new: dict[int, tuple[str, str]] = {}  # pk -> key, inserted by flush
        self._dirty: set[int] = set()

    def sync(self, conn: sqlite3.Connection) -> None:
        """Start of a write transaction: drop what may be stale."""
        generation = state.read(conn, ENTITIES_GENERATION_KEY, None) if state.has_state(conn) else None
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if generation != self.generation or len(self.pks) > self.LIMIT:
            self.forget()
        elif version != self.data_version:
            self.rows, self.core = {}, {}
        self.generation, self.data_version = generation, version
        self._new, self._dirty = {}, set()

    # -- keys ---------------------------------------------------------------
    def resolve(self, conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> dict:
        """Give every key a pk (a new entity gets the next free one; its row
        is inserted by :meth:`flush`). Returns ``pks``."""
        pks = self.pks
        missing = [key for key in dict.fromkeys(keys) if key not in pks]  # first-seen order
        for start in range(0, len(missing), self._CHUNK):
            chunk = missing[start : start + self._CHUNK]
            values = ", ".join("(?, ?)" for _ in chunk)
            # the keys drive, each found through the unique index
            for pk, entity_type, entity_id in conn.execute(
                f"SELECT e.pk, e.entity_type, e.entity_id FROM (VALUES {values}) AS k"
                " CROSS JOIN entities e ON e.entity_type = k.column1 AND e.entity_id = k.column2",
                [part for key in chunk for part in key],
            ):
                pks[(entity_type, entity_id)] = pk
        new = [key for key in missing if key not in pks]
        if new:
            next_pk = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM entities").fetchone()[0]
            for key in new:
                next_pk += 1
                pks[key] = next_pk
                self.rows[next_pk] = [None] * len(COLUMNS)
                self._new[next_pk] = key
        return pks

    def load(self, conn: sqlite3.Connection, entity_pks: Iterable[int]) -> None:
        """Read the stored rows of ``entity_pks`` not in the cache."""
        rows = self.rows
        wanted = [pk for pk in set(entity_pks) if pk not in rows]
        select = ", ".join(COLUMNS)
        for start in range(0, len(wanted), self._CHUNK):
            chunk = wanted[start : start + self._CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for pk, *values in conn.execute(
                f"SELECT pk, {select} FROM entities WHERE pk IN ({marks})", chunk
            ):
                rows[pk] = values
                self.core[pk] = core_of(values)

    # -- catalog events -----------------------------------------------------
    def observe(self, pk: int, time_ns: int, fields: tuple) -> None:
        """Apply one injection or write event (``catalog.FIELDS`` order) to
        the cached row; the row is written by :meth:`flush` if it changed."""
        row = self.rows[pk]
        changed = False
        if row[FIRST] is None or time_ns < row[FIRST]:
            row[FIRST] = time_ns
            changed = True
        if row[LAST] is None or time_ns > row[LAST]:
            row[LAST] = time_ns
        for group, carried_at, time_at, value_at in _GROUPS:
            if fields[carried_at] is None:
                continue
            values = catalog._group_values(group, fields)
            if all(row[i] == v for i, v in zip(value_at, values)):
                continue  # same value: nothing to write
            if row[time_at] is not None and time_ns < row[time_at]:
                continue  # older than the stored value
            row[time_at] = time_ns
            for i, v in zip(value_at, values):
                row[i] = v
            changed = True
        if changed:
            self._dirty.add(pk)
            self.core[pk] = core_of(row)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the new entities and write the changed columns of the others."""
        by_shape: dict[tuple[str, ...], list] = {}
        for pk, key in self._new.items():
            row = self.rows[pk]
            shape = tuple(COLUMNS[i] for i, v in enumerate(row) if v is not None)
            by_shape.setdefault(shape, []).append(
                (pk, *key, *(v for v in row if v is not None))
            )
        for shape, rows in by_shape.items():
            names = ("pk", "entity_type", "entity_id", *shape)
            conn.executemany(
                f"INSERT INTO entities ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                rows,
            )
        changed = [(*self.rows[pk], pk) for pk in self._dirty.difference(self._new)]
        if changed:  # every column: a parsed time may go back to NULL ("soon")
            conn.executemany(_UPDATE_SQL, changed)
        for pk in self._new:
            self.core[pk] = core_of(self.rows[pk])
        self._new, self._dirty = {}, set()
