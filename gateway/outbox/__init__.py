"""Postbox delivery: the transactional outbox (issue 7, DOMAIN.md §6, ``docs/postbox-delivery.md``).

:func:`enqueue` writes an item in the caller's transaction, next to the feedback or answer that causes
it: if that transaction rolls back, nothing is sent; if it commits, the delivery worker
(:mod:`gateway.outbox.worker`, ``hisgw worker`` or inside ``hisgw serve``) delivers it exactly once
to the practice's postbox.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy

    from gateway.outbox.schema import STATES, outbox_item
    from mappings.model import PostboxItem

__all__ = ["STATES", "enqueue", "outbox_item", "patient_key_hash"]


def __getattr__(name: str) -> Any:
    """``STATES`` and ``outbox_item`` on first use (PEP 562): importing the package for its command line
    (``hisgw --help``) does not load SQLAlchemy."""
    if name in ("STATES", "outbox_item"):
        from gateway.outbox import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ENQUEUE_LOCK = 7513_0007
"""PostgreSQL advisory lock of :func:`enqueue` (``gateway/migrations/env.py`` uses 7513_0005)."""


def patient_key_hash(practice: str, key: str) -> str:
    """What the outbox stores to order by patient: sha256 of practice and key (never the BSN in clear)."""
    return hashlib.sha256(f"{practice}|{key}".encode()).hexdigest()


def _default_patient_key(item: PostboxItem) -> str:
    if item.patient.bsn:
        return "bsn:" + item.patient.bsn
    if item.patient.sender_reference:
        return "ref:" + item.patient.sender_reference
    if item.correspondence.sender_reference:
        return "ref:" + item.correspondence.sender_reference
    return "item:" + item.id  # nothing to order by: the item stands alone


def enqueue(
    conn: sqlalchemy.Connection, *, item: PostboxItem, source: str, patient_key: str | None = None
) -> str:
    """Write one outbox row in the caller's transaction (never commits). practice = item.practice_agb;
    patient_key orders items per patient (default: item.patient.bsn or sender_reference);
    source names the cause, e.g. "Communication/123". Returns the outbox item id (= item.id)."""
    import sqlalchemy

    from gateway.outbox.schema import outbox_item
    from mappings.model import to_json

    key = patient_key if patient_key is not None else _default_patient_key(item)
    hashed = patient_key_hash(item.practice_agb, key)
    if conn.dialect.name == "postgresql":
        # seq comes from a sequence when the row is inserted, visibility when the transaction commits: two
        # open transactions of one patient could commit out of seq order. This lock, held to the end of the
        # caller's transaction, makes enqueuing transactions take turns, so seq order is commit order. One
        # key for all (not one per patient): a transaction that enqueues for several patients can then never
        # deadlock with another; audited transactions take turns at their commit anyway (the audit head
        # row). SQLite needs none: its transactions hold the write lock from BEGIN IMMEDIATE to the end.
        conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:k)"), {"k": ENQUEUE_LOCK})
    now = int(time.time() * 1000)
    conn.execute(
        outbox_item.insert().values(
            id=item.id,
            practice=item.practice_agb,
            patient_key=hashed,
            source=source[:128],
            kind=item.kind,
            state="queued",
            attempts=0,
            created_ms=now,
            due_ms=now,
            body=to_json(item),
        )
    )
    return item.id
