"""``memobs purge --user U``: delete every row carrying one user."""

from __future__ import annotations

import click

from ..store import StoreError
from .common import db_option, echo_json, fail, json_option, open_store_or_fail


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
