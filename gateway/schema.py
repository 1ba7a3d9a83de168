"""The gateway's tables (SQLAlchemy Core), shared by the store and the alembic migrations.

- ``resource``: the current version of every resource (body = the JSON served, meta included);
  ``resource_history``: every version ever written (vread, ``_history``).
- ``idx_token`` / ``idx_reference`` / ``idx_date`` / ``idx_string``: search rows of the current version.
- ``participant``: the organisations (``ura:<n>``, ``agb:<n>``, ``*`` for the public directory) that
  take part in a resource -- every read and search joins it (tenancy).
- ``conditional_key``: one row per (type, tenant, normalised If-None-Exist criteria); its primary key
  makes parallel identical conditional creates produce one resource (the database decides, not a
  check-then-insert).
- ``token_jti``: client assertion ids seen (replay protection, SMART Backend Services).
- ``audit_log`` / ``audit_patient`` / ``audit_head``: the NEN 7513 log, append-only with a hash chain;
  ``audit_head`` holds the chain's last sequence number and hash and is the lock every audited
  transaction takes (also across gateway processes on one PostgreSQL).

Tables of later parts are defined on the same ``metadata`` (``gateway/metadata.py``) in their own modules;
``gateway/tables.py`` gathers them all (what the migrations build).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from gateway.metadata import metadata

TYPE = 40  # longest resource type name is far shorter
ID = 64  # FHIR id: [A-Za-z0-9\-\.]{1,64}
INSTANT = 26  # "YYYY-MM-DDTHH:MM:SS.ffffff", UTC
ORG = 80

resource = Table(
    "resource",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(INSTANT), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("creator_org", String(ORG), nullable=False),
    Column("body", LargeBinary, nullable=True),
    PrimaryKeyConstraint("res_type", "res_id", name="pk_resource"),
    Index("ix_resource_updated", "res_type", "last_updated"),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", String(INSTANT), nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("body", LargeBinary, nullable=True),
    PrimaryKeyConstraint("res_type", "res_id", "version", name="pk_resource_history"),
    Index("ix_history_updated", "res_type", "last_updated"),
)

idx_token = Table(
    "idx_token",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(255), nullable=False),
    Column("code", String(255), nullable=False),
    Index("ix_token_lookup", "res_type", "param", "code", "system"),
    Index("ix_token_res", "res_type", "res_id"),
)

idx_reference = Table(
    "idx_reference",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(TYPE), nullable=False),
    Column("target_id", String(ID), nullable=False),
    Index("ix_reference_lookup", "res_type", "param", "target_id", "target_type"),
    Index("ix_reference_target", "target_type", "target_id"),
    Index("ix_reference_res", "res_type", "res_id"),
)

idx_date = Table(
    "idx_date",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("param", String(64), nullable=False),
    Column("lo", String(INSTANT), nullable=False),
    Column("hi", String(INSTANT), nullable=False),
    Index("ix_date_lookup", "res_type", "param", "lo", "hi"),
    Index("ix_date_res", "res_type", "res_id"),
)

idx_string = Table(
    "idx_string",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("param", String(64), nullable=False),
    Column("folded", String(200), nullable=False),
    Column("exact", String(200), nullable=False),
    Index("ix_string_lookup", "res_type", "param", "folded"),
    Index("ix_string_res", "res_type", "res_id"),
)

participant = Table(
    "participant",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("res_id", String(ID), nullable=False),
    Column("org", String(ORG), nullable=False),
    Column("source", String(8), nullable=False),  # creator | content | shared | public
    PrimaryKeyConstraint("res_type", "res_id", "org", "source", name="pk_participant"),
    Index("ix_participant_org", "org", "res_type"),
)

conditional_key = Table(
    "conditional_key",
    metadata,
    Column("res_type", String(TYPE), nullable=False),
    Column("org", String(ORG), nullable=False),
    Column("criteria", String(64), nullable=False),  # sha256 hex of the normalised criteria
    Column("res_id", String(ID), nullable=False),
    PrimaryKeyConstraint("res_type", "org", "criteria", name="pk_conditional_key"),
    Index("ix_conditional_res", "res_type", "res_id"),
)

token_jti = Table(
    "token_jti",
    metadata,
    Column("client_id", String(128), nullable=False),
    Column("jti", String(255), nullable=False),
    Column("exp", Integer, nullable=False),
    PrimaryKeyConstraint("client_id", "jti", name="pk_token_jti"),
    Index("ix_jti_exp", "exp"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, nullable=False, autoincrement=False),
    Column("event_id", String(ID), nullable=False),
    Column("recorded", String(INSTANT), nullable=False),
    Column("org", String(ORG), nullable=False),
    Column("action", String(1), nullable=False),
    Column("outcome", String(2), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("seq", name="pk_audit_log"),
    UniqueConstraint("event_id", name="audit_log_event_id_key"),
    Index("ix_audit_org_recorded", "org", "recorded"),
)

audit_patient = Table(
    "audit_patient",
    metadata,
    Column("seq", Integer, nullable=False),
    Column("patient", String(TYPE + ID + 1), nullable=False),
    PrimaryKeyConstraint("seq", "patient", name="pk_audit_patient"),
    Index("ix_audit_patient", "patient"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, nullable=False, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("id", name="pk_audit_head"),
)

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first audit record."""
