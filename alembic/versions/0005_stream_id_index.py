"""Index streams by their VES stream id, so the public transparency-log paths (`/api/v1/ves/log/public/{stream_id}`,
LOG.md) find a stream from its hash with one index probe instead of a scan.

`streams` has one row per stream (not per event), so building the index is quick; ingest computes one SHA-256 in
the database per new stream, and head updates stay HOT (the indexed columns never change).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:10:00
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

STREAM_ID_SQL = "sha256('VES_STREAM_V1'::bytea || uuid_send(tenant_id) || uuid_send(store_id))"


def upgrade() -> None:
    op.execute(f"CREATE INDEX ix_streams_stream_id ON streams (({STREAM_ID_SQL}))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_streams_stream_id")
