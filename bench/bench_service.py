"""Gateway service speed (issue 5, acceptance 7): loopback load, one run, against a bare FastAPI endpoint.

    uv run python -m bench.bench_service [--requests 20000] [--seconds 15] [--connections 32]

Starts two servers (uvicorn, one process each, as ``hisgw serve`` runs them):

- the gateway on a fresh SQLite database (WAL), with a registered client and one stored Patient;
- a bare FastAPI app whose ``GET /Patient/{id}`` returns the same JSON bytes (no auth, no database).

A small asyncio HTTP/1.1 client (keep-alive, pre-built requests, one process) keeps 32 connections busy:
authenticated, audited ``GET Patient/{id}`` against the bare endpoint (requests/s, p50/p99 latency), then
``POST Patient`` (each an audited create with its own identifier) for creates/s. Each server is pinned to
one core and the load generator to the other where the machine has two or more. Results go to
``docs/performance.md`` section "Gateway service".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO, TARGET_P99_MS, TARGET_CREATES = 0.5, 50.0, 300.0
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "555555914"}],
    "name": [{"use": "official", "family": "Direnç", "given": ["A."]}],
    "gender": "male",
    "birthDate": "1950-05-20",
    "address": [{"use": "home", "line": ["Fleurop 22"], "postalCode": "1256 DC", "city": "Venlo"}],
    "managingOrganization": {
        "identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01099001"}
    },
}


# -- the two servers (run as child processes) --------------------------------------------------------------


def _setup(workdir: Path, port: int):
    from gateway.auth.keys import write_client_keys
    from gateway.settings import Settings

    keys = workdir / "clients"
    _, _, kid = write_client_keys(keys, "bench", "ES384")
    (keys / "clients.toml").write_text(
        '[[client]]\nid = "bench"\nname = "bench HIS"\nscopes = ["system/*.cruds"]\n'
        'jwks_file = "bench.jwks.json"\n'
        'role = { code = "01.015", display = "Huisarts" }\n'
        '[client.organization]\nname = "Bench practice"\nkind = "practice"\nagb = "01099001"\n',
        "utf-8",
    )
    (workdir / "kid").write_text(kid)
    return Settings(
        db_url=f"sqlite:///{workdir / 'gw.db'}",
        base_url=f"http://127.0.0.1:{port}",
        clients_file=keys / "clients.toml",
        signing_key_file=workdir / "signing.pem",
        metrics_port=0,
    )


def serve_gateway(workdir: Path, port: int) -> None:
    import logging

    from gateway.api.app import create_app
    from gateway.auth.keys import load_or_create_signing_key
    from gateway.clients import Registry
    from gateway.db import migrate, service_engine
    from gateway.obs import setup_logging
    from gateway.settings import Settings

    settings = Settings.model_validate_json((workdir / "settings.json").read_text())
    setup_logging("INFO")
    handler = logging.FileHandler(workdir / "gateway.log")  # structured request logs stay on: real cost
    handler.setFormatter(logging.getLogger("hisgw").handlers[0].formatter)
    logging.getLogger("hisgw").handlers[:] = [handler]
    engine, _checkpointer = service_engine(settings.db_url)
    migrate(engine)
    app = create_app(
        settings,
        engine=engine,
        registry=Registry.load(settings.clients_file),
        signing_key=load_or_create_signing_key(settings.signing_key_file),
    )
    import gc

    gc.collect()
    gc.freeze()
    _run_uvicorn(app, port)


def _run_uvicorn(app, port: int) -> None:
    """uvicorn as ``hisgw serve`` runs it; with HISGW_BENCH_PROFILE: under cProfile, dumped on SIGTERM."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    )
    target = os.environ.get("HISGW_BENCH_PROFILE")
    if not target:
        server.run()
        return
    import cProfile
    import signal

    profile = cProfile.Profile()

    def dump(*_args) -> None:
        profile.disable()
        profile.dump_stats(target)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    profile.enable()
    server.run()


def serve_bare(body_file: Path, port: int) -> None:
    from fastapi import FastAPI
    from starlette.responses import Response

    body = body_file.read_bytes()
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/Patient/{rid}")
    async def read(rid: str) -> Response:
        return Response(body, media_type="application/fhir+json")

    _run_uvicorn(app, port)


# -- load generator -----------------------------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive connection: send a request, read the whole response, send the next (no pipelining).

    A Protocol rather than streams: the load generator must cost far less than the servers it measures.
    """

    def __init__(self, make, state: dict, latencies: list[float], statuses: dict, done: asyncio.Future):
        self.make, self.state, self.latencies, self.statuses, self.done = (
            make,
            state,
            latencies,
            statuses,
            done,
        )
        self.buffer = b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        if self.state["left"] <= 0 or time.perf_counter() >= self.state["deadline"]:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.state["left"] -= 1
        self.started = time.perf_counter()
        self.transport.write(self.make())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        at = head.lower().find(b"content-length:")
        length = (
            int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            if at >= 0
            else 0
        )
        if len(self.buffer) < end + 4 + length:
            return
        self.latencies.append(time.perf_counter() - self.started)
        status = int(head[9:12])
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.buffer = self.buffer[end + 4 + length :]
        self._next()

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _same(client: _Client) -> _Client:
    return client


async def _load(port: int, make, connections: int, count: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    state = {"left": count, "deadline": time.perf_counter() + seconds}
    started, cpu = time.perf_counter(), time.process_time()
    waits = []
    for _ in range(connections):
        done: asyncio.Future = loop.create_future()
        client = _Client(make, state, latencies, statuses, done)
        await loop.create_connection(functools.partial(_same, client), "127.0.0.1", port)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.perf_counter() - started
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "statuses": statuses,
        "client_cpu": (time.process_time() - cpu) / elapsed,
    }


def _summary(slices: list[dict]) -> dict:
    """Requests/s over all slices together, latency percentiles over all requests."""
    latencies = sorted(x for sl in slices for x in sl["latencies"])
    elapsed = sum(sl["elapsed"] for sl in slices)
    statuses: dict[int, int] = {}
    for sl in slices:
        for k, v in sl["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "statuses": statuses,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "all": [len(sl["latencies"]) / sl["elapsed"] for sl in slices],
        "client_cpu": max(sl["client_cpu"] for sl in slices),
    }


def load(port: int, make, connections: int, count: int, seconds: float) -> dict:
    return asyncio.run(_load(port, make, connections, count, seconds))


def _get(path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/fhir+json\r\n{auth}\r\n".encode()


def _wait(port: int) -> None:
    import socket

    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(port)


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) >= 2 and _has_taskset() else []


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=10, help="alternating bare/gateway slices of the GET run")
    ap.add_argument("--slice-seconds", type=float, default=2.0)
    ap.add_argument("--creates", type=int, default=4000)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--profile", metavar="DIR", help="run the servers under cProfile, stats into DIR")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    ap.add_argument("--serve-gateway", nargs=2, metavar=("WORKDIR", "PORT"), help=argparse.SUPPRESS)
    ap.add_argument("--serve-bare", nargs=2, metavar=("BODY", "PORT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_gateway:
        return serve_gateway(Path(args.serve_gateway[0]), int(args.serve_gateway[1]))
    if args.serve_bare:
        return serve_bare(Path(args.serve_bare[0]), int(args.serve_bare[1]))

    import httpx
    import jwt  # noqa: F401 - fail early if the environment is incomplete

    from gateway.auth.keys import token_request
    from gateway.db import make_engine, migrate
    from gateway.store import Store
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory(prefix="hisgw-bench-") as tmp:
        work = Path(tmp)
        gw_port, bare_port = free_port(), free_port()
        settings = _setup(work, gw_port)
        (work / "settings.json").write_text(settings.model_dump_json())
        engine = make_engine(settings.db_url)
        migrate(engine)
        with engine.begin() as conn:
            stored, _ = Store(settings.fhir_base).create(conn, ("agb:01099001",), dict(PATIENT))
        engine.dispose()
        assert stored.body is not None
        (work / "body.json").write_bytes(stored.body)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def env_for(name: str) -> dict[str, str]:
            if not args.profile:
                return env
            return {**env, "HISGW_BENCH_PROFILE": str(Path(args.profile).resolve() / f"{name}.prof")}

        procs = [
            subprocess.Popen(
                [
                    *_pin(0),
                    sys.executable,
                    "-m",
                    "bench.bench_service",
                    "--serve-gateway",
                    str(work),
                    str(gw_port),
                ],
                cwd=ROOT,
                env=env_for("gateway"),
            ),
            subprocess.Popen(
                [
                    *_pin(0),
                    sys.executable,
                    "-m",
                    "bench.bench_service",
                    "--serve-bare",
                    str(work / "body.json"),
                    str(bare_port),
                ],
                cwd=ROOT,
                env=env_for("bare"),
            ),
        ]
        if _pin(1):
            os.sched_setaffinity(0, {1})
        try:
            _wait(gw_port)
            _wait(bare_port)
            pem = (work / "clients" / "bench.private.pem").read_bytes()
            kid = (work / "kid").read_text()
            form = token_request("bench", pem, kid, settings.token_url, "system/*.cruds")
            token = httpx.post(settings.token_url, data=form).json()["access_token"]
            path = f"/Patient/{stored.rid}"
            check = httpx.get(
                f"http://127.0.0.1:{gw_port}{path}", headers={"Authorization": f"Bearer {token}"}
            )
            assert check.status_code == 200 and check.content == stored.body, check.text
            gw_get, bare_get = _get(path, token), _get(path, None)
            c, secs = args.connections, args.slice_seconds
            load(bare_port, lambda: bare_get, c, 2000, 5)  # warm-up
            load(gw_port, lambda: gw_get, c, 2000, 5)
            # short alternating slices: on a shared machine both endpoints then meet the same noise
            bares, gws = [], []
            for _ in range(args.slices):
                bares.append(load(bare_port, lambda: bare_get, c, 10**9, secs))
                gws.append(load(gw_port, lambda: gw_get, c, 10**9, secs))
            bare, gw = _summary(bares), _summary(gws)
            counter = iter(range(10**9))
            head = (
                f"POST /Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/fhir+json\r\n"
            ).encode()

            def make_create() -> bytes:
                res = dict(PATIENT, identifier=[{"system": "urn:bench", "value": str(next(counter))}])
                body = orjson.dumps(res)
                return head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body

            creates = _summary([load(gw_port, make_create, c, args.creates, 60)])
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)
    report(bare, gw, creates, c, write=not args.no_write)


def _saturation_note(bare: dict) -> str:
    if bare["client_cpu"] < 0.9:
        return ""
    return (
        " -- the generator, not the bare server, set the bare figure, so the ratio above flatters the gateway"
    )


def _row(label: str, r: dict) -> str:
    return (
        f"| {label} | {r['n']:,} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
        f"{dict(sorted(r['statuses'].items()))} |"
    )


def report(bare: dict, gw: dict, creates: dict, connections: int, *, write: bool) -> None:
    from bench._report import machine, write_section

    ratio = gw["rps"] / bare["rps"]
    ok_ratio, ok_p99 = ratio >= TARGET_RATIO, gw["p99"] < TARGET_P99_MS
    ok_create = creates["rps"] >= TARGET_CREATES and set(creates["statuses"]) == {201}
    yes = {True: "yes", False: "NO"}
    body = f"""Machine: {machine()}.
Loopback HTTP/1.1 keep-alive, {connections} connections, one asyncio load-generator process; each server is
one uvicorn process (h11); server and load generator pinned to different cores. SQLite (WAL) database.
Targets (issue 5): authenticated audited `GET Patient/{{id}}` at least {TARGET_RATIO:.0%} of the
bare endpoint's requests/s with p99 under {TARGET_P99_MS:.0f} ms; creates at least {TARGET_CREATES:.0f}/s
on SQLite.

| endpoint | requests | requests/s | p50 (ms) | p99 (ms) | statuses |
|---|---:|---:|---:|---:|---|
{_row("bare FastAPI `GET /Patient/{id}` (same JSON bytes)", bare)}
{_row("gateway `GET Patient/{id}` (token, tenant filter, AuditEvent)", gw)}
{_row("gateway `POST Patient` (validate, index, AuditEvent)", creates)}

GET run: {len(bare["all"])} alternating slices each; requests/s per slice: bare
{", ".join(f"{x:,.0f}" for x in bare["all"])}; gateway {", ".join(f"{x:,.0f}" for x in gw["all"])}.
Load generator CPU (busiest slice, share of one core): {bare["client_cpu"]:.0%} against the bare endpoint,
{gw["client_cpu"]:.0%} against the gateway{_saturation_note(bare)}.
The gateway's read: the access token checked (its signature once, then from a cache), one SQL read with
the tenant filter, the AuditEvent built and appended to the hash chain in the same transaction;
requests arriving together share that transaction (group commit, docs/service.md §4).
Gateway/bare requests/s: {ratio:.2f} (target met: {yes[ok_ratio]}); gateway p99 {gw["p99"]:.1f} ms
(target met: {yes[ok_p99]}); creates {creates["rps"]:,.0f}/s (target met: {yes[ok_create]}).
"""
    print(body)
    if write:
        write_section("Gateway service", body)


if __name__ == "__main__":
    main()
