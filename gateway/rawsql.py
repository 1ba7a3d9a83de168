"""Plain SQL on the driver connection for the few statements on every request's path.

SQLAlchemy Core builds and caches statements well, but on a request that reads one row and appends one
audit record its per-statement overhead is most of the request's cost. These statements run on the
DBAPI connection *inside the same SQLAlchemy transaction* (``conn.connection.driver_connection``), written
once with ``:name`` parameters and translated for psycopg (``%(name)s``) once per dialect.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@lru_cache(maxsize=256)
def _translate(sql: str, pg: bool) -> str:
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")) if pg else sql


def is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def execute(conn: Connection, sql: str, params: dict[str, Any] | None = None):
    """Run ``sql`` (``:name`` parameters) on the driver connection in ``conn``'s transaction; the cursor."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver.execute(_translate(sql, is_pg(conn)), params or {})


def executemany(conn: Connection, sql: str, rows: list[dict[str, Any]]) -> None:
    """Run ``sql`` once per parameter row."""
    driver = conn.connection.driver_connection
    assert driver is not None
    cur = driver.cursor()
    try:
        cur.executemany(_translate(sql, is_pg(conn)), rows)
    finally:
        cur.close()


def in_list(name: str, values: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``(:name0, :name1 ...)`` and its parameters, for an ``IN`` over a short tuple."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params
