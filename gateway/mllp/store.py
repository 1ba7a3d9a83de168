"""Durable store of inbound HL7 v2 messages (SQLAlchemy Core; SQLite in WAL mode by default).

One row per message, keyed by (MSH-3, MSH-4, MSH-10) under a UNIQUE constraint the *database* enforces:
a message is inserted together with the acknowledgement bytes in one transaction; when the insert fails
on that constraint the message was seen before and the stored acknowledgement is returned, so a resent
message gets its original ACK again, byte for byte, and is stored once, whichever process or
connection delivered it first. The listener sends an ACK only after :meth:`MessageStore.store_many`
has committed (for SQLite: ``synchronous=FULL``, so the commit survives a crash of the process and of
the machine).

Each batch is one transaction (one multi-row INSERT; after a refusal on the key, a savepoint per message
so that a duplicate rolls back only itself); the listener batches the messages that arrive while the
previous commit runs (group commit). What is stored is the raw message: whatever reads it later maps it
again, with the mapping of that day. Any SQLAlchemy URL works; PostgreSQL (``postgresql+psycopg://...``)
needs no change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

KEY_LENGTH = 255

metadata = MetaData()
inbound = Table(
    "hl7v2_inbound",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sending_application", String(KEY_LENGTH), nullable=False),  # MSH-3 as received
    Column("sending_facility", String(KEY_LENGTH), nullable=False),  # MSH-4 as received
    Column("control_id", String(KEY_LENGTH), nullable=False),  # MSH-10
    Column("message_type", String(64), nullable=False),  # MSH-9 as received
    Column("received_at", DateTime(), nullable=False),  # UTC
    Column("peer", String(128), nullable=False),  # network access point (NEN 7513)
    Column("ack_code", String(2), nullable=False),  # MSA-1 of the acknowledgement (AA AE AR CA CE CR)
    Column("raw", LargeBinary, nullable=False),  # the message bytes as received
    Column("ack", LargeBinary, nullable=True),  # the acknowledgement sent (NULL: MSH-15 asked for none)
    Column(
        "app_ack", LargeBinary, nullable=True
    ),  # enhanced mode: the application acknowledgement to deliver
    UniqueConstraint("sending_application", "sending_facility", "control_id", name="uq_hl7v2_inbound_key"),
)


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """What the listener stores for one message."""

    key: tuple[str, str, str]
    message_type: str
    raw: bytes
    ack_code: str
    ack: bytes | None
    app_ack: bytes | None = None
    peer: str = ""
    bsns: tuple[str, ...] = ()
    """The patients the message names (BSN), for the receipt's audit record; not stored in this table."""
    conflict: bool = False
    """A conflicting duplicate (its key was stored with other content): refused, not stored."""


@dataclass(frozen=True, slots=True)
class StoreResult:
    """The acknowledgement to send: the new one, or (``duplicate``) the one stored first."""

    ack: bytes | None
    ack_code: str
    duplicate: bool
    app_ack: bytes | None = None
    """Enhanced mode: the application acknowledgement (the one stored first, for a resend)."""
    conflict: bool = False
    """The key was stored before with other content: ``ack`` is the refusal (AR/CR, ``MLLP-005``)."""


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, full sync, a busy timeout; and BEGIN IMMEDIATE ourselves so SAVEPOINTs work with pysqlite."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # pragma: no cover - exercised via every SQLite test
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint (and its fsyncs) every ~40 MB, not 4 MB
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:  # pragma: no cover - as above
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def same_content(stored: bytes, received: bytes) -> bool:
    """Whether a message with a stored key is a resend: the same bytes, except MSH-7 (the time of the
    message, which some senders stamp again on a retry) and trailing segment terminators."""
    return _masked(stored) == _masked(received)


def _masked(raw: bytes) -> bytes:
    raw = raw.rstrip(b"\r\n")
    end = raw.find(b"\r")
    head, rest = (raw, b"") if end < 0 else (raw[:end], raw[end:])
    if head[:3] != b"MSH" or len(head) < 4:
        return raw
    fields = head.split(head[3:4])
    if len(fields) > 6:
        fields[6] = b""  # MSH-7 (MSH-1 is the separator itself, so field 6 of the split is MSH-7)
    return head[3:4].join(fields) + rest


def _row(r: InboundRecord, received: dt.datetime) -> dict:
    return {
        "sending_application": r.key[0],
        "sending_facility": r.key[1],
        "control_id": r.key[2],
        "message_type": r.message_type,
        "received_at": received,
        "peer": r.peer[:128],
        "ack_code": r.ack_code,
        "raw": r.raw,
        "ack": r.ack,
        "app_ack": r.app_ack,
    }


ConflictHook = Callable[[InboundRecord], InboundRecord]
"""Turns a record whose key was stored with other content into its refusal (``ack_code``/``ack`` of the
AR/CR, ``conflict`` set); :class:`gateway.mllp.server.MllpServer` sets
:func:`gateway.mllp.handler.conflicting`."""

ReceiptHook = Callable[[Connection, InboundRecord, bool], None]
"""Called in the storing transaction for every received record (the bool: a resend of a stored message);
if it raises, the transaction fails and the sender gets AE/CE (``MLLP-003``) and resends."""

ReceiptsHook = Callable[[Connection, Sequence[tuple[InboundRecord, bool]]], None]
""":data:`ReceiptHook` for a whole batch at once, in the order of the batch (one call per transaction)."""


class MessageStore:
    """The inbound message table behind one SQLAlchemy URL (``sqlite:///path.db`` by default).

    ``on_receipt``: run in the same transaction for each record, new or resent (``hisgw serve`` writes
    the NEN 7513 AuditEvent of the receipt there, so a message is never stored without its audit record);
    ``on_receipts`` does the same once per batch (``hisgw serve`` uses it: one chain append per commit).
    A resend is recognised by its content: the same key with other content (MSH-7 aside, which senders
    may restamp) is a *conflicting duplicate*, answered by ``on_conflict``'s refusal and audited as such.
    """

    def __init__(
        self,
        url: str = "sqlite:///hisgw-mllp.db",
        *,
        create: bool = True,
        on_receipt: ReceiptHook | None = None,
        on_conflict: ConflictHook | None = None,
        on_receipts: ReceiptsHook | None = None,
    ):
        self.url = url
        self.on_receipt = on_receipt
        self.on_receipts = on_receipts
        self.on_conflict = on_conflict
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _sqlite_pragmas(self.engine)
        if create:
            metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def store_many(
        self, records: Sequence[InboundRecord], now: dt.datetime | None = None
    ) -> list[StoreResult]:
        """Insert every record in one transaction; duplicates return the ACK stored first.

        Fast path: one multi-row INSERT. When the database refuses it on the UNIQUE key (a resend, or
        the same message twice in the batch), that transaction is rolled back and the batch inserted row
        by row, each in a savepoint, so that only the duplicates fall out and get the stored ACK."""
        received = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
        rows = [_row(r, received) for r in records]
        try:
            with self.engine.begin() as conn:
                conn.execute(inbound.insert(), rows)
                self._receipts(conn, [(r, False) for r in records])
            return [StoreResult(r.ack, r.ack_code, False, r.app_ack) for r in records]
        except IntegrityError:
            pass
        out: list[StoreResult] = []
        seen: list[tuple[InboundRecord, bool]] = []
        with self.engine.begin() as conn:
            for r, row in zip(records, rows, strict=True):
                try:
                    with conn.begin_nested():
                        conn.execute(inbound.insert(), row)
                    out.append(StoreResult(r.ack, r.ack_code, False, r.app_ack))
                except IntegrityError:
                    got = conn.execute(
                        select(inbound.c.ack, inbound.c.ack_code, inbound.c.app_ack, inbound.c.raw).where(
                            inbound.c.sending_application == r.key[0],
                            inbound.c.sending_facility == r.key[1],
                            inbound.c.control_id == r.key[2],
                        )
                    ).one()
                    if self.on_conflict is not None and not same_content(bytes(got.raw), r.raw):
                        r = self.on_conflict(r)
                        out.append(StoreResult(r.ack, r.ack_code, True, None, conflict=True))
                    else:
                        out.append(StoreResult(got.ack, got.ack_code, True, got.app_ack))
                seen.append((r, out[-1].duplicate))
            self._receipts(conn, seen)
        return out

    def _receipts(self, conn: Connection, received: list[tuple[InboundRecord, bool]]) -> None:
        """The receipt hooks for a batch, in the storing transaction."""
        if self.on_receipts is not None:
            self.on_receipts(conn, received)
        if self.on_receipt is not None:
            for r, resend in received:
                self.on_receipt(conn, r, resend)

    def store(self, record: InboundRecord) -> StoreResult:
        return self.store_many([record])[0]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(inbound)).scalar_one()

    def rows(self, key: tuple[str, str, str] | None = None) -> list:
        """Stored rows (all, or those of one key), oldest first."""
        q = select(inbound).order_by(inbound.c.id)
        if key is not None:
            q = q.where(
                inbound.c.sending_application == key[0],
                inbound.c.sending_facility == key[1],
                inbound.c.control_id == key[2],
            )
        with self.engine.connect() as conn:
            return list(conn.execute(q))
