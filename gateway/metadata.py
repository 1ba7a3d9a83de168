"""The one SQLAlchemy ``MetaData`` every table of the gateway is defined on.

The tables live beside the code that owns them (``gateway/schema.py`` for the store, tokens and audit
log, ``gateway/consult/schema.py``, ``gateway/outbox/schema.py``); ``gateway/tables.py`` imports them all,
so ``gateway.tables.metadata`` is the whole database, as the migrations build it.
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()
