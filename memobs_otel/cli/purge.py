"""``memobs purge --user U``: delete every row carrying one user.

Exit 0 and "Purged user …" only once no byte of the user is left in the
file or its WAL. When another process holds a read transaction on the WAL
(a long query, an open ``sqlite3`` shell), the rows are deleted but their
old pages cannot be cleared yet: one line ``memobs: purge pending: …`` on
stderr (with ``--json``: the counts and ``"pending"`` on stdout) and exit 3.
Run the same command again once the reader is done (the next writer to open
the file finishes it too). Bad input exits 2, as everywhere.
"""

from __future__ import annotations

import sys

import click

from ..store import PurgePending, StoreError
from .common import db_option, echo_json, fail, json_option, open_store_or_fail

EXIT_PENDING = 3


@click.command("purge")
@db_option()
@click.option("--user", "user", required=True, metavar="U", help="The user whose data goes.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def command(db, user, yes, as_json):
    """Delete every span, event, injection, citation and write of one user."""
    if not user.strip():
        fail("--user must not be empty")
    store = open_store_or_fail(db)  # validates the file before anything is written
    with store:
        if not yes and not as_json:
            click.confirm(f"Delete all data of user {user!r} from {db}?", abort=True)
        try:
            counts = store.purge_user(user)
        except PurgePending as exc:
            _pending(user, exc, as_json)
        except StoreError as exc:
            fail(str(exc))
        except Exception as exc:  # locked, read-only, …: one line, no traceback
            fail(f"{db}: purge failed ({type(exc).__name__}: {exc})")
    if as_json:
        echo_json({"user_id": user, "deleted": counts})
        return
    total = sum(counts.values())
    detail = ", ".join(f"{n} {table}" for table, n in counts.items())
    click.echo(f"Purged user {user!r}: {total} rows ({detail}).")


def _pending(user: str, exc: PurgePending, as_json: bool) -> None:
    if as_json:
        echo_json({"user_id": user, "deleted": exc.counts, "pending": exc.reason})
    click.echo("memobs: " + " ".join(str(exc).split()), err=True)
    sys.exit(EXIT_PENDING)
