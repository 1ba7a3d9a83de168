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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import typer

from mappings.problems import GatewayError, InputError, Problem, ProblemSink, Severity

if TYPE_CHECKING:
    from mappings.model import Dossier

# ``hisgw --help`` and ``--version`` import no more than this module, typer and mappings.problems: the
# formats, the summary rules and the service stack are imported by the command that uses them
# (docs/performance.md, "Command-line start"). Help is plain click text: rich's renderer alone costs more
# than the whole start budget.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="his-gateway: convert, validate and summarise GP dossiers; run the gateway.",
)

EXIT_INVALID = 1
EXIT_USAGE = 2


def _usage(message: str) -> typer.Exit:
    typer.echo(f"usage error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"hisgw {version('his-gateway')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("hisgw (version unknown: his-gateway is not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """his-gateway: convert, validate and summarise GP dossiers; run the gateway."""


def get_format(name: str):
    """The format registered as ``name`` (imported here, not at start: ``hisgw --help`` stays fast)."""
    from adapters.base import get_format as registered

    return registered(name)


def _check_format(name: str, option: str) -> str:
    """``name`` if it is a format that can be used; else a usage error listing the formats there are.
    Only the named format's module is imported (listing every format imports all of them)."""
    try:
        get_format(name)
    except (KeyError, ModuleNotFoundError):
        from adapters.base import format_names

        names = format_names()
        raise _usage(f"{option} {name!r} is not a known format; choose one of: {', '.join(names)}") from None
    return name


def _print_problems(problems: Iterable[Problem], verbose: bool = False) -> None:
    """One line per problem on standard error. Information (nothing wrong with the input, e.g. the
    envelope of a professional summary, ``PS-091``) is one line per code unless ``verbose``."""
    seen: set[Problem] = set()
    notes: dict[str, list[Problem]] = {}
    for p in problems:
        if p not in seen:
            seen.add(p)
            if p.severity is Severity.INFORMATION and not verbose:
                notes.setdefault(p.code, []).append(p)
            else:
                typer.echo(p.render_line(), err=True)
    for same in notes.values():
        more = f", and {len(same) - 1} more like it (--verbose lists them)" if len(same) > 1 else ""
        typer.echo(same[0].render_line() + more, err=True)


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


def _run(sink: ProblemSink, body, verbose: bool = False) -> None:
    try:
        body()
    except InputError as exc:
        _print_problems([*sink.problems, *exc.problems], verbose)
        raise typer.Exit(EXIT_INVALID) from None
    except _Failed:
        _print_problems(sink.problems, verbose)
        raise typer.Exit(EXIT_INVALID) from None
    _print_problems(sink.problems, verbose)  # warnings and information only
    if sink.has_errors:
        raise typer.Exit(EXIT_INVALID)


FromOpt = typer.Option(..., "--from", help="input format")
ToOpt = typer.Option(..., "--to", help="output format")
OutOpt = typer.Option(None, "-o", "--output", help="output file; '-' or absent: standard output")
StrictOpt = typer.Option(False, "--strict", help="stop at the first error (default: report them all)")
VerboseOpt = typer.Option(
    False, "--verbose", help="list every information line (e.g. each envelope element not read)"
)


def _message_pair(src, dst, from_: str, to: str) -> tuple:
    """Formats of messages rather than dossiers (``hl7v2``) list the conversions they make in
    ``message_pairs`` ((from, to) -> (reader, writer)); any other pairing with them is a usage error."""
    for fmt in (src, dst):
        pairs = getattr(fmt, "message_pairs", None)
        if pairs is not None:
            if (from_, to) not in pairs:
                made = ", ".join(f"--from {a} --to {b}" for a, b in pairs)
                raise _usage(f"{fmt.name} holds messages, not dossiers; it converts {made}")
            return pairs[(from_, to)]
    return src, dst


@app.command()
def convert(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    to: str = ToOpt,
    output: str | None = OutOpt,
    strict: bool = StrictOpt,
    verbose: bool = VerboseOpt,
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

    _run(sink, body, verbose)


@app.command()
def validate(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    strict: bool = StrictOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Check INPUT and print every problem, one line each; exit 1 if any is an error."""
    src = get_format(_check_format(from_, "--from"))
    sink = ProblemSink(strict=strict)
    n = 0

    def body() -> None:
        nonlocal n
        with _open_input(input) as (stream, name):
            for _ in _progress(src.iter_read(stream, source=name, sink=sink), "validating"):
                n += 1

    _run(sink, body, verbose)  # exits 1 on an error
    warnings = sum(p.severity is Severity.WARNING for p in sink.problems)
    typer.echo(f"ok: {n} dossier(s), {warnings} warning(s)", err=True)


@app.command()
def summary(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    to: str = ToOpt,
    output: str | None = OutOpt,
    as_of: str | None = typer.Option(None, "--as-of", help="reference date YYYY-MM-DD (default: today)"),
    episode: list[str] = typer.Option([], "--episode", help="narrow to this episode id (repeatable)"),
    strict: bool = StrictOpt,
    verbose: bool = VerboseOpt,
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

    made = 0

    def body() -> None:
        nonlocal made
        with _open_input(input) as (stream, name), _atomic_output(output) as out:
            dossiers = _guarded(sink, src.iter_read(stream, source=name, sink=sink))

            def summaries() -> Iterator[Dossier]:
                nonlocal made
                for d in dossiers:
                    yield build_summary(d, as_of=ref, episode_ids=episode or None, sink=sink, source=name)
                    made += 1

            if to == "fhir":
                from mappings.fhir.document import write_summary_documents

                write_summary_documents(summaries(), out, as_of=ref)
            else:
                get_format(to).write_many(summaries(), out)

    _run(sink, body, verbose)
    where = "standard output" if output in (None, "-") else output
    typer.echo(f"ok: {made} summary(ies) as of {ref.isoformat()} written to {where} as {to}", err=True)


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


def _plain_text_parameters() -> None:
    """Text options pass through as click parsed them, without a pydantic ``TypeAdapter``.

    typer 0.2x coerces every non-flag parameter with pydantic, and importing pydantic takes longer than
    the whole budget of a one-dossier ``convert`` (300 ms, ``bench/bench_cli_start.py``). A ``str`` or a
    flag's ``bool`` is already what click gives, a ``list[str]`` the tuple it gives as a list; every other
    annotation keeps typer's coercion. The hook is typer's private ``core.build_runtime_param``: when a
    typer release moves it, nothing is patched, and
    ``tests/test_cli.py::test_help_imports_no_service_stack_and_convert_no_pydantic`` says so.
    """
    try:
        from typer import core
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - another typer layout: its own coercion, slower start
        return
    found = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "_plain_text", False):
        return
    original: Callable[[Any], Any] = found
    text_types: tuple[Any, ...] = (str, str | None, list[str], bool)

    class PlainText(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is bool and not isinstance(value, bool):  # not a flag: typer's way
                return original(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)
            return list(value) if isinstance(value, tuple) else value

    def build(descriptor: Any) -> Any:
        if descriptor.file_annotation is None and descriptor.annotation in text_types:
            return PlainText(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        return original(descriptor)

    build._plain_text = True  # type: ignore[attr-defined]
    core.build_runtime_param = build


CORE = frozenset({"convert", "validate", "summary", "--version"})
"""What this module defines: running one of these needs none of the extensions' commands built."""


def main() -> None:
    """Entry point of ``hisgw``."""
    _plain_text_parameters()
    if not (len(sys.argv) > 1 and sys.argv[1] in CORE):  # help, or another part's command
        _register_extensions()
    for group in app.registered_groups:  # sub-commands' help plain too (see ``app``)
        if group.typer_instance is not None:
            group.typer_instance.rich_markup_mode = None
    try:
        app(standalone_mode=True)
    except InputError as exc:  # pragma: no cover - every command handles its own
        _print_problems(exc.problems)
        sys.exit(EXIT_INVALID)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "Severity"]
