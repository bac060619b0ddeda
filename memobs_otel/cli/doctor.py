"""``memobs doctor``: check the tokenizer, the database, the OTLP endpoint and plugins.

    memobs doctor
    memobs doctor --db agent.db --otlp-endpoint http://localhost:4318
    memobs doctor --json

One line per check (``ok`` or ``FAIL``), with details and a hint under a
failing one. Exit status 0 when every check passed, 1 when any failed (they
are listed at the end), 2 for bad input (an unknown ``--otlp-protocol``, a
bad ``--timeout``). The database is only read, never created or changed.
"""

from __future__ import annotations


import click

from ..doctor import DEFAULT_TIMEOUT_S, run_checks
from ..pipeline import OTLP_PROTOCOLS
from .common import db_option, echo_json, fail, positive_number

EXIT_CHECK_FAILED = 1
NAME_WIDTH = 10


def _protocol(ctx, param, value):
    if value is None:
        return value
    normalized = value.strip().lower()
    if normalized not in OTLP_PROTOCOLS:
        fail(f"--otlp-protocol must be one of {', '.join(OTLP_PROTOCOLS)}, got {value!r}")
    return normalized


@click.command("doctor")
@db_option()
@click.option("--otlp-endpoint", default=None, metavar="URL",
              help="OTLP endpoint to check (default: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT).")
@click.option("--otlp-protocol", default=None, metavar="PROTOCOL", callback=_protocol,
              help="http/protobuf or grpc (default: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else http/protobuf).")
@click.option("--encoding", default=None, metavar="NAME",
              help="tiktoken encoding to check (default: MEMOBS_TOKEN_ENCODING, else cl100k_base).")
@click.option("--timeout", default=str(DEFAULT_TIMEOUT_S), metavar="SECONDS",
              callback=positive_number("--timeout", "a number of seconds"), show_default=True, help="How long to wait for the OTLP endpoint's TCP connect.")
@click.option("--json", "as_json", is_flag=True, help="Machine output: the checks as JSON.")
def command(db: str, otlp_endpoint: str | None, otlp_protocol: str | None, encoding: str | None,
            timeout: float, as_json: bool) -> None:
    """Check the tokenizer, the database, the OTLP endpoint and the plugins."""
    checks = run_checks(db, encoding=encoding, otlp_endpoint=otlp_endpoint,
                        otlp_protocol=otlp_protocol, timeout=timeout)
    failed = [c.name for c in checks if not c.ok]
    if as_json:
        echo_json({"ok": not failed, "failed": failed, "checks": [c.to_dict() for c in checks]})
    else:
        for check in checks:
            click.echo(f"{'ok' if check.ok else 'FAIL':<5} {check.name:<{NAME_WIDTH}} {check.summary}")
            for line in check.details:
                click.echo(f"{'':<5} {'':<{NAME_WIDTH}} {line}")
            if check.hint and not check.ok:
                click.echo(f"{'':<5} {'':<{NAME_WIDTH}} hint: {check.hint}")
        if failed:
            click.echo(f"{len(failed)} check{'s' if len(failed) != 1 else ''} failed: {', '.join(failed)}")
        else:
            click.echo(f"all {len(checks)} checks passed")
    if failed:
        raise SystemExit(EXIT_CHECK_FAILED)
