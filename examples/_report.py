"""Print ``memobs stats`` and ``memobs review`` for a memobs file (shared by the examples).

The same as running ``memobs stats --db FILE`` and ``memobs review --db FILE``
in a shell; here the CLI runs in-process.
"""

from __future__ import annotations


def show(db_path: str) -> None:
    from memobs_otel.cli import main

    for command in ("stats", "review"):
        print(f"\n$ memobs {command} --db {db_path}", flush=True)
        try:
            main([command, "--db", db_path], standalone_mode=False)
        except SystemExit as exc:
            if exc.code:
                raise
