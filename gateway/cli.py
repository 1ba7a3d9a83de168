"""The ``hisgw`` command line. Outside scripts rely on this contract: extend it, never break it.

::

    hisgw convert INPUT --from FORMAT --to FORMAT [-o OUTPUT] [--strict]
    hisgw validate INPUT --from FORMAT [--strict]
    hisgw summary INPUT --from FORMAT [--as-of YYYY-MM-DD] [--episode ID ...] --to FORMAT [-o OUTPUT]
    hisgw formats [--writes] [--export] [--dossiers] [--names]

FORMAT is the name of a registered format (:mod:`formats`, ``formats/registry.py``; ``hisgw formats`` and
``hisgw convert --help`` list them); ``--to`` takes only those that are written (a read-only one is a usage
error, exit 2).
``-o -`` or no ``-o`` writes to standard output.

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

import formats
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


def _check_format(name: str, option: str) -> formats.Format:
    """The registered format ``name``; a usage error (exit 2) naming the choices when it is unknown, or
    when it is read only and ``option`` is ``--to``."""
    try:
        fmt = formats.get(name)
    except formats.UnknownFormat:
        raise _usage(
            f"{option} {name!r} is not a known format; choose one of: {', '.join(formats.names())}"
        ) from None
    if option == "--to" and not fmt.writes:
        writable = ", ".join(f.name for f in formats.writable())
        raise _usage(f"--to {name!r} is read only; the formats written are: {writable}")
    return fmt


def _codec(name: str, option: str):
    return _check_format(name, option).codec()


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


FromOpt = typer.Option(..., "--from", help="input format: " + ", ".join(formats.names()))
ToOpt = typer.Option(..., "--to", help="output format: " + ", ".join(f.name for f in formats.writable()))
OutOpt = typer.Option(None, "-o", "--output", help="output file; '-' or absent: standard output")
StrictOpt = typer.Option(False, "--strict", help="stop at the first error (default: report them all)")
VerboseOpt = typer.Option(
    False, "--verbose", help="list every information line (e.g. each envelope element not read)"
)


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


def _formats_help(lead: str) -> str:
    """``lead`` and one line per registered format (``--help`` of the commands that take formats)."""
    lines = [f"{f.name}: {f.title}" for f in formats.all_formats()]
    return lead + "\n\n\b\nFormats:\n" + "\n".join(lines)


@app.command(help=_formats_help("Convert INPUT from one format to another."))
def convert(
    input: str = typer.Argument(..., help="input file, or '-' for standard input"),
    from_: str = FromOpt,
    to: str = ToOpt,
    output: str | None = OutOpt,
    strict: bool = StrictOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Convert INPUT from one format to another (the formats: ``hisgw convert --help``)."""
    src, dst = _codec(from_, "--from"), _codec(to, "--to")
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
    src = _codec(from_, "--from")
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
    for fmt in (_check_format(from_, "--from"), _check_format(to, "--to")):
        if fmt.holds != "dossiers":
            raise _usage(f"{fmt.name} holds messages, not dossiers: there is no summary of it")
    src, dst = formats.get(from_).codec(), formats.get(to).codec()
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

            def summaries() -> Iterator[tuple[Dossier, Dossier]]:
                """Each summary with the dossier it was selected from (the document says what shielding
                left out, and whether older prescriptions exist)."""
                nonlocal made
                for d in dossiers:
                    yield build_summary(d, as_of=ref, episode_ids=episode or None, sink=sink, source=name), d
                    made += 1

            write_summaries = getattr(dst, "write_summaries", None)  # a summary form of its own (FHIR)
            if write_summaries is not None:
                write_summaries(summaries(), out, as_of=ref)
            else:
                dst.write_many((s for s, _ in summaries()), out)

    _run(sink, body, verbose)
    where = "standard output" if output in (None, "-") else output
    typer.echo(f"ok: {made} summary(ies) as of {ref.isoformat()} written to {where} as {to}", err=True)


@app.command("formats")
def list_formats(
    writes: bool = typer.Option(False, "--writes", help="only the formats written (--to)"),
    export: bool = typer.Option(False, "--export", help="only the HIS export dialects"),
    dossiers: bool = typer.Option(False, "--dossiers", help="only formats of dossiers (not of messages)"),
    names: bool = typer.Option(False, "--names", help="names only, one a line (for scripts)"),
) -> None:
    """List the formats: name, read/write, media type, file extension, postbox form, what it is."""
    chosen = [
        f
        for f in formats.all_formats()
        if (f.writes or not writes) and (f.export or not export) and (f.holds == "dossiers" or not dossiers)
    ]
    if names:
        typer.echo("\n".join(f.name for f in chosen))
        return
    for f in chosen:
        postbox = "-"
        if f.postbox is not None:
            postbox = ", ".join(
                ([f"drop {f.extension}"] if f.postbox.drop else [])
                + ([f"channel {f.postbox.channel}"] if f.postbox.channel else [])
            )
        typer.echo(
            f"{f.name:<16} {'read/write' if f.writes else 'read only':<10} {f.media_type:<34} "
            f"{f.extension:<7} {postbox:<24} {f.title}"
        )


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
