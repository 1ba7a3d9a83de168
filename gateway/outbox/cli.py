"""``hisgw worker`` and ``hisgw outbox list|retry|purge`` (registered by ``gateway/cli.py``; also
``python -m gateway.outbox ...``). See ``docs/postbox-delivery.md`` §7.

Exit codes: 0 success, 1 a problem with what was asked (unknown id, item not dead), 2 usage error
(bad routing file, no database).
"""

from __future__ import annotations

import json
import re
import signal
import threading
from pathlib import Path

import typer

DB = typer.Option(None, "--db", help="database URL (default: HISGW_DB_URL or sqlite:///./var/hisgw.db)")
ROUTING = typer.Option(None, "--routing", help="routing file (TOML; default: HISGW_OUTBOX_ROUTING_FILE)")
IDS = typer.Argument(None, help="item ids to requeue")
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd]?)$")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``12h``, ``7d`` -> seconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 12h or 7d")
    return float(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[found[2]]


def _engine(db: str | None, migrate_first: bool = True):
    from gateway.db import make_engine, migrate
    from gateway.settings import load_settings

    url = load_settings(db_url=db).db_url
    try:
        engine = make_engine(url, create=migrate_first)
    except FileNotFoundError as exc:
        raise _fail(f"usage error: {exc}") from None
    if migrate_first:
        migrate(engine)
    return engine


def load_routing_or_exit(routing: Path | None):
    from gateway.outbox.config import RoutingError, load_routing
    from gateway.settings import load_settings

    path = routing or load_settings().outbox_routing_file
    if path is None:
        raise _fail("usage error: no routing file: give --routing or set HISGW_OUTBOX_ROUTING_FILE")
    try:
        return load_routing(path)
    except RoutingError as exc:
        raise _fail(f"error {exc}") from None


def run_worker(engine, routing, stop: threading.Event, metrics_port: int = 0) -> None:
    from gateway.outbox.worker import Worker

    worker = Worker(engine, routing)
    typer.echo(f"worker {worker.owner} delivering for {len(worker.lanes)} practice(s)")
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1", registry=worker.metrics.registry)
    worker.run(stop)


def _drain(engine, routes) -> None:
    """``worker --drain``: deliver what is routed, then one line on standard error saying what happened."""
    from gateway.outbox.ops import counts
    from gateway.outbox.worker import Worker

    before = counts(engine)
    worker = Worker(engine, routes)
    worker.drain(timeout=3600)
    after = counts(engine)
    unrouted = sum(worker.unrouted().values())
    typer.echo(
        f"ok: outbox drained for {len(worker.lanes)} practice(s): "
        f"{after['delivered'] - before['delivered']} delivered, {after['dead'] - before['dead']} dead"
        + (f", {unrouted} waiting without a route (OUT-002)" if unrouted else ""),
        err=True,
    )


def register(app: typer.Typer) -> None:
    outbox_app = typer.Typer(help="The postbox delivery outbox.", no_args_is_help=True)
    app.add_typer(outbox_app, name="outbox")

    @app.command()
    def worker(
        db: str | None = DB,
        routing: Path | None = ROUTING,
        metrics_port: int = typer.Option(0, "--metrics-port", help="Prometheus port on 127.0.0.1 (0: off)"),
        drain: bool = typer.Option(
            False, "--drain", help="deliver until every routed item is delivered or dead, then stop"
        ),
    ) -> None:
        """Deliver outbox items to the practices' postboxes until stopped (SIGTERM, Ctrl-C)."""
        from gateway.obs import setup_logging

        setup_logging("INFO")
        routes = load_routing_or_exit(routing)
        engine = _engine(db)
        try:
            if drain:
                _drain(engine, routes)
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            run_worker(engine, routes, stop, metrics_port)
        finally:
            engine.dispose()

    @outbox_app.command("list")
    def list_(
        db: str | None = DB,
        state: str | None = typer.Option(None, "--state", help="queued|sending|delivered|retrying|dead"),
        practice: str | None = typer.Option(None, "--practice", help="the practice's AGB"),
        limit: int = typer.Option(100, "--limit"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    ) -> None:
        """List outbox items (no content: ids, states, attempts, errors)."""
        from gateway.outbox.ops import counts, list_items

        engine = _engine(db, migrate_first=False)
        try:
            try:
                items = list_items(engine, state=state, practice=practice, limit=limit)
            except ValueError as exc:
                raise _fail(f"usage error: {exc}") from None
            if as_json:
                for it in items:
                    typer.echo(json.dumps(it.as_dict()))
                return
            typer.echo(" ".join(f"{k}={v}" for k, v in counts(engine).items()))
            for it in items:
                typer.echo(
                    f"{it.id}\t{it.practice}\t{it.state}\t{it.attempts}\t{it.channel or '-'}\t"
                    f"{it.filing or '-'}\t{it.last_error or ''}"
                )
        finally:
            engine.dispose()

    @outbox_app.command("retry")
    def retry(
        ids: list[str] = IDS,
        db: str | None = DB,
        all_dead: bool = typer.Option(False, "--all-dead", help="requeue every dead item"),
    ) -> None:
        """Requeue dead items (after the cause is fixed); they keep their message id."""
        from gateway.outbox.ops import list_items, requeue

        engine = _engine(db, migrate_first=False)
        try:
            wanted = list(ids or [])
            if all_dead:
                wanted += [i.id for i in list_items(engine, state="dead", limit=1_000_000)]
            if not wanted:
                raise _fail("usage error: name item ids or give --all-dead")
            problems = requeue(engine, wanted)
            for p in problems:
                typer.echo(p, err=True)
            typer.echo(f"requeued {len(wanted) - len(problems)} item(s)")
            if problems:
                raise typer.Exit(1)
        finally:
            engine.dispose()

    @outbox_app.command("purge")
    def purge_(
        older_than: str = typer.Option(..., "--older-than", help="e.g. 7d, 12h"), db: str | None = DB
    ) -> None:
        """Remove delivered items older than the given age (content is pruned at delivery; audit kept)."""
        from gateway.outbox.ops import purge

        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise _fail(f"usage error: --older-than {exc}") from None
        engine = _engine(db, migrate_first=False)
        try:
            typer.echo(f"purged {purge(engine, seconds)} delivered item(s)")
        finally:
            engine.dispose()


async def serve_worker(engine, routing, registry=None) -> None:
    """The delivery worker inside ``hisgw serve`` (when ``HISGW_OUTBOX_ROUTING_FILE`` is set): its
    lanes run in
    threads beside the API; its metrics join the gateway's registry. Cancelled with the servers."""
    import asyncio
    import logging

    from gateway.outbox.metrics import OutboxMetrics
    from gateway.outbox.worker import Worker

    stop = threading.Event()
    worker = Worker(engine, routing, metrics=OutboxMetrics(registry) if registry is not None else None)
    logging.getLogger("hisgw.outbox").info("postbox delivery", extra={"practices": len(worker.lanes)})
    try:
        await asyncio.to_thread(worker.run, stop)
    finally:
        stop.set()
