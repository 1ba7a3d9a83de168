"""``python -m gateway.outbox worker|outbox ...``: the same commands as ``hisgw``, without the rest
of the CLI.
"""

from __future__ import annotations

import typer

from gateway.outbox.cli import register

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
