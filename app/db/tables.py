"""SQLAlchemy Core tables: the single source of the schema, and Alembic's `target_metadata`.

Every hash is `bytea` with a length check; every table is keyed by `tenant_id` first so it can be distributed by
tenant (see DESIGN.md, "Processes and scale"). `events` is append-only (a trigger installed by the first migration
refuses UPDATE and DELETE).
"""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Identity
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import PrimaryKeyConstraint
from sqlalchemy import SmallInteger
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import func
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)


def _uuid(name: str, nullable: bool = False) -> Column:
    return Column(name, UUID(as_uuid=True), nullable=nullable)


def _ts(name: str, nullable: bool = True, default_now: bool = False) -> Column:
    return Column(
        name,
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if default_now else None,
    )


def _hash32(name: str, nullable: bool = False) -> tuple[Column, CheckConstraint]:
    return (
        Column(name, LargeBinary, nullable=nullable),
        CheckConstraint(f"octet_length({name}) = 32", name=f"{name}_len"),
    )


streams = Table(
    "streams",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("head_sequence", BigInteger, nullable=False, server_default=text("0")),
    Column("last_committed_sequence", BigInteger, nullable=False, server_default=text("0")),
    _ts("updated_at", nullable=False, default_now=True),
    PrimaryKeyConstraint("tenant_id", "store_id"),
    CheckConstraint("head_sequence >= 0", name="head_nonnegative"),
    CheckConstraint("last_committed_sequence <= head_sequence", name="committed_within_head"),
)
Index("ix_streams_stream_id",
      text("sha256(('\\x5645535f53545245414d5f5631'::bytea || uuid_send(tenant_id)) || uuid_send(store_id))"),
      _table=streams)
"""VES.md's stream id, for the public log paths (migration 0005; app.db.stream_logs.STREAM_ID_SQL)."""

_plain = _hash32("payload_plain_hash")
_cipher = _hash32("payload_cipher_hash")
_signing = _hash32("event_signing_hash")
_receipt = _hash32("receipt_hash")

events = Table(
    "events",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("sequence_number", BigInteger, nullable=False),
    _uuid("event_id"),
    _uuid("command_id", nullable=True),
    Column("ves_version", SmallInteger, nullable=False),
    _uuid("source_agent_id"),
    Column("agent_key_id", BigInteger, nullable=False),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("created_at_raw", Text, nullable=False),
    _ts("created_at"),
    _ts("sequenced_at", nullable=False),
    Column("payload_kind", SmallInteger, nullable=False),
    Column("payload", JSONB, nullable=True),
    Column("payload_encrypted", JSONB, nullable=True),
    _plain[0],
    _cipher[0],
    _signing[0],
    Column("agent_signature", LargeBinary, nullable=True),
    Column("base_version", BigInteger, nullable=True),
    Column("entity_version", BigInteger, nullable=False),
    _receipt[0],
    Column("sequencer_signature", LargeBinary, nullable=True),
    # The version (`sequencer_keys`) of the key that signed the receipt; rows from before key versions existed
    # (migration 0005) were signed by version 1. Meaningless (read as 0) when sequencer_signature is NULL.
    Column("sequencer_key_version", Integer, nullable=False, server_default=text("1")),
    PrimaryKeyConstraint("tenant_id", "store_id", "sequence_number"),
    UniqueConstraint("tenant_id", "store_id", "event_id"),
    _plain[1],
    _cipher[1],
    _signing[1],
    _receipt[1],
    CheckConstraint("sequence_number > 0", name="sequence_positive"),
    CheckConstraint("payload_kind IN (0, 1)", name="payload_kind_known"),
    CheckConstraint("ves_version IN (1, 2)", name="ves_version_known"),
    CheckConstraint(
        "agent_signature IS NULL OR octet_length(agent_signature) = 64", name="agent_signature_len"
    ),
    CheckConstraint(
        "sequencer_signature IS NULL OR octet_length(sequencer_signature) = 64", name="sequencer_signature_len"
    ),
    CheckConstraint("agent_key_id >= 0 AND agent_key_id <= 4294967295", name="agent_key_id_u32"),
    CheckConstraint("entity_version >= 1", name="entity_version_positive"),
)
Index(
    "idx_events_entity",
    events.c.tenant_id,
    events.c.store_id,
    events.c.entity_type,
    events.c.entity_id,
    events.c.sequence_number,
)
Index(
    "uq_events_command_id",
    events.c.tenant_id,
    events.c.store_id,
    events.c.command_id,
    unique=True,
    postgresql_where=events.c.command_id.isnot(None),
)

entity_versions = Table(
    "entity_versions",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("entity_type", Text, nullable=False),
    Column("entity_id", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "store_id", "entity_type", "entity_id"),
    CheckConstraint("version >= 0", name="version_nonnegative"),
)

agent_keys = Table(
    "agent_keys",
    metadata,
    _uuid("tenant_id"),
    _uuid("agent_id"),
    Column("key_id", BigInteger, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    _ts("valid_from"),
    _ts("valid_to"),
    _ts("revoked_at"),
    _ts("created_at", nullable=False, default_now=True),
    PrimaryKeyConstraint("tenant_id", "agent_id", "key_id"),
    CheckConstraint("octet_length(public_key) = 32", name="public_key_len"),
    CheckConstraint("key_id >= 0 AND key_id <= 4294967295", name="key_id_u32"),
    CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from", name="validity_ordered"),
)

_merkle = _hash32("merkle_root")
_prev = _hash32("prev_state_root")
_new = _hash32("new_state_root")

batch_commitments = Table(
    "batch_commitments",
    metadata,
    _uuid("batch_id"),
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("ves_version", SmallInteger, nullable=False, server_default=text("1")),
    Column("sequence_start", BigInteger, nullable=False),
    Column("sequence_end", BigInteger, nullable=False),
    Column("leaf_count", Integer, nullable=False),
    Column("padded_leaf_count", Integer, nullable=False),
    Column("tree_depth", SmallInteger, nullable=False),
    _merkle[0],
    _prev[0],
    _new[0],
    _ts("committed_at", nullable=False, default_now=True),
    Column("chain_id", BigInteger, nullable=True),
    Column("chain_tx_hash", LargeBinary, nullable=True),
    Column("chain_block_number", BigInteger, nullable=True),
    _ts("anchored_at"),
    PrimaryKeyConstraint("batch_id"),
    UniqueConstraint("tenant_id", "store_id", "sequence_start"),
    _merkle[1],
    _prev[1],
    _new[1],
    CheckConstraint("sequence_start >= 1 AND sequence_end >= sequence_start", name="range_valid"),
    CheckConstraint("leaf_count = sequence_end - sequence_start + 1", name="leaf_count_matches"),
    CheckConstraint("chain_tx_hash IS NULL OR octet_length(chain_tx_hash) = 32", name="chain_tx_hash_len"),
)
Index(
    "idx_commitments_unanchored",
    batch_commitments.c.tenant_id,
    batch_commitments.c.store_id,
    postgresql_where=batch_commitments.c.chain_tx_hash.is_(None),
)

api_keys = Table(
    "api_keys",
    metadata,
    _uuid("key_id"),
    Column("key_hash", LargeBinary, nullable=False),
    Column("key_prefix", Text, nullable=False),
    _uuid("tenant_id", nullable=True),
    Column("store_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    Column("permissions", Text, nullable=False),
    _uuid("agent_id", nullable=True),
    Column("rate_limit", Integer, nullable=True),
    Column("description", Text, nullable=True),
    _ts("created_at", nullable=False, default_now=True),
    _ts("revoked_at"),
    PrimaryKeyConstraint("key_id"),
    UniqueConstraint("key_hash"),
    CheckConstraint("permissions IN ('read', 'read_write', 'admin')", name="permissions_known"),
    CheckConstraint("octet_length(key_hash) = 32", name="key_hash_len"),
    CheckConstraint("rate_limit IS NULL OR rate_limit > 0", name="rate_limit_positive"),
    CheckConstraint("tenant_id IS NOT NULL OR permissions = 'admin'", name="tenant_or_global_admin"),
)
Index("ix_api_keys_tenant_id", api_keys.c.tenant_id)

event_schemas = Table(
    "event_schemas",
    metadata,
    _uuid("tenant_id"),
    Column("event_type", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("schema", JSONB, nullable=False),
    _ts("created_at", nullable=False, default_now=True),
    Column("id", UUID(as_uuid=True), nullable=False, server_default=text("gen_random_uuid()")),
    Column("description", Text, nullable=True),
    Column("compatibility", Text, nullable=False, server_default=text("'backward'")),
    PrimaryKeyConstraint("tenant_id", "event_type", "version"),
    UniqueConstraint("id"),
    CheckConstraint("version >= 1", name="version_positive"),
    CheckConstraint("compatibility IN ('forward', 'backward', 'full', 'none')", name="compatibility_known"),
)

# The receipt-signing keys this deployment has used (docs/KEYS.md). The running VES_SEQUENCER_SIGNING_KEY is
# registered at start-up (a new version when it changes); `retired_at` is the compromise cutoff set by
# `stateset-sequencer-admin retire-sequencer-key`: receipts of that version sequenced at or after it are not trusted.
sequencer_keys = Table(
    "sequencer_keys",
    metadata,
    Column("version", Integer, nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    _ts("valid_from", nullable=False, default_now=True),
    _ts("retired_at"),
    PrimaryKeyConstraint("version"),
    UniqueConstraint("public_key"),
    CheckConstraint("version >= 1", name="version_positive"),
    CheckConstraint("octet_length(public_key) = 32", name="public_key_len"),
)

# The per-stream transparency logs of LOG.md (docs/LOG.md "Storage"). `stream_logs` is how far a stream's log is
# built (`tree_size` leaves: events 1..tree_size) and its compact range (`frontier`: one 32-byte hash per set bit
# of tree_size, largest subtree first). `log_nodes` holds every perfect subtree hash of level >= LOG_NODES_MIN_LEVEL
# (subtrees of 8 events and up); smaller ones are folded from the event rows on read. `log_checkpoints` holds every checkpoint signed, a size
# at most once. log_nodes and log_checkpoints are append-only and tree_size never decreases (triggers installed
# by migration 0002).
stream_logs = Table(
    "stream_logs",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("tree_size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
    _ts("updated_at", nullable=False, default_now=True),
    PrimaryKeyConstraint("tenant_id", "store_id"),
    CheckConstraint("tree_size >= 0", name="tree_size_nonnegative"),
    CheckConstraint("octet_length(frontier) = 32 * bit_count(tree_size::bit(64))", name="frontier_matches_size"),
)

LOG_NODES_MIN_LEVEL = 3
"""Lowest level stored in log_nodes: one row per 8 events written (1/4 row per event in all), at most 2**3 - 1 event
rows folded per proof element on read (docs/LOG.md "Storage")."""

_node_hash = _hash32("hash")

log_nodes = Table(
    "log_nodes",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("level", SmallInteger, nullable=False),
    Column("node_index", BigInteger, nullable=False),
    _node_hash[0],
    PrimaryKeyConstraint("tenant_id", "store_id", "level", "node_index"),
    _node_hash[1],
    CheckConstraint(f"level BETWEEN {LOG_NODES_MIN_LEVEL} AND 62", name="level_stored"),
    CheckConstraint("node_index >= 0", name="node_index_nonnegative"),
)

_checkpoint_root = _hash32("root_hash")

log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("tree_size", BigInteger, nullable=False),
    _checkpoint_root[0],
    Column("note", Text, nullable=False),
    _ts("signed_at", nullable=False, default_now=True),
    PrimaryKeyConstraint("tenant_id", "store_id", "tree_size"),
    _checkpoint_root[1],
    CheckConstraint("tree_size >= 1", name="tree_size_positive"),
)

# Public agent self-registration attempts (POST /api/v1/agents/register), refused ones included; never a secret.
agent_registrations = Table(
    "agent_registrations",
    metadata,
    Column("id", BigInteger, Identity(), nullable=False),
    _ts("attempted_at", nullable=False, default_now=True),
    Column("outcome", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("client_address", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("request_id", Text, nullable=True),
    _uuid("tenant_id", nullable=True),
    _uuid("agent_id", nullable=True),
    _uuid("key_id", nullable=True),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    PrimaryKeyConstraint("id"),
    CheckConstraint("outcome IN ('registered', 'refused')", name="outcome_known"),
)
Index("ix_agent_registrations_attempted_at", agent_registrations.c.attempted_at)

# The original's schema lifecycle (issue 18: `PUT /api/v1/schemas/{schema_id}/status`): kept apart from the table's
# definition above, which issue 11 extends with the original's `id`, `description` and `compatibility`.
event_schemas.append_column(Column("status", Text, nullable=False, server_default=text("'active'")))
event_schemas.append_column(_ts("updated_at", nullable=False, default_now=True))
event_schemas.append_column(Column("created_by", Text, nullable=True))
event_schemas.append_constraint(
    CheckConstraint("status IN ('active', 'deprecated', 'archived')", name="status_known"))

_fence_receipt = _hash32("receipt_hash", nullable=True)
_fence_root = _hash32("state_root", nullable=True)
_fence_log_root = _hash32("log_root", nullable=True)

stream_fences = Table(
    "stream_fences",
    metadata,
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("code", Text, nullable=False),
    Column("published_sequence", BigInteger, nullable=False),
    Column("receipt_sequence", BigInteger),
    _fence_receipt[0],
    _fence_root[0],
    Column("log_tree_size", BigInteger),
    _fence_log_root[0],
    Column("sources", Text, nullable=False),
    Column("database_head", BigInteger, nullable=False),
    _ts("fenced_at", nullable=False, default_now=True),
    PrimaryKeyConstraint("tenant_id", "store_id"),
    _fence_receipt[1],
    _fence_root[1],
    _fence_log_root[1],
    CheckConstraint("code IN ('STREAM_FENCED', 'STREAM_DIVERGED')", name="code_known"),
    CheckConstraint("published_sequence >= 1", name="published_sequence_positive"),
    CheckConstraint("(receipt_sequence IS NULL) = (receipt_hash IS NULL)", name="receipt_pair"),
    CheckConstraint("(log_tree_size IS NULL) = (log_root IS NULL)", name="checkpoint_pair"),
)
"""Streams refused writes after a restore (docs/RESTORE.md, "After a restore: the fence"): the database head is
behind what was published beyond it (`STREAM_FENCED`), or disagrees with it (`STREAM_DIVERGED`). The ingest
transaction reads this table by primary key under the stream lock; a row exists only while the stream is fenced."""

fence_audit = Table(
    "fence_audit",
    metadata,
    Column("audit_id", BigInteger, primary_key=True, autoincrement=True),
    _uuid("tenant_id"),
    _uuid("store_id"),
    Column("action", Text, nullable=False),
    Column("code", Text),
    Column("published_sequence", BigInteger),
    Column("database_head", BigInteger),
    Column("actor", Text),
    Column("reason", Text),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _ts("recorded_at", nullable=False, default_now=True),
    CheckConstraint("action IN ('fenced', 'diverged', 'healed', 'loss_declared')", name="action_known"),
)
"""Every fence decision (fenced, diverged, healed, loss_declared), append-only by convention: who, why, when, and
the heads compared."""

Index("ix_fence_audit_tenant_id_store_id", fence_audit.c.tenant_id, fence_audit.c.store_id, fence_audit.c.audit_id)
