"""The sequencing transaction's statements, one round trip each: what a stream holds (after its lock), and every
write of a batch. Both run on the transaction's own psycopg2 cursor (`engine.dbapi_cursor`), so SQLAlchemy's
per-statement compile/execute work is skipped on the hot path; errors still surface as SQLAlchemy's.

`open_stream` takes the stream's advisory lock and then reads, inside the SQL function `sequencer_open_stream`
(alembic 0008): in READ COMMITTED a statement's snapshot is taken when it starts, so a plain statement that waits
for the lock and reads could miss the previous holder's commit; the function's reads are statements of their own,
after the lock. `write_stream_batch` MUST run after `open_stream` of the same stream in the same transaction.
These two replace nine statements per stream (docs/PERFORMANCE.md "Where the time goes").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Connection

from app.db.agent_keys import AgentKeyRecord
from app.db.engine import dbapi_cursor
from app.db.events import ExistingEvent
from app.db.events import EVENT_COLUMNS
from app.db.events import sql_value
from app.db.events import stream_channel
from app.db.stream_logs import LogWriteConflict


@dataclass
class StreamState:
    """A stream as its lock holder sees it: the head, the sequenced events among those asked for (by event_id or
    command_id), the current versions of the entities asked for (absent means 0), and the log's size and compact
    range (`log_size` None: the stream has no log row yet, i.e. size 0), and whether a fence row exists
    (`app.services.fence`)."""

    head: int
    existing: list[ExistingEvent] = field(default_factory=list)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    log_size: int | None = None
    log_frontier: bytes = b""
    fenced: bool = False


_OPEN_STREAM = (
    "SELECT * FROM sequencer_open_stream(CAST(%(t)s AS uuid), CAST(%(s)s AS uuid), %(lock_key)s, "
    "CAST(%(event_ids)s AS uuid[]), CAST(%(command_ids)s AS uuid[]), CAST(%(entity_types)s AS text[]), "
    "CAST(%(entity_ids)s AS text[]))"
)


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)


def _uuid(value) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value)


def open_stream(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, lock_key: int,
                event_ids: Sequence[uuid.UUID], command_ids: Sequence[uuid.UUID],
                entities: set[tuple[str, str]]) -> StreamState:
    """Take the stream's sequencing lock (`lock_key`, `locks.stream_lock_key`), create its `streams` row if
    missing and read everything sequencing needs of it: one call of the SQL function `sequencer_open_stream`
    (alembic 0008), whose reads run after the lock is granted. Callers take the locks of several streams in
    ascending key order."""
    ordered = sorted(entities)
    params = {"t": str(tenant_id), "s": str(store_id), "lock_key": lock_key, "event_ids": [str(e) for e in event_ids],
              "command_ids": [str(c) for c in command_ids], "entity_types": [e[0] for e in ordered],
              "entity_ids": [e[1] for e in ordered]}
    state = StreamState(head=0)
    with dbapi_cursor(conn) as cursor:
        cursor.execute(_OPEN_STREAM, params)
        rows = cursor.fetchall()
    for kind, n, event_id, command_id, a, b, c, d, at, entity_type, entity_id, key_version in rows:
        if kind == 0:
            state.head = int(n or 0)
        elif kind == 1:
            state.log_size, state.log_frontier = int(n), bytes(a)
        elif kind == 2:
            state.existing.append(ExistingEvent(_uuid(event_id), _uuid(command_id), int(n), bytes(a), _bytes(b),
                                                bytes(c), _bytes(d), at, int(key_version or 0)))
        elif kind == 3:
            state.versions[(entity_type, entity_id)] = int(n)
        else:
            state.fenced = True
    return state


@dataclass(frozen=True)
class LogGrowth:
    """What appending a batch does to the stream's log: from `previous_size` to `tree_size` leaves, the new compact
    range, and the perfect subtrees of level >= LOG_NODES_MIN_LEVEL it completes (`(level, index, hash)`)."""

    previous_size: int
    tree_size: int
    frontier: bytes
    nodes: Sequence[tuple[int, int, bytes]]


def _values(cursor, template: str, rows: Sequence[tuple]) -> bytes:
    return b",".join(cursor.mogrify(template, row) for row in rows)


def write_stream_batch(conn: Connection, tenant_id: uuid.UUID, store_id: uuid.UUID, rows: list[dict],
                       versions: dict[tuple[str, str], int], head: int, log: LogGrowth | None) -> None:
    """Insert the events (`events` rows keyed by column name), upsert the entities' versions, grow the log (unless
    `log` is None: a log the backfill still has to build), move the head and NOTIFY the stream's long-poll
    listeners (delivered at commit), in one statement. Raises LogWriteConflict when the stored log was not at
    `log.previous_size` (nothing is left written once the caller rolls back)."""
    t, s = str(tenant_id), str(store_id)
    with dbapi_cursor(conn) as cursor:
        parts = []
        if rows:
            events_values = _values(cursor, "(" + ",".join(["%s"] * len(EVENT_COLUMNS)) + ")",
                                    [tuple(sql_value(name, row.get(name)) for name in EVENT_COLUMNS)
                                     for row in rows])
            parts.append(b"ev AS (INSERT INTO events (" + ", ".join(EVENT_COLUMNS).encode() + b") VALUES "
                         + events_values + b")")
        if versions:
            version_values = _values(cursor, "(%s,%s,%s,%s,%s)", [
                (t, s, entity_type, entity_id, version)
                for (entity_type, entity_id), version in sorted(versions.items())])
            parts.append(b"ver AS (INSERT INTO entity_versions (tenant_id, store_id, entity_type, entity_id, version) "
                         b"VALUES " + version_values + b" ON CONFLICT (tenant_id, store_id, entity_type, entity_id) "
                         b"DO UPDATE SET version = EXCLUDED.version)")
        if log is not None:
            log_params = {"t": t, "s": s, "size": log.tree_size, "frontier": log.frontier,
                          "previous": log.previous_size, "levels": [node[0] for node in log.nodes],
                          "indexes": [node[1] for node in log.nodes], "hashes": [node[2] for node in log.nodes]}
            parts.append(cursor.mogrify(
                "nodes AS (INSERT INTO log_nodes (tenant_id, store_id, level, node_index, hash) "
                "SELECT CAST(%(t)s AS uuid), CAST(%(s)s AS uuid), n.level, n.node_index, n.hash "
                "FROM unnest(CAST(%(levels)s AS smallint[]), CAST(%(indexes)s AS bigint[]), "
                "CAST(%(hashes)s AS bytea[])) AS n(level, node_index, hash))", log_params))
            if log.previous_size == 0:
                parts.append(cursor.mogrify(
                    "lg AS (INSERT INTO stream_logs (tenant_id, store_id, tree_size, frontier) "
                    "VALUES (%(t)s, %(s)s, %(size)s, %(frontier)s) ON CONFLICT (tenant_id, store_id) DO NOTHING "
                    "RETURNING 1)", log_params))
            else:
                parts.append(cursor.mogrify(
                    "lg AS (UPDATE stream_logs SET tree_size = %(size)s, frontier = %(frontier)s, updated_at = now() "
                    "WHERE tenant_id = %(t)s AND store_id = %(s)s AND tree_size = %(previous)s RETURNING 1)",
                    log_params))
        parts.append(cursor.mogrify(
            "moved AS (UPDATE streams SET head_sequence = %(h)s, updated_at = now() "
            "WHERE tenant_id = %(t)s AND store_id = %(s)s RETURNING 1)", {"h": head, "t": t, "s": s}))
        logged = b"(SELECT count(*) FROM lg)" if log is not None else b"1"
        statement = (b"WITH " + b", ".join(parts) + b" SELECT " + logged + b", "
                     + cursor.mogrify("(SELECT count(*) FROM (SELECT pg_notify(%s, %s) FROM moved) AS n)",
                                      (stream_channel(tenant_id, store_id), str(head))))
        cursor.execute(statement)
        logged_rows, _ = cursor.fetchone()
    if logged_rows != 1:
        raise LogWriteConflict(f"The stream's log is not at the size read (expected: {log.previous_size}; "
                               f"tenant_id: {tenant_id}, store_id: {store_id})")


_READ_KEYS_AND_SCHEMAS = (
    "SELECT 0, k.tenant_id, k.agent_id, k.key_id, k.public_key, k.valid_from, k.valid_to, k.revoked_at, "
    "k.created_at, NULL::text, NULL::integer "
    "FROM unnest(CAST(%(key_tenants)s AS uuid[]), CAST(%(key_agents)s AS uuid[]), CAST(%(key_ids)s AS bigint[])) "
    "AS w(tenant_id, agent_id, key_id) "
    "JOIN agent_keys k ON k.tenant_id = w.tenant_id AND k.agent_id = w.agent_id AND k.key_id = w.key_id "
    "UNION ALL "
    "SELECT 1, s.tenant_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, s.event_type, max(s.version) "
    "FROM unnest(CAST(%(schema_tenants)s AS uuid[]), CAST(%(event_types)s AS text[])) AS w(tenant_id, event_type) "
    "JOIN event_schemas s ON s.tenant_id = w.tenant_id AND s.event_type = w.event_type "
    "GROUP BY s.tenant_id, s.event_type"
)


def read_keys_and_schemas(conn: Connection, keys: set[tuple[uuid.UUID, uuid.UUID, int]],
                          schemas: set[tuple[uuid.UUID, str]]
                          ) -> tuple[dict[tuple[uuid.UUID, uuid.UUID, int], AgentKeyRecord],
                                     dict[tuple[uuid.UUID, str], int]]:
    """The agent keys named by `(tenant_id, agent_id, key_id)` and the latest schema version of each
    `(tenant_id, event_type)` that has one, in one statement (ingest reads both in its transaction, never cached,
    so a revocation or a new schema committed before it is always seen)."""
    if not keys and not schemas:
        return {}, {}
    ordered_keys, ordered_schemas = sorted(keys, key=str), sorted(schemas, key=str)
    params = {"key_tenants": [str(k[0]) for k in ordered_keys], "key_agents": [str(k[1]) for k in ordered_keys],
              "key_ids": [k[2] for k in ordered_keys], "schema_tenants": [str(s[0]) for s in ordered_schemas],
              "event_types": [s[1] for s in ordered_schemas]}
    with dbapi_cursor(conn) as cursor:
        cursor.execute(_READ_KEYS_AND_SCHEMAS, params)
        rows = cursor.fetchall()
    found_keys: dict[tuple[uuid.UUID, uuid.UUID, int], AgentKeyRecord] = {}
    latest: dict[tuple[uuid.UUID, str], int] = {}
    for kind, tenant_id, agent_id, key_id, public_key, valid_from, valid_to, revoked_at, created_at, event_type, \
            version in rows:
        if kind == 0:
            record = AgentKeyRecord(_uuid(tenant_id), _uuid(agent_id), int(key_id), bytes(public_key), valid_from,
                                    valid_to, revoked_at, created_at)
            found_keys[(record.tenant_id, record.agent_id, record.key_id)] = record
        else:
            latest[(_uuid(tenant_id), event_type)] = int(version)
    return found_keys, latest
