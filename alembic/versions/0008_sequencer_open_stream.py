"""`sequencer_open_stream`: take a stream's sequencing lock and read what sequencing needs of it, in one call.

Ingest's hot path (app/db/sequencing.py `open_stream`). One round trip instead of two: the function takes
`pg_advisory_xact_lock(lock_key)`, creates the `streams` row if missing, then returns the head, the log's size
and compact range, the already sequenced events among `event_ids`/`command_ids`, the current versions of the
given entities, and whether the stream has a fence (alembic 0004: ingest then reads the fence itself and refuses). The reads are statements after the lock inside a VOLATILE function, so under READ COMMITTED each
takes a snapshot after the lock was granted and sees the previous holder's commit (a read in the statement that
waited for the lock would not). Parameters are qualified with the function's name (message-db's convention).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:40:00
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION sequencer_open_stream(tenant_id uuid, store_id uuid, lock_key bigint, event_ids uuid[],
                                      command_ids uuid[], entity_types text[], entity_ids text[])
RETURNS TABLE (kind integer, n bigint, found_event_id uuid, found_command_id uuid, a bytea, b bytea, c bytea,
               d bytea, at timestamptz, found_entity_type text, found_entity_id text, key_version integer)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
  PERFORM pg_advisory_xact_lock(sequencer_open_stream.lock_key);
  INSERT INTO streams (tenant_id, store_id)
    VALUES (sequencer_open_stream.tenant_id, sequencer_open_stream.store_id)
    ON CONFLICT (tenant_id, store_id) DO NOTHING;
  RETURN QUERY
    SELECT 0, s.head_sequence, NULL::uuid, NULL::uuid, NULL::bytea, NULL::bytea, NULL::bytea, NULL::bytea,
           NULL::timestamptz, NULL::text, NULL::text, NULL::integer
      FROM streams s
     WHERE s.tenant_id = sequencer_open_stream.tenant_id AND s.store_id = sequencer_open_stream.store_id
    UNION ALL
    SELECT 1, l.tree_size, NULL, NULL, l.frontier, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM stream_logs l
     WHERE l.tenant_id = sequencer_open_stream.tenant_id AND l.store_id = sequencer_open_stream.store_id
    UNION ALL
    SELECT 2, e.sequence_number, e.event_id, e.command_id, e.event_signing_hash, e.agent_signature,
           e.receipt_hash, e.sequencer_signature, e.sequenced_at, NULL, NULL, e.sequencer_key_version
      FROM events e
     WHERE e.tenant_id = sequencer_open_stream.tenant_id AND e.store_id = sequencer_open_stream.store_id
       AND (e.event_id = ANY(sequencer_open_stream.event_ids)
            OR e.command_id = ANY(sequencer_open_stream.command_ids))
    UNION ALL
    SELECT 3, v.version, NULL, NULL, NULL, NULL, NULL, NULL, NULL, v.entity_type, v.entity_id, NULL
      FROM unnest(sequencer_open_stream.entity_types, sequencer_open_stream.entity_ids) AS w(entity_type, entity_id)
      JOIN entity_versions v ON v.tenant_id = sequencer_open_stream.tenant_id
       AND v.store_id = sequencer_open_stream.store_id AND v.entity_type = w.entity_type
       AND v.entity_id = w.entity_id
    UNION ALL
    SELECT 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM stream_fences f
     WHERE f.tenant_id = sequencer_open_stream.tenant_id AND f.store_id = sequencer_open_stream.store_id;
END
$$
"""


def upgrade() -> None:
    op.execute(FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS sequencer_open_stream(uuid, uuid, bigint, uuid[], uuid[], text[], text[])")
