"""``memobs dismiss`` / ``memobs undismiss``: review decisions, stored in the file.

    memobs dismiss TYPE ID [--signal S]... [--until DATE] [--note TEXT]
    memobs undismiss TYPE ID

A dismissed candidate leaves ``memobs review`` (and the report) until a
signal fires that was not dismissed, or ``--until`` passes (a date or an ISO
8601 time, UTC unless it says otherwise); ``review --include-dismissed``
shows it marked. The decision is written to the ``review_decisions`` table
of the file with its time and note (see
:mod:`memobs_otel.store.decisions`). Bad input (no such file or entity,
unknown signal, unreadable date) is one line and exit 2; the file is never
created and, on error, never changed. A confirmation longer than the
terminal is folded at spaces, never inside the type or id.
"""

from __future__ import annotations

import click

from ..store import StoreError
from .common import db_option, echo_json, echo_wrapped, fail, json_option, open_store_or_fail, run_query
from .review import signal_option


def _write(fn):
    """Run a writing store call: bad input or a file that cannot be written is one line, exit 2."""
    try:
        return run_query(fn)
    except StoreError as exc:
        fail(str(exc))
    except Exception as exc:  # sqlite3 errors (read-only file, disk full): one line, no traceback
        fail(f"cannot record the decision ({type(exc).__name__}: {exc})")


@click.command("dismiss")
@click.argument("entity_type", metavar="TYPE")
@click.argument("entity_id", metavar="ID")
@db_option()
@click.option("--signal", "signal", multiple=True, metavar="S", callback=signal_option,
              help="Dismiss only this signal (repeatable); default: all.")
@click.option("--until", "until", default=None, metavar="DATE",
              help="Until this date (YYYY-MM-DD, UTC) or ISO 8601 time; default: for good.")
@click.option("--note", "note", default=None, metavar="TEXT", help="Why (kept with the decision).")
@json_option
def command(entity_type, entity_id, db, signal, until, note, as_json):
    """Hide a review candidate a person has dealt with."""
    store = open_store_or_fail(db)
    with store:
        decision = _write(lambda: store.dismiss(entity_type, entity_id, signals=signal, until=until, note=note))
    if as_json:
        echo_json(decision.to_dict())
        return
    which = "all signals" if decision.signals is None else ", ".join(sorted(decision.signals))
    until_text = decision.to_dict()["until"]
    echo_wrapped(f"dismissed {entity_type} {entity_id} ({which}) "
                 + (f"until {until_text}" if until_text else "for good")
                 + (f"; note: {note}" if note else ""))


@click.command("undismiss")
@click.argument("entity_type", metavar="TYPE")
@click.argument("entity_id", metavar="ID")
@db_option()
def undismiss_command(entity_type, entity_id, db):
    """Take a dismissal back: the candidate shows in the review queue again."""
    store = open_store_or_fail(db)
    with store:
        removed = _write(lambda: store.undismiss(entity_type, entity_id))
    if removed:
        echo_wrapped(f"undismissed {entity_type} {entity_id}")
    else:
        echo_wrapped(f"{entity_type} {entity_id} was not dismissed: nothing to undo")


EXTRA_COMMANDS = (undismiss_command,)
