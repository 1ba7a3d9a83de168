"""Alembic environment: runs on the connection :func:`gateway.db.migrate` hands over.

On PostgreSQL the migration takes an advisory lock first, so several gateway processes starting at
once against one database migrate it exactly once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.tables import metadata

MIGRATION_LOCK = 7513_0005  # any constant; shared by every gateway process


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
