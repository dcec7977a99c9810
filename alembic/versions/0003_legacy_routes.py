"""The original sequencer's routes (issue 18): the schema lifecycle (`status`, `updated_at`, `created_by` on
event_schemas, for `PUT /api/v1/schemas/{schema_id}/status`), the schema `id`, `description` and `compatibility` the
by-id routes need (the same columns and constraints as issue 11's migration, added only if absent), and the audit
table of public agent self-registration (`POST /api/v1/agents/register`).

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

SHARED_WITH_ISSUE_11 = [
    "ALTER TABLE event_schemas ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid()",
    "ALTER TABLE event_schemas ADD COLUMN IF NOT EXISTS description text",
    "ALTER TABLE event_schemas ADD COLUMN IF NOT EXISTS compatibility text NOT NULL DEFAULT 'backward'",
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'uq_event_schemas_id') THEN
            ALTER TABLE event_schemas ADD CONSTRAINT uq_event_schemas_id UNIQUE (id);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'ck_event_schemas_compatibility_known') THEN
            ALTER TABLE event_schemas ADD CONSTRAINT ck_event_schemas_compatibility_known
                CHECK (compatibility IN ('forward', 'backward', 'full', 'none'));
        END IF;
    END $$""",
]
"""Issue 11's migration adds exactly these; when it runs first, this one leaves them alone."""


def upgrade() -> None:
    for statement in SHARED_WITH_ISSUE_11:
        op.execute(statement)
    op.add_column("event_schemas", sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'active'")))
    op.add_column("event_schemas", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                                             server_default=sa.text("now()")))
    op.add_column("event_schemas", sa.Column("created_by", sa.Text(), nullable=True))
    op.create_check_constraint(op.f("ck_event_schemas_status_known"), "event_schemas",
                               "status IN ('active', 'deprecated', 'archived')")
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
    """Leaves `id`, `description` and `compatibility` to issue 11's migration when that one is in the chain."""
    op.drop_index(op.f("ix_agent_registrations_attempted_at"), table_name="agent_registrations")
    op.drop_table("agent_registrations")
    op.drop_constraint(op.f("ck_event_schemas_status_known"), "event_schemas", type_="check")
    for column in ("created_by", "updated_at", "status"):
        op.drop_column("event_schemas", column)
    if not _issue_11_migration_present():
        op.execute("ALTER TABLE event_schemas DROP CONSTRAINT IF EXISTS ck_event_schemas_compatibility_known")
        op.execute("ALTER TABLE event_schemas DROP CONSTRAINT IF EXISTS uq_event_schemas_id")
        for column in ("compatibility", "description", "id"):
            op.execute(f"ALTER TABLE event_schemas DROP COLUMN IF EXISTS {column}")


def _issue_11_migration_present() -> bool:
    """Whether the chain holds issue 11's migration (it created the shared columns and drops them itself)."""
    from alembic import context

    script = context.script if hasattr(context, "script") else None
    if script is None:
        return False
    return any(rev.revision != revision and "compatibility_known" in open(rev.path, encoding="utf-8").read()
               for rev in script.walk_revisions())
