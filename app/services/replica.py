"""Which database answers a read of the log: the primary, or the streaming replica of `DATABASE_READ_URL` when it
provably holds everything the reader may already have seen (docs/DEPLOYMENT.md, "Read replicas").

The rule: a read of a stream is answered from a view whose head for that stream is at least its **floor** — the
client's `min_sequence` when it sends one, otherwise the primary's head for the stream as the request starts. The
replica answers when its own head for the stream has reached the floor; otherwise, or when it errs or does not
answer within its bounds, the primary answers. A replica replays the primary's commits in commit order, so its view
of a stream is the primary's at an earlier moment: head h there means events 1..h are all there, as on the primary.

Hence, with nothing on the client's side: a write it was given a receipt for (committed before the receipt was
sent) is in every later read, and no head it was shown is followed by a smaller one, whichever instance and
database answer. A client that sends `min_sequence` (its last receipt, or the highest head it has seen) gets the
same guarantees without costing the primary even the head lookup.

A stored event never changes, so a single event by id is taken from the replica when the replica has it, and
asked of the primary when it does not.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from app.db import events as event_store
from app.metrics import REPLICA_READS

log = logging.getLogger("stateset_sequencer.replica")

T = TypeVar("T")
_BEHIND = object()
FAILURE_LOG_INTERVAL_SECONDS = 10.0
"""A failing replica is logged at most once per this interval per process (every failure is counted in
`sequencer_replica_reads_total{outcome="failed"}`)."""


class ReadDatabases:
    """The primary and, when `DATABASE_READ_URL` is set, the read replica (one per worker process)."""

    def __init__(self, primary: Engine, replica: Engine | None = None):
        self.primary = primary
        self.replica = replica
        self._failure_logged_at = -FAILURE_LOG_INTERVAL_SECONDS
        self._failures_unlogged = 0

    def read_stream(self, tenant_id: uuid.UUID, store_id: uuid.UUID, floor: int | None,
                    read: Callable[[Connection], T]) -> T:
        """`read(conn)` on a connection whose view of the stream has a head of at least `floor` (None: the
        primary's head now): the replica's when it has caught up that far, else the primary's. On the replica the
        head is checked before `read` runs, and later statements see no less, so `read` sees every event up to
        the floor."""
        if self.replica is None:
            return self.on_primary(read)
        if floor is None:
            floor = self.on_primary(lambda conn: event_store.read_stream_head(conn, tenant_id, store_id))

        def read_if_caught_up(conn: Connection):
            if event_store.read_stream_head(conn, tenant_id, store_id) < floor:
                return _BEHIND
            return read(conn)

        found = self._on_replica(read_if_caught_up)
        return self.on_primary(read) if found is _BEHIND else found

    def read_immutable(self, read: Callable[[Connection], T | None]) -> T | None:
        """`read(conn)` for a value that never changes once it exists (an event by id): the replica's when it has
        it, else the primary's (None when neither has it)."""
        if self.replica is not None:
            found = self._on_replica(lambda conn: _BEHIND if (value := read(conn)) is None else value)
            if found is not _BEHIND:
                return found
        return self.on_primary(read)

    def on_primary(self, read: Callable[[Connection], T]) -> T:
        with self.primary.connect() as conn:
            return read(conn)

    def _on_replica(self, read: Callable[[Connection], object]) -> object:
        """`read` on the replica; `_BEHIND` (counted) when it says so, or when the replica fails (logged)."""
        try:
            with self.replica.connect() as conn:
                result = read(conn)
        except SQLAlchemyError as exc:
            REPLICA_READS.labels(outcome="failed").inc()
            self._log_failure(exc)
            return _BEHIND
        REPLICA_READS.labels(outcome="behind" if result is _BEHIND else "served").inc()
        return result

    def _log_failure(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._failure_logged_at < FAILURE_LOG_INTERVAL_SECONDS:
            self._failures_unlogged += 1
            return
        log.warning("read replica failed; answering from the primary", extra={
            "error_type": type(exc).__name__, "failures_since_last_logged": self._failures_unlogged})
        self._failure_logged_at, self._failures_unlogged = now, 0


def read_databases(source: Engine | ReadDatabases) -> ReadDatabases:
    """`source` as `ReadDatabases` (an Engine alone: the primary, no replica)."""
    return source if isinstance(source, ReadDatabases) else ReadDatabases(source)
