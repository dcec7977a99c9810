"""Receipt key versions (issue 11, docs/KEYS.md).

`sequencer_keys`: every receipt-signing key this deployment has used, by version. `events.sequencer_key_version`:
the version that signed each receipt; existing rows get 1 through the column default (adding a column with a
default rewrites no row, so the append-only trigger is not involved). The schema columns issue 11 also needs
(`event_schemas.id`, `description`, `compatibility`) are added by migration 0003 (legacy routes).

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sequencer_keys',
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('version >= 1', name=op.f('ck_sequencer_keys_version_positive')),
        sa.CheckConstraint('octet_length(public_key) = 32', name=op.f('ck_sequencer_keys_public_key_len')),
        sa.PrimaryKeyConstraint('version', name=op.f('pk_sequencer_keys')),
        sa.UniqueConstraint('public_key', name=op.f('uq_sequencer_keys_public_key')),
    )
    op.add_column('events', sa.Column('sequencer_key_version', sa.Integer(), server_default=sa.text('1'),
                                      nullable=False))


def downgrade() -> None:
    op.drop_column('events', 'sequencer_key_version')
    op.drop_table('sequencer_keys')
