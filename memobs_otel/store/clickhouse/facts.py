"""The SQL side of the ClickHouse store: per-entity aggregates, one pass each.

Both statements read the events relation (:mod:`.schema`: the narrow table
or ``otel_traces`` through ``ARRAY JOIN``) once and group it by entity
with conditional aggregates — injections, tokens, sessions and citations
in the window, the last injection, and the entity catalog (per field
group, the value of the latest injection or write event that carried it,
``argMaxIf``) — so no intermediate result is computed twice (ClickHouse
inlines a CTE at every use: a shared CTE once made one review statement
take 12 s). Python then turns each row into what the SQLite store's SQL
returns (:class:`~memobs_otel.store.results.InjectionStat`,
:class:`~memobs_otel.store.query.EntityFacts`), and the signals are
computed by the same code for both stores (:mod:`memobs_otel.store.signals`).

**Strings back to values.** The Collector's exporter stores every attribute
value as a string (pcommon ``Value.AsString()``: ints in decimal, floats
in the shortest round-tripping form without an exponent between 1e-6 and
1e21, bools as ``true``/``false``). Tokens are read back as ints in SQL
(a float truncated, as the SQLite writer does). Reported ``created_at`` /
``updated_at`` go through :func:`exported_value` and then the very parser
the SQLite store uses (:func:`~memobs_otel.store.timeparse.parse_timestamp_ns`):
``"1718000000"`` is the epoch number an agent reported, as it was before
export. (A timestamp an agent reported as the *string* ``"1718000000"``,
which SQLite refuses to read, cannot be told from it here and is read as
a number.)

**Ties.** Where two events of one entity carry different values of a field
at the very same nanosecond, SQLite keeps the later-arriving one; ClickHouse
has no arrival order, so either may win (and the content hash, simhash and
MinHash, three ``argMaxIf`` on the same condition, could then come from
different events; one ``argMaxIf`` of their tuple would prevent that but
costs several times as much). Events of one entity at one instant with different content
or lifecycle values do not happen in practice: the SDK stamps each event.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ... import semconv as sc
from ...fingerprint import minhash_from_hex
from ..query import EntityFacts, citation_rate
from ..results import InjectionStat
from ..timeparse import ns_to_datetime, parse_timestamp_ns
from . import inventories

INJ, CIT, WRITE = (f"'{sc.EVENT_INJECTION}'", f"'{sc.EVENT_CITATION}'", f"'{sc.EVENT_WRITE}'")
_START = "fromUnixTimestamp64Nano({start:Int64})"
_END = "fromUnixTimestamp64Nano({end:Int64})"


def injection_stats_sql(source: str, user: bool, entity_type: bool) -> str:
    filters = "".join((
        " AND UserId = {user:String}" if user else "",
        " AND EntityType = {type:String}" if entity_type else "",
    ))
    return f"""
SELECT EntityType, EntityId,
       countIf(Name = {INJ}) AS n,
       sumIf(Tokens, Name = {INJ}) AS tokens,
       uniqExactIf(SessionId, Name = {INJ} AND SessionId != '') AS sessions,
       toUnixTimestamp64Nano(minIf(Time, Name = {INJ})) AS first_ns,
       toUnixTimestamp64Nano(maxIf(Time, Name = {INJ})) AS last_ns,
       uniqExactIf(TraceId, Name = {CIT}) AS cites
FROM {source}
WHERE Name IN ({INJ}, {CIT}) AND Time >= {_START} AND Time <= {_END}{filters}
GROUP BY EntityType, EntityId
HAVING n > 0
ORDER BY n DESC, tokens DESC, EntityType, EntityId"""


def injection_stats(rows) -> list[InjectionStat]:
    return [
        InjectionStat(
            entity_type=etype, entity_id=eid, surfaced_count=n, total_prompt_tokens=int(tokens),
            distinct_session_count=sessions, citation_count=cites,
            citation_rate=citation_rate(cites, n),
            first_injected_at=ns_to_datetime(first), last_injected_at=ns_to_datetime(last),
        )
        for etype, eid, n, tokens, sessions, first, last, cites in rows
    ]


def _latest(column: str) -> str:
    # the catalog: the value of the latest injection or write event carrying it
    return f"argMaxIf({column}, Time, Name != {CIT} AND {column} != '')"


def review_facts_sql(source: str, user: bool) -> str:
    mine = " AND UserId = {user:String}" if user else ""
    known = ("HAVING inj_known > 0 OR writes_known > 0" if user
             else f"HAVING seen > 0 AND first_ns <= {{end:Int64}}")
    return f"""
SELECT EntityType, EntityId,
       {_latest('Title')}, {_latest('ContentHead')},
       {_latest('ContentHash')},
       argMaxIf(SimHash, Time, Name != {CIT} AND ContentHash != ''),
       argMaxIf(MinHash, Time, Name != {CIT} AND ContentHash != ''),
       {_latest('Status')}, {_latest('ParentId')}, {_latest('SupersededBy')},
       {_latest('CreatedAt')}, {_latest('UpdatedAt')},
       toUnixTimestamp64Nano(minIf(Time, Name != {CIT})) AS first_ns,
       countIf(Name = {INJ} AND Time >= {_START} AND Time <= {_END}{mine}) AS n,
       sumIf(Tokens, Name = {INJ} AND Time >= {_START} AND Time <= {_END}{mine}) AS tokens,
       toUnixTimestamp64Nano(maxIf(Time, Name = {INJ} AND Time <= {_END}{mine})) AS last_ns,
       uniqExactIf(TraceId, Name = {CIT} AND Time >= {_START} AND Time <= {_END}{mine}) AS cites,
       countIf(Name != {CIT}) AS seen,
       countIf(Name = {INJ} AND Time <= {_END}{mine}) AS inj_known,
       countIf(Name = {WRITE} AND Time <= {_END}{mine}) AS writes_known,
       toUnixTimestamp64Nano(maxIf(Time, Name != {CIT} AND Status != '')) AS status_ns
FROM {source}
GROUP BY EntityType, EntityId
{known}"""


def review_facts(rows, deletes: dict[tuple[str, str], int] | None = None) -> list[EntityFacts]:
    """``deletes``: the deletes complete inventories derive (:mod:`.inventories`)."""
    facts = []
    deletes = deletes or {}
    for (etype, eid, title, head, content_hash, simhash, minhash, status, parent, superseded,
         created, updated, first_ns, n, tokens, last_ns, cites, _seen, inj_known, _writes,
         status_ns) in rows:
        if deletes:
            status = inventories.apply(status or None, status_ns if status else None, deletes.get((etype, eid)))
        facts.append(EntityFacts(
            entity_type=etype,
            entity_id=eid,
            title=title or None,
            content_head=head or None,
            content_hash=content_hash or None,
            simhash=simhash_value(simhash) if content_hash else None,
            status=status.lower() if status else None,
            parent_id=parent or None,
            superseded_by=superseded or None,
            reported_time=bool(created or updated),
            created_ns=reported_ns(created),
            updated_ns=reported_ns(updated),
            first_seen_ns=first_ns,
            injections=n,
            tokens=int(tokens),
            last_injected_ns=last_ns if inj_known else None,
            citations=cites,
            minhash=minhash_from_hex(minhash) if content_hash and minhash else None,
        ))
    return facts


def simhash_value(text: str) -> int | None:
    """The unsigned 64-bit simhash of its exported hex form, as SQLite reads it back."""
    if not text:
        return None
    try:
        number = int(text, 16)
    except ValueError:
        return None
    return number if 0 <= number < 1 << 64 else None


_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+(\.[0-9]+)?(e[-+][0-9]+)?")


def exported_value(text: str):
    """The scalar an exporter-written attribute string stands for: the inverse
    of pcommon ``AsString()`` for ints, floats and bools; other text as is."""
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


@lru_cache(maxsize=4096)  # entities often share a created_at (a bulk import)
def reported_ns(text: str) -> int | None:
    """A reported timestamp (exported as a string) as UTC ns, as the SQLite store parses it."""
    if not text:
        return None
    return parse_timestamp_ns(exported_value(text))
