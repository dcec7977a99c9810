"""Storage of the post-restore fence (app/services/fence.py): `stream_fences` rows and the `fence_audit` trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from app.db.tables import events
from app.db.tables import fence_audit
from app.db.tables import log_checkpoints
from app.db.tables import stream_fences
from app.db.tables import streams


@dataclass(frozen=True)
class FenceRow:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    code: str
    published_sequence: int
    receipt_sequence: int | None
    receipt_hash: bytes | None
    state_root: bytes | None
    sources: str
    database_head: int
    log_tree_size: int | None = None
    log_root: bytes | None = None


_COLUMNS = (stream_fences.c.tenant_id, stream_fences.c.store_id, stream_fences.c.code,
            stream_fences.c.published_sequence, stream_fences.c.receipt_sequence, stream_fences.c.receipt_hash,
            stream_fences.c.state_root, stream_fences.c.sources, stream_fences.c.database_head,
            stream_fences.c.log_tree_size, stream_fences.c.log_root)

_READ_FENCE = sa.select(*_COLUMNS).where(stream_fences.c.tenant_id == sa.bindparam("t"),
                                         stream_fences.c.store_id == sa.bindparam("s"))


def _row(row) -> FenceRow:
    return FenceRow(row.tenant_id, row.store_id, row.code, row.published_sequence, row.receipt_sequence,
                    bytes(row.receipt_hash) if row.receipt_hash is not None else None,
                    bytes(row.state_root) if row.state_root is not None else None, row.sources, row.database_head,
                    row.log_tree_size, bytes(row.log_root) if row.log_root is not None else None)


def read_fence(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> FenceRow | None:
    """The stream's fence, or None: one primary-key lookup (the ingest transaction's check)."""
    row = conn.execute(_READ_FENCE, {"t": tenant_id, "s": store_id}).one_or_none()
    return _row(row) if row is not None else None


def list_fences(conn: Connection) -> list[FenceRow]:
    return [_row(r) for r in conn.execute(sa.select(*_COLUMNS).order_by(stream_fences.c.tenant_id,
                                                                          stream_fences.c.store_id))]


def fenced_streams(conn: Connection) -> set[tuple[uuid.UUID, uuid.UUID]]:
    return {(r.tenant_id, r.store_id) for r in conn.execute(sa.select(stream_fences.c.tenant_id,
                                                                        stream_fences.c.store_id))}


def save_fence(conn: Connection, fence: FenceRow) -> None:
    """Insert or replace the stream's fence."""
    values = {"tenant_id": fence.tenant_id, "store_id": fence.store_id, "code": fence.code,
              "published_sequence": fence.published_sequence, "receipt_sequence": fence.receipt_sequence,
              "receipt_hash": fence.receipt_hash, "state_root": fence.state_root, "sources": fence.sources,
              "database_head": fence.database_head, "log_tree_size": fence.log_tree_size, "log_root": fence.log_root}
    statement = insert(stream_fences).values(**values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[stream_fences.c.tenant_id, stream_fences.c.store_id],
        set_={name: statement.excluded[name] for name in values if name not in ("tenant_id", "store_id")}
        | {"fenced_at": sa.func.now()}))


def delete_fence(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> bool:
    result = conn.execute(stream_fences.delete().where(stream_fences.c.tenant_id == tenant_id,
                                                       stream_fences.c.store_id == store_id))
    return result.rowcount > 0


def audit(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, action: str, *, code: str | None = None,
          published_sequence: int | None = None, database_head: int | None = None, actor: str | None = None,
          reason: str | None = None, detail: dict | None = None) -> int:
    return conn.execute(fence_audit.insert().values(
        tenant_id=tenant_id, store_id=store_id, action=action, code=code, published_sequence=published_sequence,
        database_head=database_head, actor=actor, reason=reason, detail=detail or {},
    ).returning(fence_audit.c.audit_id)).scalar_one()


def audit_trail(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> list[dict]:
    rows = conn.execute(sa.select(fence_audit).where(fence_audit.c.tenant_id == tenant_id,
                                                     fence_audit.c.store_id == store_id)
                        .order_by(fence_audit.c.audit_id)).mappings().all()
    return [dict(r) for r in rows]


def stream_heads(conn: Connection) -> list[tuple[uuid.UUID, uuid.UUID, int, bytes | None]]:
    """Every stream with its head and the receipt hash of the event at the head (None for an empty stream)."""
    joined = streams.outerjoin(events, sa.and_(events.c.tenant_id == streams.c.tenant_id,
                                               events.c.store_id == streams.c.store_id,
                                               events.c.sequence_number == streams.c.head_sequence))
    rows = conn.execute(sa.select(streams.c.tenant_id, streams.c.store_id, streams.c.head_sequence,
                                  events.c.receipt_hash).select_from(joined)
                        .order_by(streams.c.tenant_id, streams.c.store_id))
    return [(r.tenant_id, r.store_id, int(r.head_sequence),
             bytes(r.receipt_hash) if r.receipt_hash is not None else None) for r in rows]


_RECEIPT_AT = sa.select(events.c.receipt_hash).where(events.c.tenant_id == sa.bindparam("t"),
                                                     events.c.store_id == sa.bindparam("s"),
                                                     events.c.sequence_number == sa.bindparam("n"))


def receipt_hash_at(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, sequence_number: int) -> bytes | None:
    value = conn.execute(_RECEIPT_AT, {"t": tenant_id, "s": store_id, "n": sequence_number}).scalar()
    return bytes(value) if value is not None else None


def latest_checkpoints(conn: Connection) -> dict[tuple[uuid.UUID, uuid.UUID], tuple[int, bytes, str]]:
    """Every stream's largest signed checkpoint: (tree_size, root_hash, signed note)."""
    rows = conn.execute(sa.select(log_checkpoints.c.tenant_id, log_checkpoints.c.store_id, log_checkpoints.c.tree_size,
                                  log_checkpoints.c.root_hash, log_checkpoints.c.note)
                        .distinct(log_checkpoints.c.tenant_id, log_checkpoints.c.store_id)
                        .order_by(log_checkpoints.c.tenant_id, log_checkpoints.c.store_id,
                                  log_checkpoints.c.tree_size.desc()))
    return {(r.tenant_id, r.store_id): (int(r.tree_size), bytes(r.root_hash), r.note) for r in rows}
