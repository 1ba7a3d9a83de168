"""Shared fixtures: a throwaway PostgreSQL cluster, and a gateway service with registered test clients.

PostgreSQL: the server binaries of the machine (``/usr/lib/postgresql/*/bin``; ``scripts/test.sh``
installs them when missing) start one cluster per test session in a temporary directory, on a free
127.0.0.1 port with its socket in that directory; each test that asks for ``pg_url`` gets a database of
its own. Under pytest-xdist (``scripts/test.sh``) each worker is a session: one cluster per worker, in a
directory and on a port of its own (a port another worker took in the meantime: the start is retried on
another). When the tests run as root the cluster runs as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"  # outside material kept in the repository (tests/data/README.md)
EXTERNAL = DATA / "external" / "nictiz-huisartswaarneming"
REAL_PS = EXTERNAL / "QUPC_IN990002NL_01.hl7v3.xml"  # the real NHG professional summary (Nictiz)
SEEDS = DATA / "seeds"


# -- PostgreSQL ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries are missing (apt-get install postgresql; scripts/test.sh does this)"
        )
    return Path(found[-1]).parent


@dataclass
class PgCluster:
    bindir: Path
    datadir: Path
    port: int
    user: str | None
    databases: list[str] = field(default_factory=list)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self._psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_cluster_user(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for this test session (stopped and removed at the end)."""
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="hisgw-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
            pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
    datadir = base / "data"
    subprocess.run(
        _as_cluster_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            user,
        ),
        check=True,
        capture_output=True,
    )
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(datadir)]
    for attempt in range(3):
        port = free_port()
        opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        started = subprocess.run(
            _as_cluster_user(
                [*pg_ctl, "-o", opts, "-l", str(base / "log"), "-w", "start"],
                user,
            ),
            capture_output=True,
        )
        if started.returncode == 0:
            break
        if attempt == 2:
            raise RuntimeError(f"PostgreSQL did not start: {(base / 'log').read_text()[-2000:]}")
    cluster = PgCluster(bindir, datadir, port, user)
    try:
        yield cluster
    finally:
        subprocess.run(
            _as_cluster_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"], user),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


# -- the gateway service ----------------------------------------------------------------------------------

TEST_CLIENTS = {
    # client id: (organisation kind, AGB, URA, organisation name, scopes, key alg)
    "practice-a": ("practice", "01000001", None, "Huisartsenpraktijk A", ("system/*.cruds",), "ES384"),
    "practice-b": ("practice", "01000002", "90000002", "Huisartsenpraktijk B", ("system/*.cruds",), "RS384"),
    "hospital-h": ("hospital", None, "90000009", "Ziekenhuis H", ("system/*.cruds",), "ES384"),
    "auditor-a": (
        "practice",
        "01000001",
        None,
        "Huisartsenpraktijk A",
        ("system/AuditEvent.read", "system/Patient.read"),
        "ES384",
    ),
    "reader-a": ("practice", "01000001", None, "Huisartsenpraktijk A", ("system/*.rs",), "ES384"),
    "everything-a": (
        "practice",
        "01000001",
        None,
        "Huisartsenpraktijk A",
        ("system/*.cruds", "system/AuditEvent.read"),
        "ES384",
    ),
}


class SyncASGITransport:
    """An httpx transport that runs an ASGI app on an event loop of its own (in-process, no sockets).

    (Starlette's TestClient is deprecated in the installed version and would warn.)"""

    def __init__(self, app, client: tuple[str, int] = ("127.0.0.1", 50000)):
        import asyncio
        import threading

        import httpx

        self._asgi = httpx.ASGITransport(app=app, client=client)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def handle_request(self, request):
        import asyncio

        import httpx

        async def run():
            request.stream = httpx.ByteStream(request.read())
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=300)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ClientKey:
    client_id: str
    pem: bytes
    kid: str
    alg: str


class Service:
    """A gateway app on one database, with the test clients registered, driven in-process."""

    def __init__(self, workdir: Path, db_url: str, base_url: str = "http://testserver", **settings):
        from gateway.auth.keys import load_or_create_signing_key, write_client_keys
        from gateway.clients import Registry
        from gateway.db import make_engine, migrate
        from gateway.settings import Settings

        self.workdir = workdir
        keys_dir = workdir / "clients"
        self.keys: dict[str, ClientKey] = {}
        lines = []
        for cid, (kind, agb, ura, name, scopes, alg) in TEST_CLIENTS.items():
            private, _jwks, kid = write_client_keys(keys_dir, cid, alg)
            self.keys[cid] = ClientKey(cid, private.read_bytes(), kid, alg)
            lines += [
                "[[client]]",
                f'id = "{cid}"',
                f'name = "{cid} HIS"',
                "scopes = [" + ", ".join(f'"{s}"' for s in scopes) + "]",
                f'jwks_file = "{cid}.jwks.json"',
                'role = { code = "01.015", display = "Huisarts" }',
                "[client.organization]",
                f'name = "{name}"',
                f'kind = "{kind}"',
            ]
            lines += [f'agb = "{agb}"'] if agb else []
            lines += [f'ura = "{ura}"'] if ura else []
        (keys_dir / "clients.toml").write_text("\n".join(lines) + "\n", "utf-8")
        settings.setdefault("log_requests", False)
        self.settings = Settings(
            db_url=db_url,
            base_url=base_url,
            clients_file=keys_dir / "clients.toml",
            signing_key_file=workdir / "signing.pem",
            **settings,
        )
        self.engine = make_engine(db_url)
        migrate(self.engine)
        self.registry = Registry.load(self.settings.clients_file)
        self.signing_key = load_or_create_signing_key(self.settings.signing_key_file)
        self._tokens: dict[tuple[str, str], str] = {}
        self.app: Any = None
        self.http: Any = None

    def start(self):
        import httpx

        from gateway.api.app import create_app

        self.app = create_app(
            self.settings, engine=self.engine, registry=self.registry, signing_key=self.signing_key
        )
        self.http = httpx.Client(transport=SyncASGITransport(self.app), base_url=self.settings.base_url)
        return self

    def assertion(self, client_id: str, **kw) -> str:
        from gateway.auth.keys import client_assertion

        k = self.keys[client_id]
        return client_assertion(client_id, k.pem, k.kid, self.settings.token_url, alg=k.alg, **kw)

    def token(self, client_id: str = "practice-a", scope: str | None = None) -> str:
        scope = scope or " ".join(TEST_CLIENTS[client_id][4])
        key = (client_id, scope)
        if key not in self._tokens:
            from gateway.auth.keys import ASSERTION_TYPE

            r = self.http.post(
                "/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": scope,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion(client_id),
                },
            )
            assert r.status_code == 200, r.text
            self._tokens[key] = r.json()["access_token"]
        return self._tokens[key]

    def request(self, method: str, path: str, *, as_: str = "practice-a", json=None, headers=None, **kw):
        h = {"Authorization": f"Bearer {self.token(as_)}", **(headers or {})}
        if json is not None:
            import orjson

            kw["content"] = orjson.dumps(json)
            h.setdefault("Content-Type", "application/fhir+json")
        return self.http.request(method, path, headers=h, **kw)

    def audit_count(self) -> int:
        from sqlalchemy import func, select

        from gateway.schema import audit_log

        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_log)).scalar_one()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http._transport.close()
        self.engine.dispose()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The gateway on a fresh SQLite database, in-process."""
    svc = Service(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}").start()
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def pg_service(tmp_path: Path, pg_url: str) -> Iterator[Service]:
    """The gateway on a fresh PostgreSQL database, in-process."""
    svc = Service(tmp_path, pg_url).start()
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    """A fresh database: a SQLite file, then a throwaway PostgreSQL database (a test using it runs on
    both).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gw.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def both_service(tmp_path: Path, db_url: str) -> Iterator[Service]:
    """The gateway in-process on SQLite, then on a real PostgreSQL."""
    svc = Service(tmp_path, db_url).start()
    try:
        yield svc
    finally:
        svc.close()


def wait_until(probe, timeout: float = 10.0, every: float = 0.01, what: str = "the condition"):
    """Call ``probe`` until it returns something truthy (returned), or fail after ``timeout`` seconds:
    tests wait on a condition with a deadline, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout} s")
        time.sleep(every)


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class ServerProcess:
    """``hisgw serve ...`` in a child process, stopped (SIGTERM, then SIGKILL) when the test ends."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str] | None = None, port: int | None = None
    ):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.log"
        self.out = cwd / f"serve-{self.port}.out"
        cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port), *args]
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        with self.log.open("wb") as err, self.out.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=out, stderr=err)

    def wait_ready(self, timeout: float = 60.0) -> ServerProcess:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"hisgw serve exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"hisgw serve did not come up: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
