"""The report's aggregates (:mod:`memobs_otel.report.queries`) over ClickHouse.

Same functions, same results, with the store in place of the SQLite
connection and the entity key ``(entity_type, entity_id)`` in place of the
SQLite row id (``EntityRow.pk`` is the key here). Each is one grouped
statement over the events relation (:mod:`.schema`).
"""

from __future__ import annotations

from typing import Iterable

from ...report.queries import Buckets, EntityRow, SessionUse
from . import inventories
from .facts import CIT, INJ, WRITE

_WINDOW = "Time >= fromUnixTimestamp64Nano({start:Int64}) AND Time <= fromUnixTimestamp64Nano({end:Int64})"
_BUCKET = "intDiv(toUnixTimestamp64Nano(Time) - {origin:Int64}, {width:Int64})"
_KEYS = "(EntityType, EntityId) IN {keys:Array(Tuple(String, String))}"


def _user(user_id: str | None) -> str:
    return " AND UserId = {user:String}" if user_id is not None else ""


def _params(start, end, user_id, buckets: Buckets | None = None, **more) -> dict:
    params = {"start": start, "end": end, "user": "" if user_id is None else str(user_id), **more}
    if buckets is not None:
        params.update(origin=buckets.origin_ns, width=buckets.width_ns)
    return params


def series(store, buckets: Buckets, start: int, end: int, user_id: str | None = None):
    """Injections, injected tokens and citations per bucket (dense lists)."""
    injections = [0] * buckets.count
    tokens = [0] * buckets.count
    citations = [0] * buckets.count
    for index, n, total, cites in store._client.rows(
        f"SELECT {_BUCKET} AS b, countIf(Name = {INJ}), sumIf(Tokens, Name = {INJ}), countIf(Name = {CIT})"
        f" FROM {store.source} WHERE Name IN ({INJ}, {CIT}) AND {_WINDOW}{_user(user_id)} GROUP BY b",
        _params(start, end, user_id, buckets),
    ):
        if 0 <= index < buckets.count:
            injections[index] += n
            tokens[index] += int(total)
            citations[index] += cites
    return injections, tokens, citations


def known_entity_count(store, end: int, user_id: str | None = None) -> int:
    """Entities seen in any injection or write up to ``end`` (the review's "known")."""
    if user_id is None:
        sql = (f"SELECT count() FROM (SELECT EntityType, EntityId FROM {store.source}"
               f" WHERE Name != {CIT} GROUP BY EntityType, EntityId"
               " HAVING min(Time) <= fromUnixTimestamp64Nano({end:Int64}))")
    else:
        sql = (f"SELECT uniqExact(EntityType, EntityId) FROM {store.source}"
               f" WHERE Name IN ({INJ}, {WRITE}) AND UserId = {{user:String}}"
               " AND Time <= fromUnixTimestamp64Nano({end:Int64})")
    return store._client.rows(sql, _params(0, end, user_id))[0][0]


def entity_rows(store, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], EntityRow]:
    """Catalog rows for ``(entity_type, entity_id)`` keys (missing keys are absent)."""
    keys = list(keys)
    if not keys:
        return {}
    found = {}
    deletes = store.derived_deletes()
    for etype, eid, title, head, status, status_ns, first, last in store._client.rows(
        f"SELECT EntityType, EntityId,"
        f" argMaxIf(Title, Time, Title != ''), argMaxIf(ContentHead, Time, ContentHead != ''),"
        f" argMaxIf(Status, Time, Status != ''), toUnixTimestamp64Nano(maxIf(Time, Status != '')),"
        f" toUnixTimestamp64Nano(min(Time)), toUnixTimestamp64Nano(max(Time))"
        f" FROM {store.source} WHERE Name != {CIT} AND {_KEYS} GROUP BY EntityType, EntityId",
        {"keys": keys},
    ):
        status = inventories.apply(status or None, status_ns if status else None, deletes.get((etype, eid)))
        found[(etype, eid)] = EntityRow((etype, eid), title or None, head or None,
                                        status.lower() if status else None, first, last)
    return found


def entity_series(store, pks: list, buckets: Buckets, start: int, end: int,
                  user_id: str | None = None) -> dict:
    """Injections per bucket for each entity key in ``pks``."""
    result = {key: [0] * buckets.count for key in pks}
    if not pks:
        return result
    for etype, eid, index, n in store._client.rows(
        f"SELECT EntityType, EntityId, {_BUCKET} AS b, count() FROM {store.source}"
        f" WHERE Name = {INJ} AND {_KEYS} AND {_WINDOW}{_user(user_id)} GROUP BY EntityType, EntityId, b",
        _params(start, end, user_id, buckets, keys=list(pks)),
    ):
        if 0 <= index < buckets.count:
            result[(etype, eid)][index] += n
    return result


def recent_sessions_by_entity(store, pks: list, start: int, end: int, user_id: str | None = None,
                              limit: int = 5) -> dict:
    """For each entity key, the ``limit`` sessions that injected it most
    recently in the window (latest first; ties by session id, no session first)."""
    result: dict = {key: [] for key in pks}
    if not pks:
        return result
    per_key: dict = {}
    for etype, eid, session, n, last in store._client.rows(
        f"SELECT EntityType, EntityId, SessionId, count(), toUnixTimestamp64Nano(max(Time)) FROM {store.source}"
        f" WHERE Name = {INJ} AND {_KEYS} AND {_WINDOW}{_user(user_id)}"
        f" GROUP BY EntityType, EntityId, SessionId",
        _params(start, end, user_id, keys=list(pks)),
    ):
        per_key.setdefault((etype, eid), []).append(SessionUse(session or None, n, last))
    for key, uses in per_key.items():
        uses.sort(key=lambda use: (-use.last_ns, use.session_id is not None, use.session_id or ""))
        result[key] = uses[:limit]
    return result
