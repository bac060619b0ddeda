"""One small "query → rows" interface over clickhouse-connect, for both targets.

clickhouse-connect drives a ClickHouse server over HTTP(S) and, with
``interface="chdb"``, embedded ClickHouse in this process (chdb): the same
client class, the same SQL, the same typed results. So the store has one
code path and the tests (on chdb) run the code a fleet runs (on a server).
The chdb interface is marked experimental by clickhouse-connect; it is
what the tests exercise, pinned by the ``test`` extra. chdb keeps one
embedded instance per process: one ``chdb://`` folder open at a time.

Every ClickHouse error becomes a :class:`ClickHouseError` (a
:class:`~memobs_otel.store.StoreError`: the CLI prints it as one line);
``ACCESS_DENIED`` / ``READONLY`` ones are :class:`AccessDenied`.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ..connection import StoreError
from .url import Target

# ClickHouse error codes: 164 READONLY, 497 ACCESS_DENIED, 60 UNKNOWN_TABLE, 81 UNKNOWN_DATABASE
_DENIED = ("Code: 164", "Code: 497", "ACCESS_DENIED", "READONLY", "Not enough privileges")


class ClickHouseError(StoreError):
    """ClickHouse could not be reached or refused a statement (one line)."""


class AccessDenied(ClickHouseError):
    """The ClickHouse user may not do this (a read-only user writing, say)."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # server messages carry a stack trace after the first sentence; keep the gist
    return text[:400] + ("…" if len(text) > 400 else "")


class Client:
    """``rows(sql, params)`` / ``command(sql)`` / ``insert(...)`` over one target."""

    def __init__(self, target: Target):
        self.target = target
        try:
            import clickhouse_connect
        except ImportError:
            raise ClickHouseError(
                f"{target.display()}: reading ClickHouse needs clickhouse-connect: "
                "pip install 'memobs_otel[clickhouse]' (and chdb for chdb:// folders)"
            ) from None
        try:
            if target.kind == "chdb":
                if not os.path.isdir(target.path):
                    raise ClickHouseError(f"{target.display()}: no such folder {target.path}")
                self._client = clickhouse_connect.get_client(interface="chdb", path=target.path)
            else:
                self._client = clickhouse_connect.get_client(
                    host=target.host, port=target.port, username=target.user,
                    password=target.password or "", database=target.database,
                    secure=target.secure, verify=target.verify,
                    # read-only users (readonly=1) may not change settings
                    settings={}, autogenerate_session_id=False,
                )
        except ClickHouseError:
            raise
        except ImportError as exc:
            raise ClickHouseError(
                f"{target.display()}: chdb:// needs the chdb package: pip install chdb ({_one_line(exc)})"
            ) from None
        except Exception as exc:
            raise self._error(exc, "cannot connect") from None

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        try:
            return self._client.query(sql, parameters=params or {}).result_rows
        except Exception as exc:
            raise self._error(exc, "query failed") from None

    def command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=params or {})
        except Exception as exc:
            raise self._error(exc, "statement failed") from None

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Iterable[str]) -> None:
        try:
            self._client.insert(table, rows, column_names=list(columns))
        except Exception as exc:
            raise self._error(exc, "insert failed") from None

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing twice, or a dropped connection: nothing left to do
            pass

    def _error(self, exc: BaseException, what: str) -> ClickHouseError:
        text = _one_line(exc)
        cls = AccessDenied if any(word in text for word in _DENIED) else ClickHouseError
        return cls(f"{self.target.display()}: {what}: {text}")
