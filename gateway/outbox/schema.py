"""The outbox tables (SQLAlchemy Core); migration ``0002_outbox`` builds exactly these.

``outbox_item``: one row per postbox item to deliver (issue 7, ``docs/postbox-delivery.md``).

- ``seq``: insertion order (autoincrement primary key); per (``practice``, ``patient_key``) items go
  out in ``seq`` order.
- ``id``: the item id (``PostboxItem.id``), unique; it is also the stable message id of every channel
  (MSH-10, file name, ``Idempotency-Key``), the same on every attempt.
- ``patient_key``: sha256 hex of the caller's patient key (BSN or sender's reference), never the BSN
  itself: the outbox orders by patient without holding the number in clear.
- ``state``: ``queued`` | ``sending`` | ``delivered`` | ``retrying`` | ``dead``
  (see :mod:`gateway.outbox.state`).
- ``due_ms`` / ``lease_until_ms`` / ``lease_owner``: when the item may be tried next; while
  ``sending``, the worker holding it and until when (a lease that runs out makes the item claimable
  again, with the same message id).
- ``body``: the canonical JSON of the ``PostboxItem``; set to NULL once delivery is confirmed
  (content pruned, the row and the audit trail stay).

Times are integer milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from gateway.metadata import metadata

outbox_item = Table(
    "outbox_item",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False),
    Column("practice", String(8), nullable=False),
    Column("patient_key", String(64), nullable=False),
    Column("source", String(128), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("due_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Column("delivered_ms", BigInteger, nullable=True),
    Column("channel", String(16), nullable=True),
    Column("filing", String(8), nullable=True),
    Column("error_class", String(12), nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("body", LargeBinary, nullable=True),
    UniqueConstraint("id", name="outbox_item_id_key"),
    Index("ix_outbox_claim", "practice", "state", "seq"),
    Index("ix_outbox_patient", "practice", "patient_key", "seq"),
)

STATES = ("queued", "sending", "delivered", "retrying", "dead")
