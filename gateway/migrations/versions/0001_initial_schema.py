"""Initial schema: resources, history, search index, tenancy, conditional keys, assertion ids, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The audit log is append-only (NEN 7513 §"integriteit"): triggers refuse UPDATE and DELETE on
``audit_log`` and ``audit_patient`` on both databases. The hash chain (``gateway/audit.py``) makes any
change made around the triggers (a superuser, an edited file) visible to ``hisgw audit verify``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sa.String


def _table(
    name: str,
    columns: list[sa.Column],
    pk: tuple[str, ...] | None,
    indexes: dict[str, list[str]],
    *extra: sa.Constraint,
) -> None:
    constraints = [sa.PrimaryKeyConstraint(*pk, name=f"pk_{name}")] if pk else []
    op.create_table(name, *columns, *constraints, *extra)
    for index, cols in indexes.items():
        op.create_index(index, name, cols, unique=False)


def _res() -> list[sa.Column]:
    return [sa.Column("res_type", S(40), nullable=False), sa.Column("res_id", S(64), nullable=False)]


def upgrade() -> None:
    _table(
        "resource",
        [
            *_res(),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("last_updated", S(26), nullable=False),
            sa.Column("deleted", sa.Boolean(), nullable=False),
            sa.Column("creator_org", S(80), nullable=False),
            sa.Column("body", sa.LargeBinary(), nullable=True),
        ],
        ("res_type", "res_id"),
        {"ix_resource_updated": ["res_type", "last_updated"]},
    )
    _table(
        "resource_history",
        [
            *_res(),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("last_updated", S(26), nullable=False),
            sa.Column("method", S(8), nullable=False),
            sa.Column("deleted", sa.Boolean(), nullable=False),
            sa.Column("body", sa.LargeBinary(), nullable=True),
        ],
        ("res_type", "res_id", "version"),
        {"ix_history_updated": ["res_type", "last_updated"]},
    )
    _table(
        "idx_token",
        [
            *_res(),
            sa.Column("param", S(64), nullable=False),
            sa.Column("system", S(255), nullable=False),
            sa.Column("code", S(255), nullable=False),
        ],
        None,
        {"ix_token_lookup": ["res_type", "param", "code", "system"], "ix_token_res": ["res_type", "res_id"]},
    )
    _table(
        "idx_reference",
        [
            *_res(),
            sa.Column("param", S(64), nullable=False),
            sa.Column("target_type", S(40), nullable=False),
            sa.Column("target_id", S(64), nullable=False),
        ],
        None,
        {
            "ix_reference_lookup": ["res_type", "param", "target_id", "target_type"],
            "ix_reference_target": ["target_type", "target_id"],
            "ix_reference_res": ["res_type", "res_id"],
        },
    )
    _table(
        "idx_date",
        [
            *_res(),
            sa.Column("param", S(64), nullable=False),
            sa.Column("lo", S(26), nullable=False),
            sa.Column("hi", S(26), nullable=False),
        ],
        None,
        {"ix_date_lookup": ["res_type", "param", "lo", "hi"], "ix_date_res": ["res_type", "res_id"]},
    )
    _table(
        "idx_string",
        [
            *_res(),
            sa.Column("param", S(64), nullable=False),
            sa.Column("folded", S(200), nullable=False),
            sa.Column("exact", S(200), nullable=False),
        ],
        None,
        {"ix_string_lookup": ["res_type", "param", "folded"], "ix_string_res": ["res_type", "res_id"]},
    )
    _table(
        "participant",
        [*_res(), sa.Column("org", S(80), nullable=False), sa.Column("source", S(8), nullable=False)],
        ("res_type", "res_id", "org", "source"),
        {"ix_participant_org": ["org", "res_type"]},
    )
    _table(
        "conditional_key",
        [
            sa.Column("res_type", S(40), nullable=False),
            sa.Column("org", S(80), nullable=False),
            sa.Column("criteria", S(64), nullable=False),
            sa.Column("res_id", S(64), nullable=False),
        ],
        ("res_type", "org", "criteria"),
        {"ix_conditional_res": ["res_type", "res_id"]},
    )
    _table(
        "token_jti",
        [
            sa.Column("client_id", S(128), nullable=False),
            sa.Column("jti", S(255), nullable=False),
            sa.Column("exp", sa.Integer(), nullable=False),
        ],
        ("client_id", "jti"),
        {"ix_jti_exp": ["exp"]},
    )
    _table(
        "audit_log",
        [
            sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("event_id", S(64), nullable=False),
            sa.Column("recorded", S(26), nullable=False),
            sa.Column("org", S(80), nullable=False),
            sa.Column("action", S(1), nullable=False),
            sa.Column("outcome", S(2), nullable=False),
            sa.Column("body", sa.LargeBinary(), nullable=False),
            sa.Column("prev_hash", S(64), nullable=False),
            sa.Column("hash", S(64), nullable=False),
        ],
        ("seq",),
        {"ix_audit_org_recorded": ["org", "recorded"]},
        sa.UniqueConstraint("event_id", name="audit_log_event_id_key"),
    )
    _table(
        "audit_patient",
        [sa.Column("seq", sa.Integer(), nullable=False), sa.Column("patient", S(105), nullable=False)],
        ("seq", "patient"),
        {"ix_audit_patient": ["patient"]},
    )
    _table(
        "audit_head",
        [
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("hash", S(64), nullable=False),
        ],
        ("id",),
        {},
    )
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)").bindparams(h="0" * 64))
    _append_only_triggers()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION hisgw_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""")
        for table in ("audit_log", "audit_patient"):
            op.execute(f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                           FOR EACH ROW EXECUTE FUNCTION hisgw_audit_append_only()""")
            op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                           FOR EACH STATEMENT EXECUTE FUNCTION hisgw_audit_append_only()""")
    else:
        for table in ("audit_log", "audit_patient"):
            for event in ("UPDATE", "DELETE"):
                op.execute(f"""CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}
                               BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""")


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_patient",
        "audit_log",
        "token_jti",
        "conditional_key",
        "participant",
        "idx_string",
        "idx_date",
        "idx_reference",
        "idx_token",
        "resource_history",
        "resource",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hisgw_audit_append_only()")
