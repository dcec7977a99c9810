"""Reads of the log, including the long poll that waits for the next event of a stream.

A long poll holds no database connection while it waits: it takes one of the worker's long-poll slots and sleeps
until the process's listener thread (`app.db.notify.StreamListener`, one LISTEN connection per worker) wakes it.
A poll that finds no free slot is answered at once with the current page and `retry_after` (seconds).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine

from app.db import events as event_store
from app.db.events import stream_channel
from app.db.notify import POLL
from app.db.notify import PUSH
from app.db.notify import StreamListener

SLOTLESS_RETRY_AFTER_SECONDS = 1


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


def read_page(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID, from_sequence: int, limit: int,
              wait_seconds: float = 0.0, long_polls: LongPolls | None = None) -> Page:
    """Events from `from_sequence` (ascending, at most `limit`) and the stream head.

    With `wait_seconds > 0` and nothing at or after `from_sequence`, wait in a long-poll slot until the stream's
    head passes `from_sequence - 1` or the wait runs out, then read again. The wait never exceeds `wait_seconds`;
    no connection is held during it. Without a free slot (or without `long_polls`), the empty page comes back at
    once with `retry_after`.
    """
    rows, head = _read(engine, tenant_id, store_id, from_sequence, limit)
    if rows or wait_seconds <= 0:
        return Page(rows, head)
    if long_polls is None:
        return Page(rows, head, SLOTLESS_RETRY_AFTER_SECONDS)
    with long_polls.slot() as held:
        if not held:
            return Page(rows, head, SLOTLESS_RETRY_AFTER_SECONDS)
        if wait_for_head(engine, long_polls.listener, tenant_id, store_id, from_sequence, wait_seconds):
            rows, head = _read(engine, tenant_id, store_id, from_sequence, limit)
    return Page(rows, head)


def _read(engine: Engine, tenant_id, store_id, from_sequence, limit):
    with engine.connect() as conn:
        rows = event_store.read_events(conn, tenant_id, store_id, from_sequence, limit)
        head = event_store.read_stream_head(conn, tenant_id, store_id)
    return rows, head


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


def read_head(engine: Engine, tenant_id: uuid.UUID, store_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return event_store.read_stream_head(conn, tenant_id, store_id)


def read_entity(engine: Engine, tenant_id, store_id, entity_type: str, entity_id: str, from_sequence: int,
                limit: int) -> tuple[list, int]:
    with engine.connect() as conn:
        rows = event_store.read_entity_events(conn, tenant_id, store_id, entity_type, entity_id, from_sequence, limit)
        version = event_store.read_entity_version(conn, tenant_id, store_id, entity_type, entity_id)
    return rows, version


def read_event(engine: Engine, tenant_id, store_id, event_id: uuid.UUID):
    with engine.connect() as conn:
        return event_store.get_event(conn, tenant_id, store_id, event_id)
