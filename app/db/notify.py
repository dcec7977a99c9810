"""One LISTEN connection per worker process, owned by a thread, that wakes long-poll waiters.

A waiting request holds no pooled connection: it subscribes to its stream's channel and sleeps on an Event. The
listener thread keeps one autocommit connection to `DATABASE_LISTEN_URL` (a direct connection: LISTEN cannot live
behind a transaction-pooling PgBouncer), LISTENs the channels that have subscribers, and sets their Events when a
NOTIFY arrives (app/db/events.py `advance_stream_head` sends one per commit that moves a head).

No event is missed: a subscription is `push` only once its channel's LISTEN has completed, and a waiter reads the
head only after that (and after clearing its Event), so a commit either precedes the read or notifies it. When the
connection is lost, every subscription drops to `wait`; on reconnect the channels are LISTENed again and every
waiter is woken to read again. When the connection works but notifications do not arrive on it (checked with a
probe NOTIFY sent through the pool at every connect, e.g. DATABASE_LISTEN_URL points at a transaction-pooling
PgBouncer), subscriptions are `poll`: waiters re-read every `fallback_interval` seconds, and a warning is logged.

The same connection carries *watched* channels (`watch`): LISTENed for as long as the connection lives, whatever the
long polls do, each with a callback run on every NOTIFY and whenever delivery cannot be vouched for (the connection
was lost, or LISTEN has just completed on a new one: anything sent in between is unknown). `is_current(channel)`
says whether every NOTIFY on it that reached this process has been handed to the callback: caches keyed on it
(`app.db.key_cache`) trust their entries only then. A watch may ask for acknowledgements: after its callback ran,
the listener NOTIFYs the payload back on another channel, so whoever made the change can wait until every
listener (every worker of every replica) has acted on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator

import psycopg2

log = logging.getLogger("stateset_sequencer.listener")

LISTENER_APPLICATION_NAME = "stateset-sequencer-listener"
"""`application_name` of every listener connection (pg_stat_activity shows who must acknowledge a change)."""

WAIT = "wait"
PUSH = "push"
POLL = "poll"
MAX_UNUSED_CHANNELS = 256
"""Channels kept LISTENed without waiters (to spare LISTEN/UNLISTEN churn for a client that polls again) at most."""


class Subscription:
    """One waiter's interest in one channel. `mode` is set by the listener thread: `wait` (not yet listening, or
    disconnected: reading now proves nothing), `push` (woken on every NOTIFY), `poll` (re-read periodically)."""

    def __init__(self, channel: str):
        self.channel = channel
        self.mode = WAIT
        self._event = threading.Event()

    def clear(self) -> None:
        self._event.clear()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(max(0.0, timeout))


class StreamListener:
    """The process's LISTEN connection and its subscribers. Started lazily by the first `subscribe`.

    `connect` returns a new psycopg2 connection to the listen URL (bounded like every other connection);
    `send_probe(channel)` sends `pg_notify(channel, ...)` through the path real NOTIFYs take (the pool).
    """

    def __init__(self, connect: Callable[[], "psycopg2.extensions.connection"], send_probe: Callable[[str], None],
                 fallback_interval: float = 1.0, idle_check_interval: float = 5.0, unlisten_after: float = 30.0,
                 probe_timeout: float = 2.0, reverify_interval: float = 60.0, max_backoff: float = 2.0):
        self._connect = connect
        self._send_probe = send_probe
        self.fallback_interval = fallback_interval
        self.idle_check_interval = idle_check_interval
        self.unlisten_after = unlisten_after
        self.probe_timeout = probe_timeout
        self.reverify_interval = reverify_interval
        self.max_backoff = max_backoff
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._last_used: dict[str, float] = {}
        self._listening: set[str] = set()
        self._state = WAIT
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watched: dict[str, list[Callable[[str | None], None]]] = {}
        self._acknowledge: dict[str, str] = {}
        self._fd: int | None = None
        self._busy = True
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.reconnects = 0

    @property
    def state(self) -> str:
        """`wait` (no connection), `push` (notifications verified), or `poll` (connected, notifications missing)."""
        return self._state

    @property
    def channels(self) -> frozenset[str]:
        """The channels LISTENed on the current connection."""
        with self._lock:
            return frozenset(self._listening)

    @contextlib.contextmanager
    def subscribe(self, channel: str) -> Iterator[Subscription]:
        """Register a waiter on `channel` for the block. Its mode tells whether reading the head now is safe."""
        subscription = Subscription(channel)
        with self._lock:
            self._subscribers.setdefault(channel, set()).add(subscription)
            if self._state == PUSH and channel in self._listening:
                subscription.mode = PUSH
            elif self._state == POLL:
                subscription.mode = POLL
            self._ensure_started()
        if subscription.mode == WAIT:
            self._poke()
        try:
            yield subscription
        finally:
            with self._lock:
                waiting = self._subscribers.get(channel)
                if waiting is not None:
                    waiting.discard(subscription)
                    if not waiting:
                        del self._subscribers[channel]
                if channel in self._listening:
                    self._last_used[channel] = time.monotonic()

    def watch(self, channel: str, on_change: Callable[[str | None], None], acknowledge_on: str | None = None,
              start: bool = True) -> None:
        """Keep `channel` LISTENed while connected and call `on_change(payload)` (on the listener thread; it must be
        quick) on each NOTIFY on it, and `on_change(None)` when the connection is lost and once LISTEN completes on a
        new connection. With `acknowledge_on`, each NOTIFY's payload is sent back on that channel once the callbacks
        ran. `start`: start the listener thread now (else with the first subscriber or started watch)."""
        with self._lock:
            self._watched.setdefault(channel, []).append(on_change)
            if acknowledge_on is not None:
                self._acknowledge[channel] = acknowledge_on
            if start:
                self._ensure_started()
        self._poke()

    def start(self) -> None:
        """Start the listener thread unless it runs (or was closed)."""
        with self._lock:
            self._ensure_started()

    def new_connection(self):
        """A new connection to the listen URL, bounded like the listener's own (the caller closes it)."""
        return self._connect()

    def is_current(self, channel: str) -> bool:
        """True when `channel` is LISTENed on a connection whose notifications are verified to arrive, and nothing
        is waiting to be read from it or being handled: every NOTIFY on it that reached this process has been
        passed to the watchers. Checked by the caller's thread (one zero-timeout poll of the socket, ~2 us)."""
        with self._lock:
            fd = self._fd
            if self._state != PUSH or channel not in self._listening or fd is None:
                return False
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if poller.poll(0):
                return False
        except (OSError, ValueError):
            return False
        return not self._busy

    def _changed(self, channels, payload: str | None = None) -> None:
        for channel in channels:
            with self._lock:
                callbacks = list(self._watched.get(channel, ()))
            for callback in callbacks:
                try:
                    callback(payload)
                except Exception:  # noqa: BLE001 - a watcher's bug must not stop the listener
                    log.exception("listener watch callback failed", extra={"channel": channel})

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._poke()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._wake_all(WAIT)

    def _ensure_started(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="stream-listener", daemon=True)
            self._thread.start()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def _drain_pokes(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_read, 4096):
                pass

    def _wake_all(self, mode: str) -> None:
        with self._lock:
            self._state = mode
            for waiting in self._subscribers.values():
                for subscription in waiting:
                    subscription.mode = mode
                    subscription.wake()

    def _run(self) -> None:
        backoff = 0.05
        connected_once = False
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried with backoff
                if connected_once:
                    log.debug("long-poll listener cannot reconnect yet", extra={"error_type": type(exc).__name__})
                else:
                    log.warning("long-poll listener cannot connect; retrying", extra={"error_type": type(exc).__name__})
                    connected_once = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.05
            if connected_once:
                self.reconnects += 1
            connected_once = True
            try:
                conn.autocommit = True
                with self._lock:
                    self._fd = conn.fileno()
                self._serve(conn)
            except (psycopg2.Error, OSError) as exc:
                if not self._stop.is_set():
                    log.warning("long-poll listener lost its connection; reconnecting",
                                extra={"error_type": type(exc).__name__})
            except Exception:  # noqa: BLE001 - the thread must outlive any bug; waiters fall back to their deadline
                log.exception("long-poll listener failed; reconnecting")
                self._stop.wait(self.max_backoff)
            finally:
                with self._lock:
                    self._listening.clear()
                    self._last_used.clear()
                    self._state = WAIT
                    self._fd = None
                    self._busy = True
                    watched = list(self._watched)
                self._changed(watched)
                with contextlib.suppress(Exception):
                    conn.close()
                self._wake_all(WAIT)

    def _verify(self, conn) -> bool | None:
        """Send a probe NOTIFY through the pool; True when it arrives here, False when it does not, None when it
        could not be sent."""
        channel = f"ves_probe_{os.getpid()}_{secrets.token_hex(6)}"
        with conn.cursor() as cursor:
            cursor.execute(f"LISTEN {channel}")
        try:
            try:
                self._send_probe(channel)
            except Exception as exc:  # noqa: BLE001 - the pool's database may be down; verify again later
                log.warning("long-poll listener could not send its probe", extra={"error_type": type(exc).__name__})
                return None
            deadline = time.monotonic() + self.probe_timeout
            while True:
                conn.poll()
                arrived = any(n.channel == channel for n in conn.notifies)
                conn.notifies.clear()
                if arrived:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                select.select([conn], [], [], remaining)
        finally:
            with conn.cursor() as cursor:
                cursor.execute(f"UNLISTEN {channel}")

    def _serve(self, conn) -> None:
        verified = self._verify(conn)
        last_verify = time.monotonic()
        self._enter(verified)
        last_traffic = time.monotonic()
        while not self._stop.is_set():
            if not verified and time.monotonic() - last_verify >= (
                    self.reverify_interval if verified is False else self.idle_check_interval):
                verified = self._verify(conn)
                last_verify = last_traffic = time.monotonic()
                self._enter(verified)
            if verified:
                self._sync_channels(conn)
            self._deliver(conn)  # what arrived while the statements above ran
            self._busy = False
            ready, _, _ = select.select([conn, self._wake_read], [], [], self.idle_check_interval)
            self._busy = True
            if self._wake_read in ready:
                self._drain_pokes()
            if conn in ready:
                conn.poll()
                last_traffic = time.monotonic()
                self._deliver(conn)
            elif not ready and time.monotonic() - last_traffic >= self.idle_check_interval:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1")
                last_traffic = time.monotonic()
                self._deliver(conn)

    def _enter(self, verified: bool | None) -> None:
        """Switch every subscription to the mode this connection supports, and wake them to read again."""
        if verified:
            if self._state != PUSH:
                log.info("long-poll listener is listening")
            with self._lock:
                self._state = PUSH
                for waiting in self._subscribers.values():
                    for subscription in waiting:
                        subscription.mode = WAIT
            return
        if verified is False and self._state != POLL:
            log.warning("NOTIFY does not arrive on DATABASE_LISTEN_URL (a transaction-pooling PgBouncer?); long "
                        "polls re-read every %.1f s instead", self.fallback_interval)
        self._wake_all(POLL)

    def _sync_channels(self, conn) -> None:
        """LISTEN channels that gained subscribers, UNLISTEN ones unused for `unlisten_after`, then switch every
        subscription of a listened channel to `push` (waking those that were not)."""
        now = time.monotonic()
        with self._lock:
            wanted = set(self._subscribers) | set(self._watched)
            to_listen = wanted - self._listening
            unused = self._listening - wanted
            to_unlisten = unused if len(unused) > MAX_UNUSED_CHANNELS else {
                ch for ch in unused if now - self._last_used.get(ch, 0.0) >= self.unlisten_after}
            self._listening -= to_unlisten
            for channel in to_unlisten:
                self._last_used.pop(channel, None)
        if to_listen or to_unlisten:
            statements = [f"LISTEN {ch}" for ch in sorted(to_listen)] + [f"UNLISTEN {ch}" for ch in sorted(to_unlisten)]
            with conn.cursor() as cursor:
                cursor.execute("; ".join(statements))
        self._changed(sorted(to_listen))
        with self._lock:
            self._listening |= to_listen
            for channel in self._listening:
                for subscription in self._subscribers.get(channel, ()):
                    if subscription.mode != PUSH:
                        subscription.mode = PUSH
                        subscription.wake()

    def _deliver(self, conn) -> None:
        while conn.notifies:
            notifies = list(conn.notifies)
            conn.notifies.clear()
            acknowledgements = []
            for notify in notifies:
                if notify.channel in self._watched:
                    self._changed([notify.channel], notify.payload)
                    if notify.channel in self._acknowledge:
                        acknowledgements.append((self._acknowledge[notify.channel], notify.payload))
            if acknowledgements:
                with conn.cursor() as cursor:  # may read further notifications: the loop handles them
                    cursor.execute("SELECT " + ", ".join(["pg_notify(%s, %s)"] * len(acknowledgements)),
                                   [value for pair in acknowledgements for value in pair])
            self._wake_subscribers({n.channel for n in notifies})

    def _wake_subscribers(self, channels) -> None:
        with self._lock:
            for channel in channels:
                for subscription in self._subscribers.get(channel, ()):
                    subscription.wake()


def make_listener(settings, engine) -> StreamListener:
    """The listener of one process: LISTEN on `settings.listen_url` with the same connection bounds as the pool,
    probe NOTIFYs through `engine` (the path real NOTIFYs take)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from app.db.engine import connect_args

    args, kwargs = engine.dialect.create_connect_args(make_url(settings.listen_url))
    kwargs = {**kwargs, **connect_args(settings), "application_name": LISTENER_APPLICATION_NAME}

    def connect():
        return psycopg2.connect(*args, **kwargs)

    def send_probe(channel: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_notify(:channel, 'probe')"), {"channel": channel})

    return StreamListener(connect, send_probe)
