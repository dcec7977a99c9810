"""Engine construction. Create engines after gunicorn forks: a pool must never be shared between processes.

Every database wait of a request is bounded (docs/DEPLOYMENT.md, "Database waits"):

- pool checkout: `DB_POOL_TIMEOUT_SECONDS` (only reached when more threads want a connection than the pool has);
- connect: `DB_CONNECT_TIMEOUT_SECONDS` (libpq `connect_timeout`, and the client-side deadline of `app.db.bounds`);
- each statement, server side: `DB_STATEMENT_TIMEOUT_MS`; each lock wait: `STREAM_LOCK_TIMEOUT_MS`; an open
  transaction left idle by a vanished client: `DB_STATEMENT_TIMEOUT_MS` (`idle_in_transaction_session_timeout`);
- each answer, client side: `DB_STATEMENT_TIMEOUT_MS` + 1 s (`app.db.bounds`; also libpq `tcp_user_timeout`), so
  a server or pooler that keeps the socket open and says nothing costs one wait, then the pool fails fast.

The server-side settings are set per transaction (`set_config(..., true)` when it begins), never per session, so
they hold through PgBouncer in transaction pooling mode.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import psycopg2
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.bounds import bounded_connection_class

TCP_KEEPALIVE_IDLE_SECONDS = 5
TCP_KEEPALIVE_INTERVAL_SECONDS = 2
TCP_KEEPALIVE_COUNT = 3


def connect_args(settings: Settings) -> dict:
    """psycopg2/libpq connection arguments: timeouts, TCP keepalives, the deadline-enforcing connection class."""
    response = settings.db_response_timeout_seconds
    return {
        "connect_timeout": settings.db_connect_timeout_seconds,
        "application_name": "stateset-sequencer",
        "keepalives": 1,
        "keepalives_idle": TCP_KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": TCP_KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": TCP_KEEPALIVE_COUNT,
        "tcp_user_timeout": int(response * 1000),
        "connection_factory": bounded_connection_class(settings.db_connect_timeout_seconds, response),
    }


def transaction_bounds_sql(settings: Settings) -> str:
    """One statement setting the transaction-local server-side bounds (run as each transaction begins)."""
    statement_ms = int(settings.db_statement_timeout_ms)
    lock_ms = int(settings.stream_lock_timeout_ms)
    return (f"SELECT set_config('statement_timeout', '{statement_ms}ms', true), "
            f"set_config('lock_timeout', '{lock_ms}ms', true), "
            f"set_config('idle_in_transaction_session_timeout', '{statement_ms}ms', true)")


def make_engine(settings: Settings, pool_size: int | None = None) -> Engine:
    """Return a pooled engine for `settings.database_url`.

    `MAX_DB_CONNECTIONS` is the pool size of one process; the pool never overflows past it, so the deployment
    guide's "connections > 80 % of pool" alert has a fixed denominator. Connections are checked before use, so a
    database restart costs no request a stale connection. Work that must wait longer (migrations) lifts the bounds
    for its own transaction (`lift_transaction_bounds`, `app.db.bounds.no_answer_deadline`).
    """
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set (the embedded database must be started first)")
    size = pool_size or settings.max_db_connections
    engine = create_engine(
        settings.database_url,
        pool_size=size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args(settings),
        json_deserializer=load_stored_json,
        hide_parameters=True,  # error messages and logs never carry statement parameters (schema bodies, payloads)
    )
    bounds_sql = transaction_bounds_sql(settings)

    @event.listens_for(engine, "begin")
    def _bound_transaction(conn):
        # Through the Connection (not a raw cursor), so that a connection found dead here (a primary killed after
        # the checkout ping) fails as SQLAlchemy's disconnect error and is invalidated, like any other statement.
        conn.exec_driver_sql(bounds_sql)

    return engine


REPLICA_STATEMENT_TIMEOUT_MS = 2000
"""Longest statement on the read replica (at most DB_STATEMENT_TIMEOUT_MS): a read the replica cannot answer in
this time is answered by the primary instead, so a read that tries both still ends within the bound of one."""


def make_read_engine(settings: Settings) -> Engine | None:
    """A pooled engine for `DATABASE_READ_URL` (None when unset), bounded like the primary's but with statements of
    at most `REPLICA_STATEMENT_TIMEOUT_MS` (client-side answer deadline 1 s later). Its own pool and its own
    fail-fast state: a vanished replica never makes the primary's pool fail fast."""
    if not settings.database_read_url:
        return None
    statement_ms = min(settings.db_statement_timeout_ms, REPLICA_STATEMENT_TIMEOUT_MS)
    return make_engine(settings.replace(
        database_url=settings.database_read_url,
        db_statement_timeout_ms=statement_ms,
        stream_lock_timeout_ms=min(settings.stream_lock_timeout_ms, statement_ms - 1),
    ))


@contextlib.contextmanager
def dbapi_cursor(conn: Connection) -> Iterator[psycopg2.extensions.cursor]:
    """The transaction's own psycopg2 cursor, for the hot statements that skip SQLAlchemy's per-call overhead.

    A psycopg2 error is raised as SQLAlchemy's (a `DBAPIError` subclass, the psycopg2 error as `.orig`) and a lost
    connection is invalidated, as `conn.execute` would do: callers and the API's error mapping (503 `STREAM_BUSY`,
    `DATABASE_TIMEOUT`, `DATABASE_UNAVAILABLE`; the ingest backstop's `IntegrityError`) see one kind of error.
    """
    dbapi_connection = conn.connection.dbapi_connection
    cursor = None
    try:
        with dbapi_connection.cursor() as cursor:
            yield cursor
    except psycopg2.Error as error:
        disconnect = conn.dialect.is_disconnect(error, dbapi_connection, cursor)
        if disconnect:
            conn.invalidate(error)
        raise DBAPIError.instance(None, None, error, psycopg2.Error, connection_invalidated=disconnect,
                                  dialect=conn.dialect) from error


LIFT_TRANSACTION_BOUNDS_SQL = ("SELECT set_config('statement_timeout', '0', true), "
                               "set_config('lock_timeout', '0', true), "
                               "set_config('idle_in_transaction_session_timeout', '0', true)")


def lift_transaction_bounds(conn) -> None:
    """Remove the server-side bounds for the rest of `conn`'s current transaction (migrations, the anchoring
    run lock's holding transaction)."""
    conn.exec_driver_sql(LIFT_TRANSACTION_BOUNDS_SQL)


def _stored_int(text: str):
    value = int(text)
    return value if -(2**53 - 1) <= value <= 2**53 - 1 else float(text)


def load_stored_json(text: str):
    """Parse jsonb read back from PostgreSQL so that RFC 8785 gives the bytes the agent hashed.

    jsonb prints a float such as 1e21 as the integer `1000000000000000000000`; RFC 8785 serialises numbers as IEEE
    doubles, so integers beyond ±(2^53−1) (which an accepted payload can only have carried as floats) are read back
    as floats. Every other number is exact as stored.
    """
    return json.loads(text, parse_int=_stored_int)
