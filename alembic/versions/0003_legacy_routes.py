"""The original sequencer's routes (issue 18): schema ids, status, compatibility, description, updated_at and
created_by on event_schemas (`GET /api/v1/schemas/{schema_id}` and the status/delete routes), and the audit table of
public agent self-registration (`POST /api/v1/agents/register`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 17:10:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("event_schemas", sa.Column("id", UUID(as_uuid=True), nullable=False,
                                             server_default=sa.text("gen_random_uuid()")))
    op.add_column("event_schemas", sa.Column("status", sa.Text(), nullable=False, server_default="active"))
    op.add_column("event_schemas", sa.Column("compatibility", sa.Text(), nullable=False,
                                             server_default="backward"))
    op.add_column("event_schemas", sa.Column("description", sa.Text(), nullable=True))
    op.add_column("event_schemas", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                                             server_default=sa.text("now()")))
    op.add_column("event_schemas", sa.Column("created_by", sa.Text(), nullable=True))
    op.create_unique_constraint(op.f("uq_event_schemas_id"), "event_schemas", ["id"])
    op.create_check_constraint(op.f("ck_event_schemas_status_known"), "event_schemas",
                               "status IN ('active', 'deprecated', 'archived')")
    op.create_check_constraint(op.f("ck_event_schemas_compatibility_known"), "event_schemas",
                               "compatibility IN ('forward', 'backward', 'full', 'none')")
    op.create_table(
        "agent_registrations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("client_address", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("tenant_id", UUID(as_uuid=True), nullable=True),
        sa.Column("agent_id", UUID(as_uuid=True), nullable=True),
        sa.Column("key_id", UUID(as_uuid=True), nullable=True),
        sa.Column("details", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.CheckConstraint("outcome IN ('registered', 'refused')", name=op.f("ck_agent_registrations_outcome_known")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_registrations")),
    )
    op.create_index(op.f("ix_agent_registrations_attempted_at"), "agent_registrations", ["attempted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_registrations_attempted_at"), table_name="agent_registrations")
    op.drop_table("agent_registrations")
    op.drop_constraint(op.f("ck_event_schemas_compatibility_known"), "event_schemas", type_="check")
    op.drop_constraint(op.f("ck_event_schemas_status_known"), "event_schemas", type_="check")
    op.drop_constraint(op.f("uq_event_schemas_id"), "event_schemas", type_="unique")
    for column in ("created_by", "updated_at", "description", "compatibility", "status", "id"):
        op.drop_column("event_schemas", column)
