"""A per-process cache of rows that change rarely and must stop being used the moment they change (API keys).

An entry is used only while the process's listener vouches for the cache's NOTIFY channel
(`StreamListener.is_current`): the channel is LISTENed on a live connection whose notifications were verified to
arrive. Every NOTIFY on the channel, a lost listener connection and a new LISTEN all empty the cache, so a change
committed anywhere (any worker, any replica, plain SQL: a trigger sends the NOTIFY, alembic 0007) is refused here as
soon as its NOTIFY is read, and nothing is cached while delivery is in doubt. `ttl_seconds` bounds how long an entry
is trusted in any case (the fallback if a NOTIFY were ever lost); 0 turns the cache off.

A lookup that finds nothing is never cached, so a row created later needs no NOTIFY. A row read while a NOTIFY
arrived is not stored (`epoch`): it may predate the change.

Every listener acknowledges each NOTIFY on the channel after emptying its cache (on API_KEYS_ACK_CHANNEL, the
payload is the changing transaction's id), so a revocation can wait until every worker of every replica that
serves from a cache has dropped the key: `ChangeAcknowledgements`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Hashable
from typing import Generic
from typing import TypeVar

V = TypeVar("V")

API_KEYS_CHANNEL = "ves_api_keys"
"""NOTIFY channel of api_keys changes (sent by the trigger of alembic revision 0007; payload: txid_current())."""
API_KEYS_ACK_CHANNEL = "ves_api_keys_ack"
"""Where each listener sends the payload back once its cache is empty."""


class NotifiedCache(Generic[V]):
    """`get(key, load)`: the cached value while the listener vouches for `channel`, else `load()` (cached when not
    None). `listener` is a `app.db.notify.StreamListener` (or anything with `watch` and `is_current`)."""

    def __init__(self, listener, channel: str, ttl_seconds: float, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic, acknowledge_on: str | None = None):
        self._listener = listener
        self.channel = channel
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._epoch = 0
        self.hits = 0
        self.misses = 0
        # Registered now, started with the first lookup (or by long polls): any running listener empties this
        # cache and acknowledges, whether or not this worker has cached anything yet.
        listener.watch(channel, self.invalidate, acknowledge_on=acknowledge_on, start=False)
        self._started = False

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        if self.ttl_seconds <= 0:
            return load()
        self._watch()
        now = self._clock()
        current = self._listener.is_current(self.channel)  # before reading the entry: see is_current
        with self._lock:
            entry = self._entries.get(key)
            epoch = self._epoch
        if entry is not None and current and now - entry[0] < self.ttl_seconds:
            self.hits += 1
            return entry[1]
        self.misses += 1
        value = load()
        if value is not None and current:
            with self._lock:
                if self._epoch == epoch:
                    if len(self._entries) >= self.max_entries:
                        self._entries.clear()
                    self._entries[key] = (now, value)
        return value

    def invalidate(self, payload: str | None = None) -> None:
        """Forget every entry (the listener calls this on each NOTIFY and whenever delivery is in doubt)."""
        with self._lock:
            self._epoch += 1
            self._entries.clear()
            self._changed.notify_all()

    @property
    def epoch(self) -> int:
        """Counts invalidations; pass it to `wait_for_invalidation`."""
        return self._epoch

    def wait_for_invalidation(self, since_epoch: int, timeout: float) -> bool:
        """Wait until the cache was emptied after `since_epoch` was read (at most `timeout` seconds; at once when the
        cache is off or not in use). A revocation by this process waits so, so that this worker refuses the key
        before the revocation is answered; the NOTIFY reaches the other workers at the same moment."""
        if self.ttl_seconds <= 0 or not self._started:
            return True
        with self._changed:
            return self._changed.wait_for(lambda: self._epoch != since_epoch, timeout)

    def __len__(self) -> int:
        return len(self._entries)

    def _watch(self) -> None:
        if not self._started:
            self._started = True
            self._listener.start()


class ChangeAcknowledgements:
    """Open before a change to a watched table, `wait` after its commit: until every listener connection that was
    open at the change (pg_stat_activity, application_name LISTENER_APPLICATION_NAME) has acknowledged the change's
    NOTIFY, i.e. emptied its cache. `connect()` returns a connection to the listen URL (`StreamListener
    .new_connection`)."""

    def __init__(self, connect: Callable[[], object], ack_channel: str = API_KEYS_ACK_CHANNEL):
        self._conn = connect()
        self._conn.autocommit = True
        with self._conn.cursor() as cursor:
            cursor.execute(f"LISTEN {ack_channel}")
        self.ack_channel = ack_channel
        self.backend_pid = self._conn.get_backend_pid()

    def wait(self, txid: str, listener_pids: set[int], timeout: float) -> set[int]:
        """Wait until each of `listener_pids` acknowledged `txid`; return the ones that did not within `timeout`."""
        import select as select_module

        missing = set(listener_pids) - {self.backend_pid}
        deadline = time.monotonic() + timeout
        while missing:
            self._conn.poll()
            for notify in self._conn.notifies:
                if notify.channel == self.ack_channel and notify.payload == txid:
                    missing.discard(notify.pid)
            self._conn.notifies.clear()
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0:
                break
            select_module.select([self._conn], [], [], remaining)
        return missing

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


def engine_connector(engine) -> Callable[[], object]:
    """A function opening a new psycopg2 connection to `engine`'s database (for `ChangeAcknowledgements` where the
    caller has no listener at hand: the admin CLI, service functions called without one)."""
    import psycopg2

    args, kwargs = engine.dialect.create_connect_args(engine.url)
    kwargs = {**kwargs, "application_name": "stateset-sequencer-revocation", "connect_timeout": 2}

    def connect():
        return psycopg2.connect(*args, **kwargs)

    return connect
