"""Reads of the log, including the long poll that waits for the next event of a stream.

A long poll holds no database connection while it waits: it takes one of the worker's long-poll slots and sleeps
until the process's listener thread (`app.db.notify.StreamListener`, one LISTEN connection per worker) wakes it.
A poll that finds no free slot is answered at once with the current page and `retry_after` (seconds).

The public reads return domain values (`SequencedEvent`, `EventPage`, `EntityHistory`, `StreamHead`); `read_page`
and `wait_for_head` are the row-level primitives underneath. Each read takes the primary's Engine or
`ReadDatabases` (primary and read replica); which one answers is decided in `app.services.replica`, from the
stream's floor (`min_sequence`, else the primary's head). Long polls wait on the primary (its listener), and the
read after a wake-up has the awaited event as its floor.
"""

from __future__ import annotations

import contextlib
import hashlib
import datetime
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import fields

from sqlalchemy import Engine

from app.db import events as event_store
from app.db.events import stream_channel
from app.db.notify import POLL
from app.db.notify import PUSH
from app.ves.encoding import jcs
from app.db.notify import StreamListener
from app.errors import NotFound
from app.services.ingest import Receipt
from app.services.replica import ReadDatabases
from app.services.replica import read_databases

SLOTLESS_RETRY_AFTER_SECONDS = 1
DEFAULT_PAGE_MAX_BYTES = 4 * 1024 * 1024
"""`PAGE_MAX_BYTES`: a page of events or an entity history stops before its payloads pass this many bytes (at
least one event always comes back, so a page holds at most PAGE_MAX_BYTES + MAX_EVENT_PAYLOAD_SIZE of payloads);
`next_from` then says where to continue."""


@dataclass(frozen=True)
class Page:
    """Events from the requested position, the stream head, and `retry_after` (seconds) when a long poll was
    answered at once because every long-poll slot of the worker was taken."""

    rows: list
    head: int
    retry_after: int | None = None


class LongPolls:
    """One worker process's long-poll capacity: at most `slots` requests wait at once, woken by `listener`."""

    def __init__(self, listener: StreamListener, slots: int):
        self.listener = listener
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None

    @contextlib.contextmanager
    def slot(self) -> Iterator[bool]:
        """Yield True holding a slot, or False at once when none is free."""
        if self._free is None or not self._free.acquire(blocking=False):
            yield False
            return
        try:
            yield True
        finally:
            self._free.release()

    def close(self) -> None:
        self.listener.close()


@dataclass(frozen=True)
class SequencedEvent:
    """A stored event: the envelope the agent signed (`created_at_raw` byte for byte; `agent_signature` None for
    unsigned events), its place in the stream and its receipt. Hashes and signatures are raw bytes."""

    tenant_id: uuid.UUID
    store_id: uuid.UUID
    sequence_number: int
    event_id: uuid.UUID
    command_id: uuid.UUID | None
    ves_version: int
    source_agent_id: uuid.UUID
    agent_key_id: int
    entity_type: str
    entity_id: str
    event_type: str
    created_at_raw: str
    payload_kind: int
    payload: object
    payload_encrypted: dict | None
    payload_plain_hash: bytes
    payload_cipher_hash: bytes
    event_signing_hash: bytes
    agent_signature: bytes | None
    base_version: int | None
    entity_version: int
    sequenced_at: datetime.datetime
    receipt: Receipt

    @property
    def plain_payload(self) -> object:
        """The payload of a plaintext event (payload_kind 0), else None."""
        return self.payload if self.payload_kind == 0 else None

    @property
    def legacy_payload_hash(self) -> bytes:
        """The original's legacy `payload_hash`: SHA-256 of the canonical JSON of `plain_payload` (no domain tag)."""
        return hashlib.sha256(jcs(self.plain_payload)).digest()

    @property
    def legacy_envelope(self) -> "SequencedEvent":
        """This event, read as the original's legacy `EventEnvelope` (the wire layer picks the fields)."""
        return self

    @property
    def envelope_version(self) -> int:
        return 1


_EVENT_COLUMNS = tuple(f.name for f in fields(SequencedEvent) if f.name != "receipt")
_BYTE_COLUMNS = ("payload_plain_hash", "payload_cipher_hash", "event_signing_hash", "agent_signature")


def sequenced_event(row, sequencer_id: str) -> SequencedEvent:
    values = {name: getattr(row, name) for name in _EVENT_COLUMNS}
    for name in _BYTE_COLUMNS:
        if values[name] is not None:
            values[name] = bytes(values[name])
    receipt = Receipt(sequencer_id, row.tenant_id, row.store_id, row.event_id, row.sequence_number, row.sequenced_at,
                      bytes(row.receipt_hash), bytes(row.sequencer_signature) if row.sequencer_signature else None,
                      sequencer_key_version=row.sequencer_key_version if row.sequencer_signature else 0)
    return SequencedEvent(**values, receipt=receipt)


@dataclass(frozen=True)
class EventPage:
    """Events from a requested start, ascending; `next_from` is where the next page starts. `retry_after`
    (seconds): a long poll answered at once, without waiting, because every long-poll slot was taken."""

    events: list[SequencedEvent]
    head_sequence: int
    next_from: int
    retry_after: int | None = None

    @property
    def count(self) -> int:
        return len(self.events)


@dataclass(frozen=True)
class EntityHistory:
    """One entity's events from a requested start; `next_from` is where the next page of them starts. `version`
    is also `total`, the number of events the entity has; `has_more`: events after this page exist."""

    entity_type: str
    entity_id: str
    version: int
    events: list[SequencedEvent]
    next_from: int
    has_more: bool = False

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def total(self) -> int:
        return self.version


@dataclass(frozen=True)
class StreamHead:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    head_sequence: int


def events_page(engine: Engine | ReadDatabases, sequencer_id: str, tenant_id: uuid.UUID, store_id: uuid.UUID,
                from_sequence: int, limit: int, wait_seconds: float = 0.0, long_polls: LongPolls | None = None,
                min_sequence: int | None = None, max_bytes: int = DEFAULT_PAGE_MAX_BYTES) -> EventPage:
    """`read_page` as domain values."""
    page = read_page(engine, tenant_id, store_id, from_sequence, limit, wait_seconds, long_polls=long_polls,
                     min_sequence=min_sequence, max_bytes=max_bytes)
    events = [sequenced_event(row, sequencer_id) for row in page.rows]
    return EventPage(events, page.head, events[-1].sequence_number + 1 if events else from_sequence, page.retry_after)


def entity_history(engine: Engine | ReadDatabases, sequencer_id: str, tenant_id: uuid.UUID, store_id: uuid.UUID,
                   entity_type: str, entity_id: str, from_sequence: int, limit: int,
                   min_sequence: int | None = None, max_bytes: int = DEFAULT_PAGE_MAX_BYTES,
                   offset: int = 0) -> EntityHistory:
    """One entity's events from `from_sequence` after skipping `offset` of them (at most `limit`, and at most
    `max_bytes` of payloads but at least one event) and its current version."""
    rows, version = read_entity(engine, tenant_id, store_id, entity_type, entity_id, from_sequence, limit + 1,
                                min_sequence, max_bytes, offset)
    events = [sequenced_event(row, sequencer_id) for row in rows[:limit]]
    # From the entity's first event (the offset paging), `total` tells exactly; else one row more than the page.
    more = offset + len(events) < version if from_sequence <= 1 else len(rows) > limit
    return EntityHistory(entity_type, entity_id, version, events,
                         events[-1].sequence_number + 1 if events else from_sequence, has_more=more)


def stream_head(engine: Engine | ReadDatabases, tenant_id: uuid.UUID, store_id: uuid.UUID,
                min_sequence: int | None = None) -> StreamHead:
    """The stream's head sequence number (0 before its first event)."""
    return StreamHead(tenant_id, store_id, read_head(engine, tenant_id, store_id, min_sequence))


def find_event(engine: Engine | ReadDatabases, sequencer_id: str, tenant_id: uuid.UUID, store_id: uuid.UUID,
               event_id: uuid.UUID) -> SequencedEvent:
    """:raise NotFound: no such event in this stream."""
    row = read_event(engine, tenant_id, store_id, event_id)
    if row is None:
        raise NotFound("No such event in this stream.")
    return sequenced_event(row, sequencer_id)


def read_page(engine: Engine | ReadDatabases, tenant_id: uuid.UUID, store_id: uuid.UUID, from_sequence: int,
              limit: int, wait_seconds: float = 0.0, long_polls: LongPolls | None = None,
              min_sequence: int | None = None, max_bytes: int = DEFAULT_PAGE_MAX_BYTES) -> Page:
    """Events from `from_sequence` (ascending, at most `limit`) and the stream head.

    With `wait_seconds > 0` and nothing at or after `from_sequence`, wait in a long-poll slot until the stream's
    head passes `from_sequence - 1` or the wait runs out, then read again. The wait never exceeds `wait_seconds`;
    no connection is held during it. Without a free slot (or without `long_polls`), the empty page comes back at
    once with `retry_after`. The page's view of the stream reaches at least `min_sequence` (None: the primary's
    head now); after a wake-up, at least `from_sequence`.
    """
    rows, head = _read(engine, tenant_id, store_id, from_sequence, limit, min_sequence, max_bytes)
    if rows or wait_seconds <= 0:
        return Page(rows, head)
    if long_polls is None:
        return Page(rows, head, SLOTLESS_RETRY_AFTER_SECONDS)
    with long_polls.slot() as held:
        if not held:
            return Page(rows, head, SLOTLESS_RETRY_AFTER_SECONDS)
        if wait_for_head(read_databases(engine).primary, long_polls.listener, tenant_id, store_id, from_sequence,
                         wait_seconds):
            woken_floor = max(min_sequence or 0, from_sequence)
            rows, head = _read(engine, tenant_id, store_id, from_sequence, limit, woken_floor, max_bytes)
    return Page(rows, head)


def _read(engine: Engine | ReadDatabases, tenant_id, store_id, from_sequence, limit, floor: int | None,
          max_bytes: int = DEFAULT_PAGE_MAX_BYTES):
    def read(conn):
        rows = event_store.read_events_within(conn, tenant_id, store_id, from_sequence, limit, max_bytes)
        head = event_store.read_stream_head(conn, tenant_id, store_id)
        return rows, head

    return read_databases(engine).read_stream(tenant_id, store_id, floor, read)


def wait_for_head(engine: Engine, listener: StreamListener, tenant_id: uuid.UUID, store_id: uuid.UUID, wanted: int,
                  timeout: float) -> bool:
    """Block until the stream's head is at least `wanted` (True) or `timeout` seconds pass (False).

    The head is read only while the subscription is `push` (its LISTEN is active, so a later commit will wake
    us) or `poll` (re-read every `listener.fallback_interval`); in `wait` (listener connecting or reconnecting)
    nothing is read and the listener wakes us when it is back. The Event is cleared before each read, so a NOTIFY
    between the read and the sleep still ends the sleep.
    """
    deadline = time.monotonic() + timeout
    with listener.subscribe(stream_channel(tenant_id, store_id)) as subscription:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            subscription.clear()
            mode = subscription.mode
            if mode in (PUSH, POLL):
                if read_head(engine, tenant_id, store_id) >= wanted:
                    return True
                remaining = deadline - time.monotonic()
                if mode == POLL:
                    remaining = min(remaining, listener.fallback_interval)
            subscription.wait(remaining)


def read_head(engine: Engine | ReadDatabases, tenant_id: uuid.UUID, store_id: uuid.UUID,
              min_sequence: int | None = None) -> int:
    """The primary's head, or with `min_sequence` the replica's when it is at least that."""
    databases = read_databases(engine)

    def head(conn):
        return event_store.read_stream_head(conn, tenant_id, store_id)

    if min_sequence is None:
        return databases.on_primary(head)
    return databases.read_stream(tenant_id, store_id, min_sequence, head)


def read_entity(engine: Engine | ReadDatabases, tenant_id, store_id, entity_type: str, entity_id: str,
                from_sequence: int, limit: int, min_sequence: int | None = None,
                max_bytes: int = DEFAULT_PAGE_MAX_BYTES, offset: int = 0) -> tuple[list, int]:
    def read(conn):
        rows = event_store.read_entity_events(conn, tenant_id, store_id, entity_type, entity_id, from_sequence, limit,
                                              max_bytes, offset)
        version = event_store.read_entity_version(conn, tenant_id, store_id, entity_type, entity_id)
        return rows, version

    return read_databases(engine).read_stream(tenant_id, store_id, min_sequence, read)


def read_event(engine: Engine | ReadDatabases, tenant_id, store_id, event_id: uuid.UUID):
    return read_databases(engine).read_immutable(
        lambda conn: event_store.get_event(conn, tenant_id, store_id, event_id))
