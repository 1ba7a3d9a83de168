"""Alembic migrations of the gateway's database (``gateway/schema.py``); run by :func:`gateway.db.migrate`."""
