"""The per-process LISTEN thread (app/db/notify.py) against the real database: waiters hold no connection, no event
is missed across a lost connection, the wait never outlives its deadline, and without working notifications the
waiters fall back to re-reading."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.db import events as event_store
from app.db.engine import connect_args
from app.db.notify import POLL
from app.db.notify import PUSH
from app.db.notify import WAIT
from app.db.notify import StreamListener
from app.db.notify import make_listener
from app.services.query import LongPolls
from app.services.query import read_page
from app.services.query import wait_for_head


def _connector(settings, engine, gate=None, opened=None):
    args, kwargs = engine.dialect.create_connect_args(make_url(settings.database_url))
    kwargs = {**kwargs, **connect_args(settings)}

    def connect():
        if gate is not None and not gate.wait(30):
            raise psycopg2.OperationalError("gate closed")
        conn = psycopg2.connect(*args, **kwargs)
        if opened is not None:
            opened.append(conn)
        return conn

    return connect


def _probe_through(engine):
    def send_probe(channel):
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_notify(:c, 'probe')"), {"c": channel})
    return send_probe


def _move_head(engine, tenant, store, head, notify=True):
    with engine.begin() as conn:
        event_store.read_stream_head(conn, tenant, store, create=True)
        if notify:
            event_store.advance_stream_head(conn, tenant, store, head)
        else:
            conn.execute(sa.text("UPDATE streams SET head_sequence = :h WHERE tenant_id = :t AND store_id = :s"),
                         {"h": head, "t": tenant, "s": store})


def _until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _wait_in_thread(engine, listener, tenant, store, wanted, timeout):
    result = {}

    def run():
        started = time.monotonic()
        result["woke"] = wait_for_head(engine, listener, tenant, store, wanted, timeout)
        result["at"] = time.monotonic()
        result["elapsed"] = result["at"] - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_commit_while_the_listener_is_disconnected_still_wakes_the_waiter(settings, engine):
    gate, opened = threading.Event(), []
    gate.set()
    listener = StreamListener(_connector(settings, engine, gate, opened), _probe_through(engine),
                              idle_check_interval=0.5)
    tenant, store = uuid.uuid4(), uuid.uuid4()
    try:
        thread, result = _wait_in_thread(engine, listener, tenant, store, 1, 20)
        assert _until(lambda: listener.state == PUSH and opened)
        time.sleep(0.3)
        gate.clear()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": opened[-1].get_backend_pid()})
            conn.commit()
        assert _until(lambda: listener.state == WAIT)
        _move_head(engine, tenant, store, 1)
        time.sleep(0.5)
        assert thread.is_alive(), "the waiter returned although nothing could have told it"
        reopened = time.monotonic()
        gate.set()
        thread.join(timeout=10)
        assert result["woke"] is True and result["at"] - reopened < 3.0
        assert listener.reconnects == 1
    finally:
        gate.set()
        listener.close()


def test_a_waiter_holds_no_pooled_connection_and_wakes_at_once_on_notify(settings, engine):
    listener = make_listener(settings, engine)
    tenant, store = uuid.uuid4(), uuid.uuid4()
    try:
        threads = [_wait_in_thread(engine, listener, tenant, store, 1, 10) for _ in range(3)]
        assert _until(lambda: listener.state == PUSH)
        time.sleep(0.3)
        assert engine.pool.checkedout() == 0
        _move_head(engine, tenant, store, 1)
        committed = time.monotonic()
        for thread, result in threads:
            thread.join(timeout=10)
            assert result["woke"] is True and result["at"] - committed < 0.5
    finally:
        listener.close()


def test_the_wait_never_exceeds_its_deadline_when_the_listener_cannot_connect(settings, engine):
    def refuse():
        raise psycopg2.OperationalError("no database here")

    listener = StreamListener(refuse, _probe_through(engine))
    try:
        started = time.monotonic()
        assert wait_for_head(engine, listener, uuid.uuid4(), uuid.uuid4(), 1, 1.0) is False
        assert 0.95 < time.monotonic() - started < 1.3
    finally:
        listener.close()


def test_without_notifications_waiters_re_read_every_fallback_interval(settings, engine):
    listener = StreamListener(_connector(settings, engine), lambda channel: None, fallback_interval=0.3,
                              probe_timeout=0.2)
    tenant, store = uuid.uuid4(), uuid.uuid4()
    try:
        thread, result = _wait_in_thread(engine, listener, tenant, store, 1, 10)
        assert _until(lambda: listener.state == POLL)
        time.sleep(0.2)
        _move_head(engine, tenant, store, 1, notify=False)
        committed = time.monotonic()
        thread.join(timeout=10)
        assert result["woke"] is True and result["at"] - committed < 0.6
    finally:
        listener.close()


def test_a_poll_without_a_free_slot_is_answered_at_once_with_retry_after(settings, engine):
    long_polls = LongPolls(make_listener(settings, engine), slots=1)
    tenant, store = uuid.uuid4(), uuid.uuid4()
    try:
        holder = {}
        thread = threading.Thread(target=lambda: holder.update(
            page=read_page(engine, tenant, store, 1, 10, 5.0, long_polls=long_polls)))
        thread.start()
        assert _until(lambda: long_polls.listener.state == PUSH)
        time.sleep(0.2)
        started = time.monotonic()
        refused = read_page(engine, tenant, store, 1, 10, 5.0, long_polls=long_polls)
        assert time.monotonic() - started < 0.5
        assert (refused.rows, refused.head, refused.retry_after) == ([], 0, 1)
        _move_head(engine, tenant, store, 1)
        thread.join(timeout=10)
        assert holder["page"].retry_after is None and holder["page"].head == 1
        assert read_page(engine, tenant, store, 2, 10, 0.0, long_polls=long_polls).retry_after is None
    finally:
        long_polls.close()


def test_channels_without_waiters_are_unlistened_after_a_while(settings, engine):
    listener = StreamListener(_connector(settings, engine), _probe_through(engine), idle_check_interval=0.2,
                              unlisten_after=0.5)
    try:
        tenant, store = uuid.uuid4(), uuid.uuid4()
        assert wait_for_head(engine, listener, tenant, store, 1, 0.3) is False
        assert listener.channels == {event_store.stream_channel(tenant, store)}
        assert _until(lambda: listener.channels == frozenset(), timeout=5)
    finally:
        listener.close()
