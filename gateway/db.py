"""Database engines and migrations: SQLite (WAL) embedded by default, PostgreSQL by URL.

SQLite: every gateway transaction writes (at least its audit record), so each one starts with
``BEGIN IMMEDIATE``: it takes the write lock at once instead of failing with SQLITE_BUSY when a read
lock would later have to be upgraded. WAL with ``synchronous=NORMAL`` keeps readers unblocked and
commits cheap (durable at checkpoint; a power loss may lose the last commits, never corrupt the file).

PostgreSQL: ``postgresql://`` URLs are served by psycopg 3; READ COMMITTED. The unique and primary
keys of ``gateway/schema.py`` decide every race (conditional create, versions); the audit head row
serialises audited transactions across processes.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; everything else is passed as given."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str, *, pool_size: int = 8, checkpoint_in_background: bool = False, create: bool = True
) -> Engine:
    """An engine for ``url`` with the gateway's connection settings.

    ``create``: a SQLite file (and its folder) may be created; ``False`` raises FileNotFoundError instead.
    ``checkpoint_in_background``: SQLite connections do not checkpoint the WAL themselves (a checkpoint
    syncs the files and would stall the request that triggers it); run a :class:`Checkpointer`."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            if not create and not Path(database).exists():
                raise FileNotFoundError(f"no database at {database}")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if checkpoint_in_background:
                cur.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread does it off the loop
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # pragma: no cover - exercised by every test
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def alembic_config(connection=None):
    """The alembic configuration of ``gateway/migrations`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent; safe with several processes at once)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (``None`` before the first migration)."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - no table yet
            return None


class Checkpointer:
    """Checkpoints a SQLite WAL from a thread of its own, so no request waits for the file sync."""

    def __init__(self, engine: Engine, interval: float = 1.0):
        import threading

        self.path = make_url(engine.url).database or ""
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hisgw-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy or gone: try again next round
                    continue
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


def service_engine(url: str) -> tuple[Engine, Checkpointer | None]:
    """The engine of a running gateway: for a SQLite file, WAL checkpoints move to a background thread."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        engine = make_engine(url, checkpoint_in_background=True)
        return engine, Checkpointer(engine).start()
    return make_engine(url), None
