"""``hisgw conformance list`` and ``hisgw conformance run``: the tester's commands (docs/conformance.md).

::

    hisgw conformance list
    hisgw conformance run --suite NAME --target URL|HOST:PORT|PATH [auth options] [--capability X ...]
                          [--param NAME=VALUE ...] [--observe COMMAND] [--only TEST ...] [--report-dir DIR]

Prints one line per test and a one-line summary; exit 0 when nothing failed (skips are not failures),
1 when a test failed or could not be carried out, 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

conformance_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Conformance suites: prove an endpoint keeps the gateway's contracts.",
)


@conformance_app.command("list")
def list_() -> None:
    """The suites, their role and what a target is."""
    from conformance.runner import suites

    for s in suites().values():
        typer.echo(f"{s.name:18} {s.role:28} --target {s.target:16} {s.title}")


@conformance_app.command("run")
def run(
    suite: Annotated[str, typer.Option("--suite", help="suite name (hisgw conformance list)")],
    target: Annotated[
        str, typer.Option("--target", help="FHIR base URL, MLLP HOST:PORT, a file or a folder")
    ],
    token_url: Annotated[
        str | None, typer.Option("--token-url", help="SMART token endpoint (default: discovered)")
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="SMART Backend Services client id")
    ] = None,
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="the client's private key (PEM)")
    ] = None,
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="kid (default: <client>.jwks.json beside the key)")
    ] = None,
    alg: Annotated[str | None, typer.Option("--alg", help="ES384 or RS384 (default: from the key)")] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help="scope to ask for (default system/*.cruds)")
    ] = None,
    client2_id: Annotated[
        str | None, typer.Option("--client2-id", help="a client of another organisation")
    ] = None,
    private_key2: Annotated[
        Path | None, typer.Option("--private-key2", help="the second client's key (PEM)")
    ] = None,
    bearer: Annotated[str | None, typer.Option("--bearer", help="a ready access token instead")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", help="declare a capability")] = None,
    assume_all: Annotated[bool, typer.Option("--assume-all", help="run every test, declared or not")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", help="NAME=VALUE for the suite")] = None,
    observe: Annotated[
        str | None, typer.Option("--observe", help="how to count what the endpoint stored")
    ] = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="only tests whose id matches (glob)")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="write JUnit, TestReport, HTML here")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per request")] = 30.0,
) -> None:
    """Run one suite against one target."""
    from conformance.runner import RunOptions, UsageError, write_reports
    from conformance.runner import run as run_suite

    params = {}
    for p in param or []:
        if "=" not in p:
            typer.echo(f"usage error: CONF-001 --param {p!r} is not NAME=VALUE", err=True)
            raise typer.Exit(2)
        k, v = p.split("=", 1)
        params[k] = v
    options = RunOptions(
        target,
        token_url,
        client_id,
        private_key,
        key_id,
        alg,
        scope,
        client2_id,
        private_key2,
        bearer,
        list(capability or []),
        assume_all,
        params,
        observe,
        list(only or []),
        timeout,
    )
    try:
        result = run_suite(suite, options)
    except UsageError as exc:
        typer.echo(f"usage error: {exc}", err=True)
        raise typer.Exit(2) from None
    for t in result.tests:
        tail = f"  ({t.reason})" if t.reason else ""
        typer.echo(f"{t.verdict.value.upper():5} {t.id}{tail}")
    for n in result.notes:
        typer.echo(f"note: {n}")
    if report_dir is not None:
        paths = write_reports(result, report_dir)
        typer.echo("reports: " + ", ".join(str(p) for p in paths.values()))
    typer.echo(result.summary_line())
    raise typer.Exit(1 if result.failed else 0)


def register(app: typer.Typer) -> None:
    """Add ``hisgw conformance ...`` to the ``hisgw`` command line (gateway/cli.py)."""
    app.add_typer(conformance_app, name="conformance")
