"""The ``hisgw`` command line. Outside scripts rely on this contract: extend it, never break it.

::

    hisgw convert INPUT --from FORMAT --to FORMAT [-o OUTPUT] [--strict]
    hisgw validate INPUT --from FORMAT [--strict]
    hisgw summary INPUT --from FORMAT [--as-of YYYY-MM-DD] [--episode ID ...] --to FORMAT [-o OUTPUT]

FORMAT is one of ``canonical``, ``medicom``, ``microhis``, ``omnihis``, ``omnihis-ndjson``, ``ps-hl7v3``
(and ``fhir``, ``hl7v2`` where installed). ``-o -`` or no ``-o`` writes to standard output.

Exit codes: 0 success (warnings may be printed), 1 invalid input (one line per problem on standard
error), 2 usage error. Never a traceback for bad input. Output is written only when the whole input was
valid: to a temporary file that is renamed into place (or copied to standard output) at the end, so a
failed run leaves nothing half-written. A progress bar goes to standard error when it is a terminal.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import typer

from adapters.base import format_names, get_format
from mappings.model import Dossier
from mappings.problems import GatewayError, InputError, Problem, ProblemSink, Severity

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="his-gateway: convert, validate and summarise GP dossiers; run the gateway.",
)

EXIT_INVALID = 1
EXIT_USAGE = 2


def _usage(message: str) -> typer.Exit:
    typer.echo(f"usage error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _check_format(name: str, option: str) -> str:
    names = format_names()
    if name not in names:
        raise _usage(f"{option} {name!r} is not a known format; choose one of: {', '.join(names)}")
    return name


def _print_problems(problems: Iterable[Problem]) -> None:
    seen: set[Problem] = set()
    for p in problems:
        if p not in seen:
            seen.add(p)
            typer.echo(p.render_line(), err=True)


@contextmanager
def _open_input(path: str) -> Iterator[tuple[BinaryIO, str]]:
    if path == "-":
        yield sys.stdin.buffer, "<stdin>"
        return
    p = Path(path)
    if not p.is_file():
        raise _usage(f"input file {path!r} does not exist")
    with p.open("rb") as fh:
        yield fh, p.name


@contextmanager
def _atomic_output(path: str | None) -> Iterator[BinaryIO]:
    """Spool output; publish it only if the block finishes without an exception."""
    if path in (None, "-"):
        with tempfile.TemporaryFile() as tmp:
            yield tmp
            tmp.seek(0)
            shutil.copyfileobj(tmp, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmpname, 0o666 & ~umask)  # mkstemp makes 0600; output is an ordinary file
        os.replace(tmpname, target)
    finally:
        if os.path.exists(tmpname):
            os.unlink(tmpname)


def _progress(items: Iterable[Dossier], label: str) -> Iterator[Dossier]:
    if not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} dossiers"),
        TimeElapsedColumn(),
        transient=True,
        console=None,
    ) as bar:
        task = bar.add_task(label, total=None)
        for d in items:
            yield d
            bar.advance(task)


class _Failed(GatewayError):
    """The input had errors (printed already): the command ends with exit 1."""


def _guarded(sink: ProblemSink, items: Iterable[Dossier]) -> Iterator[Dossier]:
    """Stop the stream as soon as the input has an error (lenient adapters go on collecting)."""
    yield from items
    if sink.has_errors:
        raise _Failed()


def _run(sink: ProblemSink, body) -> None:
    try:
        body()
    except InputError as exc:
        _print_problems([*sink.problems, *exc.problems])
        raise typer.Exit(EXIT_INVALID) from None
    except _Failed:
        _print_problems(sink.problems)
        raise typer.Exit(EXIT_INVALID) from None
    _print_problems(sink.problems)  # warnings only
    if sink.has_errors:
        raise typer.Exit(EXIT_INVALID)


FromOpt = typer.Option(..., "--from", help="input format")
ToOpt = typer.Option(..., "--to", help="output format")
OutOpt = typer.Option(None, "-o", "--output", help="output file; '-' or absent: standard output")
StrictOpt = typer.Option(False, "--strict", help="stop at the first error (default: report them all)")


def _message_pair(src, dst, from_: str, to: str) -> tuple:
    """Formats of messages rather than dossiers (``hl7v2``, ``edifact-...``) list the conversions they make
    in ``message_pairs`` ((from, to) -> (reader, writer)); any other pairing with them is a usage error."""
    holders = [f for f in (src, dst) if getattr(f, "message_pairs", None) is not None]
    for fmt in holders:
        if (from_, to) in fmt.message_pairs:
            return fmt.message_pairs[(from_, to)]
    if holders:
        fmt = holders[0]
        made = ", ".join(f"--from {a} --to {b}" for a, b in fmt.message_pairs)
        raise _usage(f"{fmt.name} holds messages, not dossiers; it converts {made}")
    return src, dst


@app.command()
def convert(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    to: str = ToOpt,
    output: str | None = OutOpt,
    strict: bool = StrictOpt,
) -> None:
    """Convert INPUT from one format to another."""
    src, dst = get_format(_check_format(from_, "--from")), get_format(_check_format(to, "--to"))
    src, dst = _message_pair(src, dst, from_, to)
    sink = ProblemSink(strict=strict)

    def body() -> None:
        with _open_input(input) as (stream, name), _atomic_output(output) as out:
            dst.write_many(
                _guarded(sink, _progress(src.iter_read(stream, source=name, sink=sink), "converting")), out
            )

    _run(sink, body)


@app.command()
def validate(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    strict: bool = StrictOpt,
) -> None:
    """Check INPUT and print every problem, one line each; exit 1 if any is an error."""
    src = get_format(_check_format(from_, "--from"))
    sink = ProblemSink(strict=strict)

    def body() -> None:
        with _open_input(input) as (stream, name):
            n = 0
            for _ in _progress(src.iter_read(stream, source=name, sink=sink), "validating"):
                n += 1
        if not sink.has_errors:
            typer.echo(f"ok: {n} dossier(s), {len(sink.problems)} warning(s)", err=True)

    _run(sink, body)


@app.command()
def summary(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    to: str = ToOpt,
    output: str | None = OutOpt,
    as_of: str | None = typer.Option(None, "--as-of", help="reference date YYYY-MM-DD (default: today)"),
    episode: list[str] = typer.Option([], "--episode", help="narrow to this episode id (repeatable)"),
    strict: bool = StrictOpt,
) -> None:
    """Build the NHG professional summary of each dossier in INPUT and write it in format --to."""
    src = get_format(_check_format(from_, "--from"))
    _check_format(to, "--to")
    for name in (from_, to):
        if getattr(get_format(name), "message_pairs", None) is not None:
            raise _usage(f"{name} holds messages, not dossiers: there is no summary of it")
    try:
        ref = dt.date.fromisoformat(as_of) if as_of else dt.date.today()
    except ValueError:
        raise _usage(f"--as-of {as_of!r} is not a date YYYY-MM-DD") from None
    sink = ProblemSink(strict=strict)
    from mappings.summary import build_summary

    def body() -> None:
        with _open_input(input) as (stream, name), _atomic_output(output) as out:
            dossiers = _guarded(sink, src.iter_read(stream, source=name, sink=sink))
            summaries = (
                build_summary(d, as_of=ref, episode_ids=episode or None, sink=sink, source=name)
                for d in dossiers
            )
            if to == "fhir":
                from mappings.fhir.document import write_summary_documents

                write_summary_documents(summaries, out, as_of=ref)
            else:
                get_format(to).write_many(summaries, out)

    _run(sink, body)


def _register_extensions() -> None:
    """Later parts of the product add their commands here (serve, worker, outbox, conformance ...)."""
    import importlib
    import importlib.util

    for mod in ("gateway.cli_service", "gateway.consult.cli", "gateway.outbox.cli", "conformance.cli"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:  # its package is not installed
            found = False
        if found:
            importlib.import_module(mod).register(app)


def main() -> None:
    """Entry point of ``hisgw``."""
    _register_extensions()
    try:
        app(standalone_mode=True)
    except InputError as exc:  # pragma: no cover - every command handles its own
        _print_problems(exc.problems)
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "Severity"]
