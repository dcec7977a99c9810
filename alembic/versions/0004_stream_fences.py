"""Post-restore fence (docs/RESTORE.md, "After a restore: the fence"): stream_fences (streams refused writes because
the database is behind, or disagrees with, what was published beyond it) and fence_audit (every fence, heal and
declared loss).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stream_fences',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('published_sequence', sa.BigInteger(), nullable=False),
    sa.Column('receipt_sequence', sa.BigInteger(), nullable=True),
    sa.Column('receipt_hash', sa.LargeBinary(), nullable=True),
    sa.Column('state_root', sa.LargeBinary(), nullable=True),
    sa.Column('log_tree_size', sa.BigInteger(), nullable=True),
    sa.Column('log_root', sa.LargeBinary(), nullable=True),
    sa.Column('sources', sa.Text(), nullable=False),
    sa.Column('database_head', sa.BigInteger(), nullable=False),
    sa.Column('fenced_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("code IN ('STREAM_FENCED', 'STREAM_DIVERGED')", name=op.f('ck_stream_fences_code_known')),
    sa.CheckConstraint('octet_length(receipt_hash) = 32', name=op.f('ck_stream_fences_receipt_hash_len')),
    sa.CheckConstraint('octet_length(state_root) = 32', name=op.f('ck_stream_fences_state_root_len')),
    sa.CheckConstraint('octet_length(log_root) = 32', name=op.f('ck_stream_fences_log_root_len')),
    sa.CheckConstraint('(log_tree_size IS NULL) = (log_root IS NULL)',
                       name=op.f('ck_stream_fences_checkpoint_pair')),
    sa.CheckConstraint('published_sequence >= 1', name=op.f('ck_stream_fences_published_sequence_positive')),
    sa.CheckConstraint('(receipt_sequence IS NULL) = (receipt_hash IS NULL)',
                       name=op.f('ck_stream_fences_receipt_pair')),
    sa.PrimaryKeyConstraint('tenant_id', 'store_id', name=op.f('pk_stream_fences'))
    )
    op.create_table('fence_audit',
    sa.Column('audit_id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('code', sa.Text(), nullable=True),
    sa.Column('published_sequence', sa.BigInteger(), nullable=True),
    sa.Column('database_head', sa.BigInteger(), nullable=True),
    sa.Column('actor', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
              nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("action IN ('fenced', 'diverged', 'healed', 'loss_declared')",
                       name=op.f('ck_fence_audit_action_known')),
    sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_fence_audit'))
    )
    op.create_index('ix_fence_audit_tenant_id_store_id', 'fence_audit', ['tenant_id', 'store_id', 'audit_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_fence_audit_tenant_id_store_id', table_name='fence_audit')
    op.drop_table('fence_audit')
    op.drop_table('stream_fences')
