"""Initial schema: streams, events (append-only), entity_versions, agent_keys, batch_commitments, api_keys,
event_schemas.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 03:33:05.371101
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION refuse_event_mutation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_mutation()
"""


def upgrade() -> None:
    op.create_table('agent_keys',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('agent_id', sa.UUID(), nullable=False),
    sa.Column('key_id', sa.BigInteger(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('key_id >= 0 AND key_id <= 4294967295', name=op.f('ck_agent_keys_key_id_u32')),
    sa.CheckConstraint('octet_length(public_key) = 32', name=op.f('ck_agent_keys_public_key_len')),
    sa.CheckConstraint('valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from', name=op.f('ck_agent_keys_validity_ordered')),
    sa.PrimaryKeyConstraint('tenant_id', 'agent_id', 'key_id', name=op.f('pk_agent_keys'))
    )
    op.create_table('api_keys',
    sa.Column('key_id', sa.UUID(), nullable=False),
    sa.Column('key_hash', sa.LargeBinary(), nullable=False),
    sa.Column('key_prefix', sa.Text(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('store_ids', postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('permissions', sa.Text(), nullable=False),
    sa.Column('agent_id', sa.UUID(), nullable=True),
    sa.Column('rate_limit', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("permissions IN ('read', 'read_write', 'admin')", name=op.f('ck_api_keys_permissions_known')),
    sa.CheckConstraint("tenant_id IS NOT NULL OR permissions = 'admin'", name=op.f('ck_api_keys_tenant_or_global_admin')),
    sa.CheckConstraint('octet_length(key_hash) = 32', name=op.f('ck_api_keys_key_hash_len')),
    sa.CheckConstraint('rate_limit IS NULL OR rate_limit > 0', name=op.f('ck_api_keys_rate_limit_positive')),
    sa.PrimaryKeyConstraint('key_id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_index('ix_api_keys_tenant_id', 'api_keys', ['tenant_id'], unique=False)
    op.create_table('batch_commitments',
    sa.Column('batch_id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('ves_version', sa.SmallInteger(), server_default=sa.text('1'), nullable=False),
    sa.Column('sequence_start', sa.BigInteger(), nullable=False),
    sa.Column('sequence_end', sa.BigInteger(), nullable=False),
    sa.Column('leaf_count', sa.Integer(), nullable=False),
    sa.Column('padded_leaf_count', sa.Integer(), nullable=False),
    sa.Column('tree_depth', sa.SmallInteger(), nullable=False),
    sa.Column('merkle_root', sa.LargeBinary(), nullable=False),
    sa.Column('prev_state_root', sa.LargeBinary(), nullable=False),
    sa.Column('new_state_root', sa.LargeBinary(), nullable=False),
    sa.Column('committed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=True),
    sa.Column('chain_tx_hash', sa.LargeBinary(), nullable=True),
    sa.Column('chain_block_number', sa.BigInteger(), nullable=True),
    sa.Column('anchored_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('chain_tx_hash IS NULL OR octet_length(chain_tx_hash) = 32', name=op.f('ck_batch_commitments_chain_tx_hash_len')),
    sa.CheckConstraint('leaf_count = sequence_end - sequence_start + 1', name=op.f('ck_batch_commitments_leaf_count_matches')),
    sa.CheckConstraint('octet_length(merkle_root) = 32', name=op.f('ck_batch_commitments_merkle_root_len')),
    sa.CheckConstraint('octet_length(new_state_root) = 32', name=op.f('ck_batch_commitments_new_state_root_len')),
    sa.CheckConstraint('octet_length(prev_state_root) = 32', name=op.f('ck_batch_commitments_prev_state_root_len')),
    sa.CheckConstraint('sequence_start >= 1 AND sequence_end >= sequence_start', name=op.f('ck_batch_commitments_range_valid')),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_batch_commitments')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'sequence_start', name=op.f('uq_batch_commitments_tenant_id_store_id_sequence_start'))
    )
    op.create_index('idx_commitments_unanchored', 'batch_commitments', ['tenant_id', 'store_id'], unique=False, postgresql_where=sa.text('chain_tx_hash IS NULL'))
    op.create_table('entity_versions',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.Text(), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('version >= 0', name=op.f('ck_entity_versions_version_nonnegative')),
    sa.PrimaryKeyConstraint('tenant_id', 'store_id', 'entity_type', 'entity_id', name=op.f('pk_entity_versions'))
    )
    op.create_table('event_schemas',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('schema', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_event_schemas_version_positive')),
    sa.PrimaryKeyConstraint('tenant_id', 'event_type', 'version', name=op.f('pk_event_schemas'))
    )
    op.create_table('events',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('sequence_number', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('command_id', sa.UUID(), nullable=True),
    sa.Column('ves_version', sa.SmallInteger(), nullable=False),
    sa.Column('source_agent_id', sa.UUID(), nullable=False),
    sa.Column('agent_key_id', sa.BigInteger(), nullable=False),
    sa.Column('entity_type', sa.Text(), nullable=False),
    sa.Column('entity_id', sa.Text(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('created_at_raw', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sequenced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payload_kind', sa.SmallInteger(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('payload_encrypted', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('payload_plain_hash', sa.LargeBinary(), nullable=False),
    sa.Column('payload_cipher_hash', sa.LargeBinary(), nullable=False),
    sa.Column('event_signing_hash', sa.LargeBinary(), nullable=False),
    sa.Column('agent_signature', sa.LargeBinary(), nullable=True),
    sa.Column('base_version', sa.BigInteger(), nullable=True),
    sa.Column('entity_version', sa.BigInteger(), nullable=False),
    sa.Column('receipt_hash', sa.LargeBinary(), nullable=False),
    sa.Column('sequencer_signature', sa.LargeBinary(), nullable=True),
    sa.CheckConstraint('agent_key_id >= 0 AND agent_key_id <= 4294967295', name=op.f('ck_events_agent_key_id_u32')),
    sa.CheckConstraint('agent_signature IS NULL OR octet_length(agent_signature) = 64', name=op.f('ck_events_agent_signature_len')),
    sa.CheckConstraint('entity_version >= 1', name=op.f('ck_events_entity_version_positive')),
    sa.CheckConstraint('octet_length(event_signing_hash) = 32', name=op.f('ck_events_event_signing_hash_len')),
    sa.CheckConstraint('octet_length(payload_cipher_hash) = 32', name=op.f('ck_events_payload_cipher_hash_len')),
    sa.CheckConstraint('octet_length(payload_plain_hash) = 32', name=op.f('ck_events_payload_plain_hash_len')),
    sa.CheckConstraint('octet_length(receipt_hash) = 32', name=op.f('ck_events_receipt_hash_len')),
    sa.CheckConstraint('payload_kind IN (0, 1)', name=op.f('ck_events_payload_kind_known')),
    sa.CheckConstraint('sequence_number > 0', name=op.f('ck_events_sequence_positive')),
    sa.CheckConstraint('sequencer_signature IS NULL OR octet_length(sequencer_signature) = 64', name=op.f('ck_events_sequencer_signature_len')),
    sa.CheckConstraint('ves_version IN (1, 2)', name=op.f('ck_events_ves_version_known')),
    sa.PrimaryKeyConstraint('tenant_id', 'store_id', 'sequence_number', name=op.f('pk_events')),
    sa.UniqueConstraint('tenant_id', 'store_id', 'event_id', name=op.f('uq_events_tenant_id_store_id_event_id'))
    )
    op.create_index('idx_events_entity', 'events', ['tenant_id', 'store_id', 'entity_type', 'entity_id', 'sequence_number'], unique=False)
    op.create_index('uq_events_command_id', 'events', ['tenant_id', 'store_id', 'command_id'], unique=True, postgresql_where=sa.text('command_id IS NOT NULL'))
    op.create_table('streams',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('store_id', sa.UUID(), nullable=False),
    sa.Column('head_sequence', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('last_committed_sequence', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('head_sequence >= 0', name=op.f('ck_streams_head_nonnegative')),
    sa.CheckConstraint('last_committed_sequence <= head_sequence', name=op.f('ck_streams_committed_within_head')),
    sa.PrimaryKeyConstraint('tenant_id', 'store_id', name=op.f('pk_streams'))
    )
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(APPEND_ONLY_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
    op.execute("DROP FUNCTION IF EXISTS refuse_event_mutation()")
    op.drop_table('streams')
    op.drop_index('uq_events_command_id', table_name='events', postgresql_where=sa.text('command_id IS NOT NULL'))
    op.drop_index('idx_events_entity', table_name='events')
    op.drop_table('events')
    op.drop_table('event_schemas')
    op.drop_table('entity_versions')
    op.drop_index('idx_commitments_unanchored', table_name='batch_commitments', postgresql_where=sa.text('chain_tx_hash IS NULL'))
    op.drop_table('batch_commitments')
    op.drop_index('ix_api_keys_tenant_id', table_name='api_keys')
    op.drop_table('api_keys')
    op.drop_table('agent_keys')
