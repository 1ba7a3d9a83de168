"""``hisgw declarations`` (the care group's quarterly declaration batch) and ``hisgw directory load`` (a
region's consult directory from a file); issue 6, DOMAIN.md §1, §2.

::

    hisgw declarations --quarter 2026Q3 [--db URL] [--out-dir DIR] [--as-of YYYY-MM-DDTHH:MM[:SS]+ZZ:ZZ]
    hisgw directory load FILE [--db URL]

Writes, per insurer, ``declarations-<quarter>-<uzovi>.csv`` and ``declarations-<quarter>-<uzovi>.json`` (a
FHIR Bundle of the ChargeItems) into ``--out-dir`` (default ``.``) and prints one line per insurer:
``<uzovi> <consults> consults <charge items> charge items EUR <total>``. Rules: ``gateway/consult/
declarations.py`` (a quarter is declared once it is over, the first run seals it, every run gives the same
files, no consult is in two quarters). ``--as-of`` sets "now" for a rehearsal on a copy of the database.
Exit 0 on success, 1 when the quarter cannot be declared (the problem on standard error), 2 usage errors.
The run is recorded in the audit log (NEN 7513: the ChargeItems leave the gateway).

``directory load`` checks the whole file first (``CON-070``, exit 1) and then writes it idempotently,
printing how many organisations, specialisms and specialists it holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

QUARTER = typer.Option(..., "--quarter", help="the quarter to declare, e.g. 2026Q3")
DB = typer.Option(None, "--db", help="database URL (default: HISGW_DB_URL or sqlite:///./var/hisgw.db)")
OUT_DIR = typer.Option(Path("."), "--out-dir", help="where the CSV and FHIR files go")
DIRECTORY_FILE = typer.Argument(..., help="the directory file (TOML; docs/consult.md §5a)")
AS_OF = typer.Option(None, "--as-of", help="the time of the run (ISO 8601 with offset; default: now)")


def register(app: typer.Typer) -> None:
    """Add ``declarations`` and ``directory load`` to the ``hisgw`` command line."""
    directory_app = typer.Typer(
        help="The consult directory: hospitals, specialisms, specialists.", no_args_is_help=True
    )
    app.add_typer(directory_app, name="directory")

    @directory_app.command("load")
    def directory_load(
        file: Path = DIRECTORY_FILE,
        db: str | None = DB,
    ) -> None:
        """Write the hospitals, specialisms and specialists of FILE into the gateway (idempotent)."""
        from gateway import audit
        from gateway.clients import URA_SYSTEM
        from gateway.consult.directory import load_config, parse_config
        from gateway.db import make_engine, migrate
        from gateway.settings import load_settings
        from gateway.store import Store
        from mappings.problems import InputError

        if not file.is_file():
            typer.echo(f"usage error: {file} does not exist", err=True)
            raise typer.Exit(2)
        try:
            hospitals = parse_config(file.read_text("utf-8"), str(file))
        except ValueError as exc:
            typer.echo(f"error CON-070 {exc}", err=True)
            raise typer.Exit(1) from None
        settings = load_settings(db_url=db)
        engine = make_engine(settings.db_url)

        def agent(ura: str, name: str) -> audit.Agent:
            return audit.Agent(
                audit.CLIENT_SYSTEM,
                "hisgw-directory",
                "hisgw directory load",
                f"ura:{ura}",
                {"system": URA_SYSTEM, "value": ura},
                name,
            )

        try:
            migrate(engine)
            counts = load_config(engine, Store(settings.fhir_base), hospitals, agent)
        except InputError as exc:
            for p in exc.problems:
                typer.echo(p.render_line(), err=True)
            raise typer.Exit(1) from None
        finally:
            engine.dispose()
        typer.echo(", ".join(f"{n} {k}" for k, n in counts.items()))

    @app.command()
    def declarations(
        quarter: str = QUARTER, db: str | None = DB, out_dir: Path = OUT_DIR, as_of: str | None = AS_OF
    ) -> None:
        """Declare every consult closed with a declaration in QUARTER, per insurer (CSV and FHIR Bundle)."""
        from gateway import audit
        from gateway.consult import declarations as decl
        from gateway.consult.calendar import load_config
        from gateway.db import make_engine, migrate
        from gateway.fhir.outcome import FhirError
        from gateway.settings import load_settings

        now = dt.datetime.now(dt.UTC)
        if as_of:
            try:
                now = dt.datetime.fromisoformat(as_of)
            except ValueError:
                now = None  # type: ignore[assignment]
            if now is None or now.tzinfo is None:
                typer.echo(f"usage error: --as-of {as_of!r} is not an ISO 8601 time with an offset", err=True)
                raise typer.Exit(2)
        try:
            decl.parse_quarter(quarter)
        except FhirError as exc:
            typer.echo(f"usage error: --quarter: {exc.message}", err=True)
            raise typer.Exit(2) from None
        settings = load_settings(db_url=db)
        engine = make_engine(settings.db_url)
        cfg = load_config()
        try:
            migrate(engine)
            with engine.begin() as conn:
                result = decl.declare(conn, quarter, now)
                entities = [f"ChargeItem/{c['id']}" for b in result.insurers.values() for c in b.charge_items]
                audit.record(
                    conn,
                    who=audit.Agent(audit.CLIENT_SYSTEM, "hisgw-declarations", "hisgw declarations", "*"),
                    action="E",
                    subtype="operation",
                    entities=entities or [f"declarations/{quarter}"],
                    patients=result.patients,
                )
        except FhirError as exc:
            typer.echo(f"error {exc.code} --quarter: {exc.message}", err=True)
            raise typer.Exit(1) from None
        finally:
            engine.dispose()
        out_dir.mkdir(parents=True, exist_ok=True)
        from mappings.fhir.common import dumps

        for uzovi, batch in result.insurers.items():
            stem = out_dir / f"declarations-{quarter}-{uzovi}"
            _write(stem.with_suffix(".csv"), decl.to_csv(quarter, batch, cfg.timezone).encode("utf-8"))
            _write(
                stem.with_suffix(".json"),
                dumps(decl.to_bundle(quarter, result.run_at, batch, settings.fhir_base)),
            )
            typer.echo(
                f"{uzovi} {batch.consults} consults {len(batch.charge_items)} charge items "
                f"EUR {batch.total:.2f}"
            )
        typer.echo(
            f"ok: {quarter} declares {len(result.consult_ids)} consult(s) "
            f"for {len(result.insurers)} insurer(s)",
            err=True,
        )


def _write(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    tmp.replace(path)
