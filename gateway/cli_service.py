"""``hisgw serve`` and ``hisgw audit verify``: the gateway service commands (issue 5).

::

    hisgw serve [--demo] [--host H] [--port N] [--mllp-port N] [--db URL] [--base-url URL]
                [--clients FILE] [--metrics-port N] [--ssl-certfile F --ssl-keyfile F [--ssl-ca-certs F
                --require-client-cert]]
    hisgw audit verify [--db URL]

``serve`` migrates the database, then runs the FHIR API (uvicorn), the Prometheus listener (loopback) and,
where ``gateway.mllp`` offers one, the MLLP listener, in one process. Settings come from ``HISGW_*``
(``gateway/settings.py``); options override them. ``audit verify`` exits 0 when the chain holds and 1
with the first broken record otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from mappings.problems import InputError

log = logging.getLogger("hisgw.serve")


def _load_registry(path: Path):
    """The validated clients file, or exit 2 listing every problem."""
    from gateway.clients import Registry

    try:
        return Registry.load(path)
    except InputError as exc:
        for p in exc.problems:
            typer.echo(p.render_line(), err=True)
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _mllp_available() -> bool:
    """Whether the MLLP listener (``gateway.mllp``, issue "HL7 v2") is installed."""
    try:
        return importlib.util.find_spec("gateway.mllp.server") is not None
    except ImportError:
        return False


async def _run_mllp(host: str, port: int, db_url: str) -> None:
    """The MLLP listener beside the API, on the same database; it stops with the API."""
    import asyncio

    from gateway.audit import mllp_receipts
    from gateway.db import normalise_url
    from gateway.mllp import MessageStore, MllpServer

    try:
        # each receipt audited (NEN 7513), one chain append per group commit
        store = MessageStore(normalise_url(db_url), on_receipts=mllp_receipts)
        server = MllpServer(store)
        bound = await server.start(host, port)
    except Exception as exc:  # noqa: BLE001 - port taken, store broken: the API still serves; say so loudly
        log.error("MLLP listener not started", extra={"port": port, "error": type(exc).__name__})
        await asyncio.Event().wait()
        return
    log.info("MLLP listening", extra={"host": bound[0], "port": bound[1]})
    try:
        await server.serve_forever()
    finally:
        await server.close()
        store.close()


async def _run_servers(servers: list, extra: list) -> None:
    """Run uvicorn servers and other coroutines together; when one ends, stop them all."""
    import asyncio

    server_tasks = [asyncio.create_task(s.serve()) for s in servers]
    extra_tasks = [asyncio.create_task(c) for c in extra]
    await asyncio.wait(server_tasks + extra_tasks, return_when=asyncio.FIRST_COMPLETED)
    for s in servers:
        s.should_exit = True
    for t in extra_tasks:
        t.cancel()
    for outcome in await asyncio.gather(*server_tasks, *extra_tasks, return_exceptions=True):
        if isinstance(outcome, Exception) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome


def _start_metrics(settings, registry):
    """The Prometheus ``/metrics`` listener (``HISGW_METRICS_PORT``, default 9464; ``--metrics-port 0``: off)
    on a thread of its own, or None. A port that is taken costs the metrics, not the gateway: one warning
    says so and how to choose another port."""
    if not settings.metrics_port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(settings.metrics_port, settings.metrics_host, registry)
    except OSError as exc:
        log.warning(
            "metrics listener not started (port taken?); choose one with --metrics-port N or "
            "HISGW_METRICS_PORT, 0 turns it off",
            extra={"host": settings.metrics_host, "port": settings.metrics_port, "error": str(exc)},
        )
        return None
    log.info("metrics listening", extra={"host": settings.metrics_host, "port": settings.metrics_port})
    return server


DEMO = typer.Option(False, "--demo", help="demo practices, hospitals, patient and clients")
HOST = typer.Option("127.0.0.1", "--host")
PORT = typer.Option(8080, "--port")
MLLP_PORT = typer.Option(2575, "--mllp-port", help="MLLP listener port (0: off)")
DB = typer.Option(None, "--db", help="database URL (default: HISGW_DB_URL or sqlite:///./var/hisgw.db)")
BASE_URL = typer.Option(None, "--base-url", help="public base URL (token audience)")
CLIENTS = typer.Option(None, "--clients", help="clients file (TOML)")
METRICS_PORT = typer.Option(None, "--metrics-port", help="Prometheus port on the metrics host (0: off)")
SSL_CERTFILE = typer.Option(None, "--ssl-certfile", help="TLS certificate (PEM)")
SSL_KEYFILE = typer.Option(None, "--ssl-keyfile", help="TLS private key (PEM)")
SSL_CA_CERTS = typer.Option(None, "--ssl-ca-certs", help="CA bundle client certificates must chain to")
REQUIRE_CLIENT_CERT = typer.Option(
    False, "--require-client-cert", help="mutual TLS: require a client certificate"
)
AUDIT_DB = typer.Option(None, "--db", help="database URL")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``audit`` to the ``hisgw`` command line."""
    audit_app = typer.Typer(help="The NEN 7513 audit log.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @app.command()
    def serve(
        demo: bool = DEMO,
        host: str = HOST,
        port: int = PORT,
        mllp_port: int = MLLP_PORT,
        db: str | None = DB,
        base_url: str | None = BASE_URL,
        clients: Path | None = CLIENTS,
        metrics_port: int | None = METRICS_PORT,
        ssl_certfile: Path | None = SSL_CERTFILE,
        ssl_keyfile: Path | None = SSL_KEYFILE,
        ssl_ca_certs: Path | None = SSL_CA_CERTS,
        require_client_cert: bool = REQUIRE_CLIENT_CERT,
    ) -> None:
        """Run the gateway: FHIR R4 API, MLLP listener and metrics."""
        import uvicorn

        from gateway.api.app import create_app
        from gateway.auth.keys import load_or_create_signing_key
        from gateway.db import migrate, service_engine
        from gateway.obs import setup_logging
        from gateway.settings import load_settings

        try:
            settings = load_settings(
                db_url=db,
                clients_file=clients,
                metrics_port=metrics_port,
                ssl_certfile=ssl_certfile,
                ssl_keyfile=ssl_keyfile,
                ssl_ca_certs=ssl_ca_certs,
                ssl_require_client_cert=require_client_cert or None,
            )
        except ValueError as exc:
            raise _fail(f"invalid settings: {exc}") from None
        tls = settings.ssl_certfile is not None
        if settings.ssl_require_client_cert and not (tls and settings.ssl_ca_certs):
            raise _fail("--require-client-cert needs --ssl-certfile, --ssl-keyfile and --ssl-ca-certs")
        public = base_url or f"{'https' if tls else 'http'}://{host}:{port}"
        settings = settings.model_copy(update={"base_url": public})
        setup_logging(settings.log_level)
        demo_info: dict[str, str] = {}
        registry = None
        if (
            not demo or clients is not None
        ):  # a broken clients file stops the start before anything is written
            registry = _load_registry(settings.clients_file)
        engine, checkpointer = service_engine(settings.db_url)
        migrate(engine)
        if demo:
            from gateway import demo as demo_mod

            shared = demo_mod.shared_dir(settings.shared_dir)
            dossier = demo_mod.read_ps(shared)
            seeds = sorted((shared / "seeds").glob("000_*.txt"))
            hospitals = demo_mod.parse_directory(seeds[0].read_text("utf-8")) if seeds else {}
            keys_dir = Path("var/demo-clients")
            demo_clients = demo_mod.demo_clients(list(hospitals), dossier.practice if dossier else None)
            toml = demo_mod.write_clients(keys_dir, demo_clients)
            if clients is None:
                settings = settings.model_copy(update={"clients_file": toml})
            from gateway.store import Store

            demo_info = demo_mod.seed(
                engine,
                Store(settings.fhir_base),
                demo_clients,
                hospitals,
                dossier,
                seed_text=seeds[0].read_text("utf-8") if seeds else None,
            )
        if registry is None:
            registry = _load_registry(settings.clients_file)
        key = load_or_create_signing_key(settings.signing_key_file)
        api = create_app(settings, engine=engine, registry=registry, signing_key=key)
        from gateway.httpguard import hardened

        served, guard = hardened(api, settings)  # read timeouts, connections per client, rates (issue 14)
        ssl_opts: dict[str, Any] = {}
        if tls:
            ssl_opts = {"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}
            if settings.ssl_ca_certs:
                ssl_opts["ssl_ca_certs"] = str(settings.ssl_ca_certs)
            if settings.ssl_require_client_cert:
                import ssl

                ssl_opts["ssl_cert_reqs"] = ssl.CERT_REQUIRED
        servers = [
            uvicorn.Server(
                uvicorn.Config(
                    served,
                    host=host,
                    port=port,
                    log_config=None,
                    access_log=False,
                    server_header=False,
                    http=guard.protocol(),
                    backlog=2048,
                    **ssl_opts,
                )
            )
        ]
        metrics_server = _start_metrics(settings, api.state.gateway.metrics.registry)
        extra = []
        if mllp_port and _mllp_available():
            extra.append(_run_mllp(host, mllp_port, settings.db_url))
        routing_file = settings.outbox_routing_file  # issue 7: postbox delivery beside the API
        if routing_file is None and demo:
            from gateway.demo import PRACTICES
            from gateway.outbox.demo import demo_routing

            routing_file = demo_routing(Path("var/demo-postboxes"), [p[0] for p in PRACTICES])
        if routing_file is not None:
            from gateway.outbox.cli import load_routing_or_exit, serve_worker

            extra.append(
                serve_worker(engine, load_routing_or_exit(routing_file), api.state.gateway.metrics.registry)
            )
        if demo:
            _print_demo(settings, demo_info)
        log.info(
            "serving",
            extra={
                "base_url": settings.fhir_base,
                "db": settings.db_url.split(":", 1)[0],
                "metrics_port": settings.metrics_port if metrics_server else None,
                "mllp": bool(extra),
            },
        )
        import gc

        gc.collect()
        gc.freeze()  # the long-lived startup objects leave the collector's scans: shorter pauses under load
        import asyncio

        try:
            asyncio.run(_run_servers(servers, extra))
        finally:
            if metrics_server is not None:
                metrics_server.shutdown()
            api.state.gateway.request_log.flush()
            if checkpointer is not None:
                checkpointer.stop()
            engine.dispose()

    @audit_app.command("verify")
    def audit_verify(db: str | None = AUDIT_DB) -> None:
        """Recompute the audit log's hash chain; exit 1 and name the first broken record."""
        from gateway.audit import verify
        from gateway.db import make_engine
        from gateway.settings import load_settings

        settings = load_settings(db_url=db)
        try:
            engine = make_engine(settings.db_url, create=False)
        except FileNotFoundError as exc:
            raise _fail(f"cannot read the audit log: {exc}") from None
        try:
            result = verify(engine)
        except Exception as exc:  # noqa: BLE001 - no tables, no server: a clear line, exit 2
            raise _fail(
                f"cannot read the audit log: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from None
        finally:
            engine.dispose()
        if result.ok:
            typer.echo(f"ok: {result.records} audit records, hash chain intact")
            return
        if result.problem is not None:
            typer.echo(result.problem.render_line(), err=True)
        typer.echo(f"the chain holds for the first {result.records} records", err=True)
        raise typer.Exit(1)


def _print_demo(settings, info: dict[str, str]) -> None:
    base = settings.fhir_base
    lines = [
        "",
        f"his-gateway demo: FHIR R4 at {base} (CapabilityStatement: {base}/metadata)",
        "  clients, keys and clients.toml: var/demo-clients/ (private keys *.private.pem, chmod 600)",
        "    demo-praktijk-1        practice 1 (ES384), system/*.cruds",
        "    demo-praktijk-2        practice 2 (RS384), system/*.cruds",
        "    demo-audit-praktijk-1  practice 1, system/AuditEvent.read (the NEN 7513 log)",
        "    demo-ziekenhuis-1      the first hospital of the directory, system/*.cruds",
        "  first authenticated call (client assertion -> token -> search by BSN):",
        f"    uv run python scripts/first-call.py --base-url {base}"
        + (f" --bsn {info['bsn']}" if info.get("bsn") else ""),
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
