"""Consult workflow: consults, declarations per quarter, conversations, referral links (issue 6).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Builds exactly the tables of ``gateway/consult/schema.py`` (which describes every column).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sa.String
T, ID, KEY = 26, 64, 40


def upgrade() -> None:
    op.create_table(
        "consult",
        sa.Column("id", S(ID), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", S(24), nullable=False),
        sa.Column("practice", S(KEY), nullable=False),
        sa.Column("practice_agb", S(8), nullable=True),
        sa.Column("hospital", S(KEY), nullable=False),
        sa.Column("specialism", S(ID), nullable=True),
        sa.Column("specialism_name", S(200), nullable=True),
        sa.Column("specialist", S(ID), nullable=True),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("patient", S(ID), nullable=False),
        sa.Column("service_request", S(ID), nullable=False),
        sa.Column("uzovi", S(4), nullable=True),
        sa.Column("episode", S(ID), nullable=True),
        sa.Column("episode_icpc", S(10), nullable=True),
        sa.Column("episode_title", S(200), nullable=True),
        sa.Column("sent_at", S(T), nullable=False),
        sa.Column("due_at", S(T), nullable=True),
        sa.Column("answered_at", S(T), nullable=True),
        sa.Column("closed_at", S(T), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consult"),
    )
    op.create_index("ix_consult_state_due", "consult", ["state", "due_at"])
    op.create_index("ix_consult_hospital", "consult", ["hospital", "specialism"])
    op.create_index("ix_consult_practice", "consult", ["practice"])
    op.create_index("ix_consult_closed", "consult", ["state", "closed_at"])
    op.create_table(
        "consult_declaration",
        sa.Column("consult_id", S(ID), nullable=False),
        sa.Column("quarter", S(6), nullable=False),
        sa.Column("declared_at", S(T), nullable=False),
        sa.PrimaryKeyConstraint("consult_id", name="pk_consult_declaration"),
    )
    op.create_index("ix_consult_declaration_quarter", "consult_declaration", ["quarter"])
    op.create_table(
        "declaration_batch",
        sa.Column("quarter", S(6), nullable=False),
        sa.Column("run_at", S(T), nullable=False),
        sa.Column("consults", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("quarter", name="pk_declaration_batch"),
    )
    op.create_table(
        "conversation",
        sa.Column("id", S(ID), nullable=False),
        sa.Column("practice", S(KEY), nullable=False),
        sa.Column("practice_agb", S(8), nullable=True),
        sa.Column("patient", S(ID), nullable=False),
        sa.Column("subject", S(20), nullable=False),
        sa.Column("opened_at", S(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversation"),
    )
    op.create_index("ix_conversation_practice", "conversation", ["practice"])
    op.create_table(
        "conversation_message",
        sa.Column("id", S(ID), nullable=False),
        sa.Column("conversation", S(ID), nullable=False),
        sa.Column("sender", S(KEY), nullable=False),
        sa.Column("sent_at", S(T), nullable=False),
        sa.Column("reply_due", S(T), nullable=False),
        sa.Column("replied_at", S(T), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conversation_message"),
    )
    op.create_index("ix_conversation_message_due", "conversation_message", ["replied_at", "reply_due"])
    op.create_index("ix_conversation_message_conv", "conversation_message", ["conversation"])
    op.create_table(
        "referral_link",
        sa.Column("id", S(ID), nullable=False),
        sa.Column("practice", S(KEY), nullable=False),
        sa.Column("practice_agb", S(8), nullable=True),
        sa.Column("partner", S(KEY), nullable=False),
        sa.Column("patient", S(ID), nullable=False),
        sa.Column("state", S(8), nullable=False),
        sa.Column("opened_at", S(T), nullable=False),
        sa.Column("closed_at", S(T), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_referral_link"),
    )
    op.create_index("ix_referral_link_practice", "referral_link", ["practice", "state"])


def downgrade() -> None:
    op.drop_index("ix_referral_link_practice", table_name="referral_link")
    op.drop_table("referral_link")
    op.drop_index("ix_conversation_message_conv", table_name="conversation_message")
    op.drop_index("ix_conversation_message_due", table_name="conversation_message")
    op.drop_table("conversation_message")
    op.drop_index("ix_conversation_practice", table_name="conversation")
    op.drop_table("conversation")
    op.drop_table("declaration_batch")
    op.drop_index("ix_consult_declaration_quarter", table_name="consult_declaration")
    op.drop_table("consult_declaration")
    op.drop_index("ix_consult_closed", table_name="consult")
    op.drop_index("ix_consult_practice", table_name="consult")
    op.drop_index("ix_consult_hospital", table_name="consult")
    op.drop_index("ix_consult_state_due", table_name="consult")
    op.drop_table("consult")
