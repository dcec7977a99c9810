"""A per-process cache of rows that change rarely and must stop being used the moment they change (API keys).

An entry is used only while the process's listener vouches for the cache's NOTIFY channel
(`StreamListener.is_current`): the channel is LISTENed on a live connection whose notifications were verified to
arrive. Every NOTIFY on the channel, a lost listener connection and a new LISTEN all empty the cache, so a change
committed anywhere (any worker, any replica, plain SQL: a trigger sends the NOTIFY, alembic 0003) is refused here as
soon as its NOTIFY is read, and nothing is cached while delivery is in doubt. `ttl_seconds` bounds how long an entry
is trusted in any case (the fallback if a NOTIFY were ever lost); 0 turns the cache off.

A lookup that finds nothing is never cached, so a row created later needs no NOTIFY. A row read while a NOTIFY
arrived is not stored (`epoch`): it may predate the change.
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
"""NOTIFY channel of api_keys changes (sent by the trigger of alembic revision 0003)."""


class NotifiedCache(Generic[V]):
    """`get(key, load)`: the cached value while the listener vouches for `channel`, else `load()` (cached when not
    None). `listener` is a `app.db.notify.StreamListener` (or anything with `watch` and `is_current`)."""

    def __init__(self, listener, channel: str, ttl_seconds: float, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic):
        self._listener = listener
        self.channel = channel
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._epoch = 0
        self._watching = False
        self.hits = 0
        self.misses = 0

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

    def invalidate(self) -> None:
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
        if self.ttl_seconds <= 0 or not self._watching:
            return True
        with self._changed:
            return self._changed.wait_for(lambda: self._epoch != since_epoch, timeout)

    def __len__(self) -> int:
        return len(self._entries)

    def _watch(self) -> None:
        if not self._watching:
            with self._lock:
                if self._watching:
                    return
                self._watching = True
            self._listener.watch(self.channel, self.invalidate)
