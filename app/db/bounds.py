"""Client-side deadlines on every wait for PostgreSQL, including the ones TCP cannot see.

libpq's keepalives and `tcp_user_timeout` bound a dead network, and PostgreSQL's `statement_timeout` and
`lock_timeout` bound a live but slow server. Neither bounds a peer that keeps the TCP connection open and never
answers: a frozen pooler, a proxy in front of a vanished node, a stalled forwarder. psycopg2's wait callback does.
Installed once per process, it makes every connect and every query wait in `poll()` with a deadline; past the
deadline the connection is closed and `psycopg2.OperationalError` is raised, which SQLAlchemy treats as a
disconnect (the pool drops the connection) and the API answers 503 `DATABASE_UNAVAILABLE`.

Only connections made through a class from `bounded_connection_class` get deadlines and fail-fast; every other
psycopg2 connection in the process waits as it did without the callback.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time

import psycopg2
import psycopg2.extensions as ext

_install_lock = threading.Lock()
_installed = False
_relaxed = threading.local()


class DatabaseTimeout(psycopg2.OperationalError):
    """The database did not answer within the deadline; the connection has been closed."""


class DatabaseUnreachable(psycopg2.OperationalError):
    """Refused without trying: the database recently stopped answering and the one trial in flight has not
    succeeded yet."""


class Reachability:
    """Fail fast while a database is known not to answer.

    After a wait times out, new operations on that database fail at once, except one trial at a time, started at
    most every `retry_interval` seconds; the first operation that completes marks the database reachable again.
    So a vanished database holds at most one more thread per process per interval, not every thread.
    """

    def __init__(self, retry_interval: float = 1.0):
        self.retry_interval = retry_interval
        self._lock = threading.Lock()
        self._down = False
        self._next_trial = 0.0
        self._trial_running = False

    @property
    def down(self) -> bool:
        return self._down

    def admit(self) -> bool | None:
        """None: proceed normally. True: proceed as the trial (report back with `finished`). False: refuse."""
        with self._lock:
            if not self._down:
                return None
            now = time.monotonic()
            if self._trial_running or now < self._next_trial:
                return False
            self._trial_running = True
            return True

    def finished(self, trial: bool | None, completed: bool, timed_out: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if completed:
                self._down = False
            elif timed_out or (trial and self._down):
                self._down = True
                self._next_trial = time.monotonic() + self.retry_interval


def bounded_connection_class(connect_timeout: float, response_timeout: float | None,
                             retry_interval: float = 1.0) -> type:
    """A psycopg2 connection class (pass as `connection_factory`) whose connects end within `connect_timeout`
    seconds and whose every other wait ends within `response_timeout` seconds (None: unbounded). Connections of one
    class share one `Reachability`: use one class per database endpoint (one engine)."""
    install_wait_callback()
    return type("BoundedConnection", (ext.connection,), {
        "connect_timeout": float(connect_timeout),
        "response_timeout": None if response_timeout is None else float(response_timeout),
        "reachability": Reachability(retry_interval),
    })


@contextlib.contextmanager
def deadline_at_most(seconds: float):
    """In this thread, for the block: every connect and answer of a bounded connection ends within `seconds` (or
    its class's own bound, when shorter). For a check that must answer quickly whatever the database does: the
    readiness probe's look at the read replica."""
    previous = getattr(_relaxed, "cap", None)
    _relaxed.cap = seconds if previous is None else min(previous, seconds)
    try:
        yield
    finally:
        _relaxed.cap = previous


@contextlib.contextmanager
def no_answer_deadline():
    """In this thread, for the block: no client-side deadline on answers (connects stay bounded). For work that
    may legitimately wait long with nothing on the wire: migrations (DDL, the migration lock)."""
    previous = getattr(_relaxed, "active", False)
    _relaxed.active = True
    try:
        yield
    finally:
        _relaxed.active = previous


def install_wait_callback() -> None:
    """Make psycopg2 run every query through `wait_with_deadline` (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if not _installed:
            ext.set_wait_callback(wait_with_deadline)
            _installed = True


def wait_with_deadline(conn) -> None:
    """psycopg2 wait callback: drive `conn.poll()` to completion, waiting at most the class's deadline.

    One call covers one operation (a whole connect, or one query until its result). Raising closes the
    connection (psycopg2 does that for a failed wait callback).
    """
    cls = type(conn)
    reachability: Reachability | None = getattr(cls, "reachability", None)
    connecting = conn.status == ext.STATUS_SETUP
    if connecting:
        timeout = getattr(cls, "connect_timeout", None)
    else:
        timeout = None if getattr(_relaxed, "active", False) else getattr(cls, "response_timeout", None)
    cap = getattr(_relaxed, "cap", None)
    if cap is not None and reachability is not None:
        timeout = cap if timeout is None else min(timeout, cap)
    trial = reachability.admit() if reachability is not None else None
    if trial is False:
        raise DatabaseUnreachable("the database is not answering (a recent wait timed out); failing fast")
    deadline = None if timeout is None else time.monotonic() + timeout
    completed = timed_out = False
    poller = select.poll()
    registered = None
    try:
        while True:
            state = conn.poll()
            if state == ext.POLL_OK:
                completed = True
                return
            events = select.POLLIN if state == ext.POLL_READ else select.POLLOUT
            fd = conn.fileno()
            if registered != (fd, events):
                if registered is not None:
                    poller.unregister(registered[0])
                poller.register(fd, events | select.POLLERR | select.POLLHUP)
                registered = (fd, events)
            if deadline is None:
                poller.poll()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not poller.poll(remaining * 1000):
                timed_out = True
                what = "connect" if connecting else "answer"
                raise DatabaseTimeout(f"the database did not {what} within {timeout:g} s; connection closed")
    finally:
        if reachability is not None:
            reachability.finished(trial, completed, timed_out)
