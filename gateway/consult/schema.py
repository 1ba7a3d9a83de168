"""The consult workflow tables (SQLAlchemy Core); migration ``0003_consult`` builds exactly these.

The FHIR resources of a consult (Task, ServiceRequest, Communication, DocumentReference, ChargeItem) live
in the resource store like any other, so reads, searches, tenancy and audit work as everywhere. These
tables hold what the workflow decides on, so that state changes, overdue lists and declarations are
single indexed queries and conflicting changes are caught by the database:

- ``consult``: one row per consult (``id`` = the Task id): state, parties (tenant keys), the specialism
  (HealthcareService id) or the specialist (PractitionerRole id) it is owned by, the HIS episode the
  question is about when the GP chose exactly one (id, ICPC, title: the answer's filing proposal), and
  its times (UTC ``YYYY-MM-DDTHH:MM:SS.ffffff``); ``version`` guards concurrent transitions.
- ``consult_declaration``: a consult closed with a declaration, once declared: the quarter that declared
  it. The primary key on the consult means no consult is ever declared in two quarters.
- ``declaration_batch``: a quarter once declared; a later run of the same quarter returns the same set.
- ``conversation`` / ``conversation_message``: conversations about a patient and the messages awaiting
  a reply (reply due per subject; ``conversation.id`` = the first message's Communication id);
  ``referral_link``: a practice's referral to a partner (``id`` = the referral's ServiceRequest id), open or
  closed by the practice.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table

from gateway.metadata import metadata

T = 26  # a UTC time column
ID = 64
KEY = 40  # a tenant key (ura:<n>, agb:<n>)

consult = Table(
    "consult",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state", String(24), nullable=False),
    Column("practice", String(KEY), nullable=False),
    Column("practice_agb", String(8), nullable=True),
    Column("hospital", String(KEY), nullable=False),
    Column("specialism", String(ID), nullable=True),
    Column("specialism_name", String(200), nullable=True),
    Column("specialist", String(ID), nullable=True),
    Column("named", Boolean, nullable=False),
    Column("patient", String(ID), nullable=False),
    Column("service_request", String(ID), nullable=False),
    Column("uzovi", String(4), nullable=True),
    Column("episode", String(ID), nullable=True),
    Column("episode_icpc", String(10), nullable=True),
    Column("episode_title", String(200), nullable=True),
    Column("sent_at", String(T), nullable=False),
    Column("due_at", String(T), nullable=True),
    Column("answered_at", String(T), nullable=True),
    Column("closed_at", String(T), nullable=True),
    Index("ix_consult_state_due", "state", "due_at"),
    Index("ix_consult_hospital", "hospital", "specialism"),
    Index("ix_consult_practice", "practice"),
    Index("ix_consult_closed", "state", "closed_at"),
)

consult_declaration = Table(
    "consult_declaration",
    metadata,
    Column("consult_id", String(ID), primary_key=True),
    Column("quarter", String(6), nullable=False),
    Column("declared_at", String(T), nullable=False),
    Index("ix_consult_declaration_quarter", "quarter"),
)

declaration_batch = Table(
    "declaration_batch",
    metadata,
    Column("quarter", String(6), primary_key=True),
    Column("run_at", String(T), nullable=False),
    Column("consults", Integer, nullable=False),
)

conversation = Table(
    "conversation",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("practice", String(KEY), nullable=False),
    Column("practice_agb", String(8), nullable=True),
    Column("patient", String(ID), nullable=False),
    Column("subject", String(20), nullable=False),
    Column("opened_at", String(T), nullable=False),
    Index("ix_conversation_practice", "practice"),
)

conversation_message = Table(
    "conversation_message",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("conversation", String(ID), nullable=False),
    Column("sender", String(KEY), nullable=False),
    Column("sent_at", String(T), nullable=False),
    Column("reply_due", String(T), nullable=False),
    Column("replied_at", String(T), nullable=True),
    Index("ix_conversation_message_due", "replied_at", "reply_due"),
    Index("ix_conversation_message_conv", "conversation"),
)

referral_link = Table(
    "referral_link",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("practice", String(KEY), nullable=False),
    Column("practice_agb", String(8), nullable=True),
    Column("partner", String(KEY), nullable=False),
    Column("patient", String(ID), nullable=False),
    Column("state", String(8), nullable=False),
    Column("opened_at", String(T), nullable=False),
    Column("closed_at", String(T), nullable=True),
    Index("ix_referral_link_practice", "practice", "state"),
)
