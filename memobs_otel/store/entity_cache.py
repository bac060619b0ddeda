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

Keys: every entity of the file, when it has at most ``LIMIT`` of them
(*complete* mode). The writer then gives a key it does not know the next
free pk on the spot, with no lookup: a key missing from a complete cache
is a new entity. A cache starts complete by reading every key once (tens
of ms for 50k entities); a commit by another connection is caught up by
reading the keys past the highest pk it knows (new entities always get
``MAX(pk) + 1``, and deletions move ``entities_generation``). Past
``LIMIT`` entities the cache is bounded instead and looks unknown keys up
one by one.

Validity: the cache only ever holds what was read or written inside a
write transaction. At the start of each one, :meth:`EntityCache.sync`
forgets the rows (and catches the keys up) when another connection
committed since (``PRAGMA data_version``), and everything when catalog rows
were deleted (``entities_generation``, moved by the rebuild after purge or
retention). A rolled-back batch takes back the keys it added
(:meth:`EntityCache.rollback`).

Rows are tuples, a changed row built anew: the garbage collector stops
tracking a tuple of plain values at its first pass, while a list per
entity kept through the batch is promoted by its passes, and enough
promotions bring on a full collection of the whole (host's) heap.
"""

from __future__ import annotations

import sqlite3
from itertools import compress
from operator import is_not
from typing import Iterable

from . import catalog, state
from .schema import ENTITIES_GENERATION_KEY

# the catalog columns after (entity_type, entity_id), in table order
COLUMNS: tuple[str, ...] = tuple(catalog.COLUMNS[2:])
_AT = {name: i for i, name in enumerate(COLUMNS)}
FIRST, LAST = _AT["first_seen_ns"], _AT["last_seen_ns"]
# group -> (index of the field in ``catalog.FIELDS`` saying it is carried,
#           index of its time column, indexes of its value columns)
_GROUPS = tuple(
    (group, catalog.FIELD_GROUP.index(group), _AT[time_col], tuple(_AT[c] for c in cols))
    for group, (time_col, cols) in catalog.GROUPS.items()
)
_CORE = (_AT["content_hash"], _AT["simhash"], _AT["created_at"], _AT["minhash"])
# last_seen_ns never goes back: the index merge may have moved it past the cache
_UPDATE_SQL = "UPDATE entities SET " + ", ".join(
    "last_seen_ns = NULLIF(MAX(COALESCE(last_seen_ns, 0), COALESCE(?, 0)), 0)"
    if c == "last_seen_ns" else f"{c} = ?"
    for c in COLUMNS
) + " WHERE pk = ?"
# a file from before m007 (no minhash column): the same without it
_MINHASH = _AT["minhash"]
_UPDATE_SQL_BEFORE_M007 = _UPDATE_SQL.replace(", minhash = ?", "")


_CONTENT = (_AT["content_t"], _AT["content_hash"], _AT["simhash"], _AT["minhash"])
_CREATED = (_AT["created_t"], _AT["created_at"], _AT["created_ns"])
_NONES = (None,) * len(COLUMNS)
# which columns a new entity's row sets -> its INSERT (no NULL is bound)
_INSERTS: dict[tuple[bool, ...], str] = {}


def _insert_sql(mask: tuple[bool, ...]) -> str:
    sql = _INSERTS.get(mask)
    if sql is None:
        names = ("pk", "entity_type", "entity_id", *compress(COLUMNS, mask))
        sql = _INSERTS[mask] = (
            f"INSERT INTO entities ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        )
    return sql


def core_of(row) -> tuple:
    """What the writer's fast path compares: (content_hash, simhash, created_at, first_seen_ns, minhash)."""
    return (row[_CORE[0]], row[_CORE[1]], row[_CORE[2]], row[FIRST], row[_CORE[3]])


class EntityCache:
    """One writer's cache; see the module docstring."""

    LIMIT = 262_144  # entities kept; past it the cache is bounded and starts over when full

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.pks: dict[tuple[str, str], int] = {}
        self.rows: dict[int, tuple] = {}  # pk -> catalog row
        self.core: dict[int, tuple] = {}
        self.generation: int | None = None
        self.data_version: int | None = None
        # complete: ``pks`` holds every entity of the file, ``top`` its highest pk
        self.complete = False
        self.top = 0
        self._start_top = 0
        self._next = 0  # the last pk given out (this batch's new entities take the next ones)
        self._conn: sqlite3.Connection | None = None
        self._new: dict[int, tuple[str, str]] = {}  # pk -> key, added by this batch
        self._dirty: set[int] = set()
        self.minhash = True  # the file has m007's minhash columns (see sync)

    def sync(self, conn: sqlite3.Connection) -> None:
        """Start of a write transaction: drop what may be stale, catch the keys up."""
        self._new, self._dirty = {}, set()
        generation = state.read(conn, ENTITIES_GENERATION_KEY, None) if state.has_state(conn) else None
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        top = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM entities").fetchone()[0]
        if generation != self.generation or len(self.pks) > self.LIMIT or (self.complete and top < self.top):
            self.forget()
        elif version != self.data_version:
            self.rows, self.core = {}, {}
        self.generation, self.data_version = generation, version
        self.minhash = catalog.has_minhash(conn)
        if self.complete:
            if top > self.top:  # entities another connection added: pks past ours
                self._read_keys(conn, "WHERE pk > ?", (self.top,))
                self.top = top
        elif not self.pks:
            count = conn.execute("SELECT COUNT(*) FROM entities").fetchone()[0]
            if count <= self.LIMIT:
                self._read_keys(conn, "", ())
                self.complete, self.top = True, top
        self._start_top = self.top
        self._next = top
        self._conn = conn

    def _read_keys(self, conn: sqlite3.Connection, where: str, args: tuple) -> None:
        pks = self.pks
        for pk, entity_type, entity_id in conn.execute(
            f"SELECT pk, entity_type, entity_id FROM entities {where}", args
        ):
            pks[(entity_type, entity_id)] = pk

    def rollback(self) -> None:
        """The batch was rolled back: take back its new keys and the rows it changed."""
        pks = self.pks
        for key in self._new.values():
            pks.pop(key, None)
        self.top = self._start_top
        self.rows, self.core = {}, {}
        self._new, self._dirty = {}, set()

    # -- keys ---------------------------------------------------------------
    def add(self, key: tuple[str, str]) -> int:
        """The pk of a key not in ``pks`` (inside a batch, after :meth:`sync`):
        a new entity gets the next free pk (its row is inserted by
        :meth:`flush`); a bounded cache first looks the key up."""
        if not self.complete:
            row = self._conn.execute(
                "SELECT pk FROM entities WHERE entity_type = ? AND entity_id = ?", key
            ).fetchone()
            if row is not None:
                self.pks[key] = row[0]
                return row[0]
        self._next += 1
        pk = self._next
        if self.complete:
            self.top = pk
        self.pks[key] = pk
        self.rows[pk] = _NONES
        self._new[pk] = key
        return pk

    def load(self, conn: sqlite3.Connection, entity_pks: Iterable[int]) -> None:
        """Read the stored rows of ``entity_pks`` not in the cache."""
        rows, core = self.rows, self.core
        wanted = [pk for pk in set(entity_pks) if pk not in rows]
        select = ", ".join(c if c != "minhash" or self.minhash else "NULL" for c in COLUMNS)
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f"SELECT pk, {select} FROM entities WHERE pk IN ({marks})", chunk):
                values = row[1:]
                rows[row[0]] = values
                core[row[0]] = core_of(values)

    # -- catalog events -----------------------------------------------------
    # A changed row is built anew as a tuple: a list kept per entity through
    # the batch would be promoted by the garbage collector's passes and
    # bring on full collections of the host's heap.
    def observe(self, pk: int, time_ns: int, fields: tuple) -> None:
        """Apply one injection or write event (``catalog.FIELDS`` order) to
        the cached row; the row is written by :meth:`flush` if it changed."""
        row = list(self.rows[pk])
        changed = False
        if not self.minhash and fields[10] is not None:  # no column to keep it in
            fields = fields[:10] + (None,)
        if row[FIRST] is None or time_ns < row[FIRST]:
            row[FIRST] = time_ns
            changed = True
        if row[LAST] is None or time_ns > row[LAST]:
            row[LAST] = time_ns
        for group, carried_at, time_at, value_at in _GROUPS:
            if fields[carried_at] is None:
                continue
            values = catalog.group_values(group, fields)
            if all(row[i] == v for i, v in zip(value_at, values)):
                continue  # same value: nothing to write
            if row[time_at] is not None and time_ns < row[time_at]:
                continue  # older than the stored value
            row[time_at] = time_ns
            for i, v in zip(value_at, values):
                row[i] = v
            changed = True
        self.rows[pk] = row = tuple(row)
        if changed:
            self._dirty.add(pk)
            self.core[pk] = core_of(row)

    def observe_core(self, time_ns: int, pk: int, content_hash: str, simhash: int, created,
                     minhash: bytes | None = None) -> None:
        """:meth:`observe` for the usual injection: content hash and simhash
        set, ``created_at`` and ``minhash`` set or ``None``, no other catalog field."""
        row = self.rows[pk]
        new = None
        changed = False
        first = row[FIRST]
        if first is None or time_ns < first:
            new = list(row)
            new[FIRST] = time_ns
            changed = True
        last = row[LAST]
        if last is None or time_ns > last:
            if new is None:
                new = list(row)
            new[LAST] = time_ns
        time_at, hash_at, simhash_at, minhash_at = _CONTENT
        if (row[hash_at] != content_hash or row[simhash_at] != simhash or row[minhash_at] != minhash) and (
            row[time_at] is None or time_ns >= row[time_at]
        ):
            if new is None:
                new = list(row)
            new[time_at], new[hash_at], new[simhash_at], new[minhash_at] = time_ns, content_hash, simhash, minhash
            changed = True
        if created is not None:
            time_at, at_at, ns_at = _CREATED
            created_ns = catalog.parse_cached(created)
            if (row[at_at] != created or row[ns_at] != created_ns) and (
                row[time_at] is None or time_ns >= row[time_at]
            ):
                if new is None:
                    new = list(row)
                new[time_at], new[at_at], new[ns_at] = time_ns, created, created_ns
                changed = True
        if new is not None:
            self.rows[pk] = row = tuple(new)
        if changed:
            self._dirty.add(pk)
            self.core[pk] = core_of(row)

    def flush(self, conn: sqlite3.Connection) -> None:
        """Insert the new entities and write the changed columns of the others."""
        rows = self.rows
        by_mask: dict[tuple[bool, ...], list] = {}
        for pk, key in self._new.items():
            row = rows[pk]
            mask = tuple(map(is_not, row, _NONES))
            group = by_mask.get(mask)
            if group is None:
                group = by_mask[mask] = []
            group.append((pk, *key, *compress(row, mask)))
        for mask, group in by_mask.items():
            conn.executemany(_insert_sql(mask), group)
        new = self._new
        changed = [(*rows[pk], pk) for pk in self._dirty if pk not in new]
        if changed and not self.minhash:
            changed = [row[:_MINHASH] + row[_MINHASH + 1 :] for row in changed]
        if changed:  # every column: a parsed time may go back to NULL ("soon")
            conn.executemany(_UPDATE_SQL if self.minhash else _UPDATE_SQL_BEFORE_M007, changed)
        core = self.core
        for pk in new:
            if pk not in core:
                core[pk] = core_of(rows[pk])
        self._dirty = set()
