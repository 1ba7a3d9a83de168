"""Every table of the gateway, on the one ``metadata``: what the migrations build and compare against.

The tables live beside the code that owns them: ``gateway/schema.py`` (store, tokens, audit log),
``gateway/consult/schema.py`` (issue 6), ``gateway/outbox/schema.py`` (issue 7, ``outbox_item``). Nothing
below this module needs them all, so none imports it (no package imports another's tables back).
"""

from __future__ import annotations

from gateway import schema as core  # noqa: F401 - registers its tables on metadata
from gateway.consult import schema as consult  # noqa: F401
from gateway.metadata import metadata
from gateway.outbox import schema as outbox  # noqa: F401

__all__ = ["metadata"]
