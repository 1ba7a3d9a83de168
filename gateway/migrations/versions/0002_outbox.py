"""Outbox: postbox items waiting for delivery to the practices' HIS (issue 7).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

One table, ``outbox_item`` (``gateway/outbox/schema.py`` describes every column). Items are written
in the transaction of the feedback or answer that causes them (:func:`gateway.outbox.enqueue`) and
sent by the delivery worker (``docs/postbox-delivery.md``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_item",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("practice", sa.String(8), nullable=False),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("delivered_ms", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("filing", sa.String(8), nullable=True),
        sa.Column("error_class", sa.String(12), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox_item"),
        sa.UniqueConstraint("id", name="outbox_item_id_key"),
    )
    op.create_index("ix_outbox_claim", "outbox_item", ["practice", "state", "seq"], unique=False)
    op.create_index("ix_outbox_patient", "outbox_item", ["practice", "patient_key", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_patient", table_name="outbox_item")
    op.drop_index("ix_outbox_claim", table_name="outbox_item")
    op.drop_table("outbox_item")
