"""Storage of the per-stream transparency logs (LOG.md; design in docs/LOG.md "Storage").

Every function takes a `Connection` inside the caller's transaction and never commits. Hashes are raw bytes. The
rules the callers MUST keep (app/services/stream_logs.py does):

- `save_log_growth` runs under the stream's sequencing lock (`locks.stream_lock_key`), in the transaction that
  inserted the events it logs (ingest) or after reading them (backfill), and only extends a log whose
  `tree_size` is what the caller read: it refuses otherwise (`LogWriteConflict`). `log_nodes`' primary key and
  the grow-only trigger on `stream_logs` are the backstops.
- `insert_checkpoint` runs under `locks.checkpoint_lock_key`; the trigger refusing a size at or below one already
  stored is the backstop.

Each read is one statement touching O(log n) rows: `read_log_nodes` selects the requested perfect subtrees of
level >= `LOG_NODES_MIN_LEVEL` from `log_nodes` and the requested event rows from `events` (leaves and the small
subtrees below that level are not stored: they are recomputed from the event rows — the log's entries *are* the
events).
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from app.db.engine import dbapi_cursor
from app.db.tables import events
from app.db.tables import log_checkpoints


class LogWriteConflict(RuntimeError):
    """The stream's log is not at the size the writer read (a caller broke the locking rule). The transaction
    MUST be rolled back; ingest answers it like a sequencing backstop (409 SEQUENCE_CONFLICT)."""


@dataclass(frozen=True)
class LogStatus:
    """How far a stream's log is built (`tree_size` leaves, compact range `frontier`) against its `head_sequence`,
    read in one snapshot. `tree_size == head_sequence` once the log is complete, and ingest keeps it so."""

    tree_size: int
    frontier: bytes
    head_sequence: int

    @property
    def complete(self) -> bool:
        return self.tree_size == self.head_sequence


@dataclass(frozen=True)
class EntryRow:
    """What an event contributes to its log entry (VES.md `VES_LEAF_V1`); `agent_signature` None if unsigned."""

    sequence_number: int
    event_signing_hash: bytes
    agent_signature: bytes | None


@dataclass(frozen=True)
class CheckpointRow:
    tree_size: int
    root_hash: bytes
    note: str
    signed_at: datetime.datetime


def _uuid_params(statement: sa.TextClause) -> sa.TextClause:
    return statement.bindparams(sa.bindparam("t", type_=sa.Uuid), sa.bindparam("s", type_=sa.Uuid))


_READ_FRONTIER = "SELECT tree_size, frontier FROM stream_logs WHERE tenant_id = %(t)s AND store_id = %(s)s"


def _dbapi_execute(conn: Connection, statement: str, params: dict) -> tuple | None:
    """One statement on the transaction's own psycopg2 cursor; the first row or None. The ingest path's two log
    statements skip SQLAlchemy's per-call execution overhead this way (~35 us each, measured), as `events.py` does
    for its inserts."""
    with dbapi_cursor(conn) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()


def read_log_frontier(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> tuple[int, bytes] | None:
    """`(tree_size, frontier)` of the stream's log, or None when it has no log row yet."""
    row = _dbapi_execute(conn, _READ_FRONTIER, {"t": str(tenant_id), "s": str(store_id)})
    return None if row is None else (int(row[0]), bytes(row[1]))


_NODES_CTE = (
    "WITH nodes AS (INSERT INTO log_nodes (tenant_id, store_id, level, node_index, hash) "
    "SELECT CAST(%(t)s AS uuid), CAST(%(s)s AS uuid), n.level, n.node_index, n.hash "
    "FROM unnest(CAST(%(levels)s AS smallint[]), CAST(%(indexes)s AS bigint[]), CAST(%(hashes)s AS bytea[])) "
    "AS n(level, node_index, hash)) "
)
_CREATE_LOG = (_NODES_CTE + "INSERT INTO stream_logs (tenant_id, store_id, tree_size, frontier) "
               "VALUES (%(t)s, %(s)s, %(size)s, %(frontier)s) ON CONFLICT (tenant_id, store_id) DO NOTHING RETURNING 1")
_GROW_LOG = (_NODES_CTE + "UPDATE stream_logs SET tree_size = %(size)s, frontier = %(frontier)s, updated_at = now() "
             "WHERE tenant_id = %(t)s AND store_id = %(s)s AND tree_size = %(previous)s RETURNING 1")


def save_log_growth(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, previous_size: int,
                    tree_size: int, frontier: bytes, nodes: Sequence[tuple[int, int, bytes]]) -> None:
    """Grow the log from `previous_size` to `tree_size` leaves: insert `nodes` (`(level, index, hash)`, level
    >= LOG_NODES_MIN_LEVEL) and store the new compact range, in one statement. Raises LogWriteConflict if the
    stored size is not `previous_size` (a missing row counts as size 0)."""
    params = {"t": str(tenant_id), "s": str(store_id), "size": tree_size, "frontier": frontier,
              "previous": previous_size, "levels": [node[0] for node in nodes],
              "indexes": [node[1] for node in nodes], "hashes": [node[2] for node in nodes]}
    if _dbapi_execute(conn, _CREATE_LOG if previous_size == 0 else _GROW_LOG, params) is None:
        raise LogWriteConflict(f"The stream's log is not at the size read (expected: {previous_size}; "
                               f"tenant_id: {tenant_id}, store_id: {store_id})")


_READ_STATUS = _uuid_params(sa.text(
    "SELECT coalesce(l.tree_size, 0) AS tree_size, coalesce(l.frontier, ''::bytea) AS frontier, "
    "coalesce(s.head_sequence, 0) AS head_sequence "
    "FROM (SELECT CAST(:t AS uuid) AS tenant_id, CAST(:s AS uuid) AS store_id) AS k "
    "LEFT JOIN streams s ON s.tenant_id = k.tenant_id AND s.store_id = k.store_id "
    "LEFT JOIN stream_logs l ON l.tenant_id = k.tenant_id AND l.store_id = k.store_id"))


def read_log_status(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> LogStatus:
    """The log's size and compact range and the stream's head, in one statement (zeros for an unknown stream)."""
    row = conn.execute(_READ_STATUS, {"t": tenant_id, "s": store_id}).one()
    return LogStatus(int(row.tree_size), bytes(row.frontier), int(row.head_sequence))


_READ_NODES = _uuid_params(sa.text(
    "SELECT w.level, w.node_index, n.hash, NULL::bytea AS agent_signature "
    "FROM unnest(CAST(:levels AS smallint[]), CAST(:indexes AS bigint[])) AS w(level, node_index) "
    "CROSS JOIN LATERAL (SELECT hash FROM log_nodes WHERE tenant_id = :t AND store_id = :s AND level = w.level "
    "AND node_index = w.node_index LIMIT 1) AS n "
    "UNION ALL "
    "SELECT 0, q.sequence_number, e.event_signing_hash, e.agent_signature "
    "FROM unnest(CAST(:sequences AS bigint[])) AS q(sequence_number) "
    "CROSS JOIN LATERAL (SELECT event_signing_hash, agent_signature FROM events WHERE tenant_id = :t "
    "AND store_id = :s AND sequence_number = q.sequence_number LIMIT 1) AS e"))


def read_log_nodes(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                   nodes: Sequence[tuple[int, int]], sequence_numbers: Sequence[int]
                   ) -> tuple[dict[tuple[int, int], bytes], dict[int, EntryRow]]:
    """Stored hashes of the perfect subtrees `nodes` (`(level, index)`, level >= LOG_NODES_MIN_LEVEL) and the
    entry rows of the events `sequence_numbers`, with one statement. Absent ones are simply missing from the result.

    Each wanted node and event is one primary-key probe: a LATERAL subquery with LIMIT 1, which PostgreSQL cannot
    flatten into a join reading all of the stream's rows (under skewed statistics it did, tests/log caught it).
    """
    rows = conn.execute(_READ_NODES, {"t": tenant_id, "s": store_id, "levels": [n[0] for n in nodes],
                                      "indexes": [n[1] for n in nodes], "sequences": list(sequence_numbers)})
    stored: dict[tuple[int, int], bytes] = {}
    entries: dict[int, EntryRow] = {}
    for row in rows:
        if row.level == 0:
            signature = None if row.agent_signature is None else bytes(row.agent_signature)
            entries[int(row.node_index)] = EntryRow(int(row.node_index), bytes(row.hash), signature)
        else:
            stored[(int(row.level), int(row.node_index))] = bytes(row.hash)
    return stored, entries


def read_entry_rows(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, first_sequence: int,
                    last_sequence: int) -> list[EntryRow]:
    """Entry rows of events `first_sequence..last_sequence` in order (the backfill's read; a range of the PK)."""
    rows = conn.execute(
        sa.select(events.c.sequence_number, events.c.event_signing_hash, events.c.agent_signature)
        .where(events.c.tenant_id == tenant_id, events.c.store_id == store_id,
               events.c.sequence_number.between(first_sequence, last_sequence))
        .order_by(events.c.sequence_number)
    )
    return [EntryRow(int(r.sequence_number), bytes(r.event_signing_hash),
                     None if r.agent_signature is None else bytes(r.agent_signature)) for r in rows]


_INCOMPLETE_STREAMS = sa.text(
    "SELECT s.tenant_id, s.store_id, coalesce(l.tree_size, 0) AS tree_size, s.head_sequence FROM streams s "
    "LEFT JOIN stream_logs l ON l.tenant_id = s.tenant_id AND l.store_id = s.store_id "
    "WHERE coalesce(l.tree_size, 0) < s.head_sequence "
    "AND (CAST(:after_t AS uuid) IS NULL OR (s.tenant_id, s.store_id) > (CAST(:after_t AS uuid), CAST(:after_s AS uuid))) "
    "ORDER BY s.tenant_id, s.store_id LIMIT :limit"
).bindparams(sa.bindparam("after_t", type_=sa.Uuid), sa.bindparam("after_s", type_=sa.Uuid))


def incomplete_logs(conn: Connection, limit: int, after: tuple[uuid.UUID, uuid.UUID] | None = None
                    ) -> list[tuple[uuid.UUID, uuid.UUID, int, int]]:
    """Streams whose log is behind their head, as `(tenant_id, store_id, tree_size, head_sequence)`, in key
    order after `after`, at most `limit`."""
    after_t, after_s = after if after is not None else (None, None)
    rows = conn.execute(_INCOMPLETE_STREAMS, {"after_t": after_t, "after_s": after_s, "limit": limit})
    return [(r.tenant_id, r.store_id, int(r.tree_size), int(r.head_sequence)) for r in rows]


def count_incomplete_logs(conn: Connection) -> tuple[int, int]:
    """`(streams, events)` not yet in a log."""
    row = conn.execute(sa.text(
        "SELECT count(*) AS streams, coalesce(sum(s.head_sequence - coalesce(l.tree_size, 0)), 0) AS events "
        "FROM streams s LEFT JOIN stream_logs l ON l.tenant_id = s.tenant_id AND l.store_id = s.store_id "
        "WHERE coalesce(l.tree_size, 0) < s.head_sequence")).one()
    return int(row.streams), int(row.events)


_CHECKPOINT_COLUMNS = (log_checkpoints.c.tree_size, log_checkpoints.c.root_hash, log_checkpoints.c.note,
                       log_checkpoints.c.signed_at)


def latest_checkpoint(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> CheckpointRow | None:
    """The stream's largest signed checkpoint (one index probe), or None."""
    row = conn.execute(
        sa.select(*_CHECKPOINT_COLUMNS)
        .where(log_checkpoints.c.tenant_id == tenant_id, log_checkpoints.c.store_id == store_id)
        .order_by(log_checkpoints.c.tree_size.desc()).limit(1)
    ).one_or_none()
    return None if row is None else CheckpointRow(int(row.tree_size), bytes(row.root_hash), row.note, row.signed_at)


def list_checkpoints(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID) -> list[CheckpointRow]:
    """Every checkpoint signed for the stream, smallest first (audits and tests)."""
    rows = conn.execute(
        sa.select(*_CHECKPOINT_COLUMNS)
        .where(log_checkpoints.c.tenant_id == tenant_id, log_checkpoints.c.store_id == store_id)
        .order_by(log_checkpoints.c.tree_size)
    )
    return [CheckpointRow(int(r.tree_size), bytes(r.root_hash), r.note, r.signed_at) for r in rows]


def insert_checkpoint(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, tree_size: int,
                      root_hash: bytes, note: str, signed_at: datetime.datetime) -> CheckpointRow:
    """Persist a signed checkpoint. MUST run under the stream's checkpoint lock, after checking it extends the
    latest one (the trigger refusing a smaller or equal size is the backstop)."""
    conn.execute(log_checkpoints.insert().values(tenant_id=tenant_id, store_id=store_id, tree_size=tree_size,
                                                 root_hash=root_hash, note=note, signed_at=signed_at))
    return CheckpointRow(tree_size, root_hash, note, signed_at)


def transaction_time(conn: Connection) -> datetime.datetime:
    """The database's `now()`: the start of the current transaction, the clock every checkpoint decision uses."""
    return conn.execute(sa.text("SELECT now()")).scalar_one()


STREAM_ID_SQL = "sha256('VES_STREAM_V1'::bytea || uuid_send(tenant_id) || uuid_send(store_id))"
"""VES.md's stream id computed in SQL; migration 0005 indexes `streams` on exactly this expression."""


def stream_by_id(conn: Connection, stream_id: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The `(tenant_id, store_id)` whose stream id is `stream_id` (one probe of the expression index), or None
    when no event was ever sequenced in such a stream."""
    row = conn.execute(sa.text(f"SELECT tenant_id, store_id FROM streams WHERE {STREAM_ID_SQL} = :sid LIMIT 1"),
                       {"sid": stream_id}).one_or_none()
    return None if row is None else (row.tenant_id, row.store_id)
