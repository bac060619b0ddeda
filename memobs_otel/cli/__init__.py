"""The ``memobs`` command line: a thin layer over the public query API.

Each command lives in its own module of this package and exposes a click
command named ``command``; ``COMMAND_MODULES`` lists them in help order.
Errors are one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib

import click

COMMAND_MODULES = ("demo", "stats", "review", "dismiss", "budget", "purge", "ingest", "report",
                   "doctor", "clickhouse_schema")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="memobs_otel")
def main() -> None:
    """Memory observability for AI agents: stats and review queue from memobs traces."""


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        qualified = f"{__name__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:  # command not written yet
                continue
            raise
        main.add_command(module.command)
        for extra in getattr(module, "EXTRA_COMMANDS", ()):  # e.g. undismiss beside dismiss
            main.add_command(extra)


_register_commands()
