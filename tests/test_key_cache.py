"""The per-worker API key cache (app/db/key_cache.py): used only while NOTIFY delivery is vouched for, emptied by any
change to api_keys (the trigger of alembic 0007), and a revoked key refused on its next request by every gunicorn
worker."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app.db.key_cache import API_KEYS_CHANNEL
from app.db.key_cache import NotifiedCache
from app.db.notify import make_listener
from app.services.api_keys import create_api_key
from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import start_gunicorn


class _Listener:
    """A stand-in listener: `current` says whether it vouches for the channel."""

    def __init__(self, current=True):
        self.current = current
        self.watched = []

    def watch(self, channel, on_change, acknowledge_on=None, start=True):
        self.watched.append((channel, on_change))

    def start(self):
        self.started = True

    def is_current(self, channel):
        return self.current


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _loader(values):
    calls = []

    def load():
        calls.append(1)
        return values.pop(0) if values else None

    return load, calls


def test_an_entry_is_served_from_the_cache_while_the_listener_vouches_for_the_channel():
    listener = _Listener()
    cache = NotifiedCache(listener, "ch", ttl_seconds=10)
    load, calls = _loader(["a", "b"])
    assert cache.get("k", load) == "a"
    assert cache.get("k", load) == "a"
    assert len(calls) == 1
    assert listener.watched and listener.watched[0][0] == "ch"


def test_nothing_is_cached_or_served_while_delivery_is_in_doubt():
    listener = _Listener(current=False)
    cache = NotifiedCache(listener, "ch", ttl_seconds=10)
    load, calls = _loader(["a", "b", "c"])
    assert [cache.get("k", load), cache.get("k", load)] == ["a", "b"]
    listener.current = True
    assert cache.get("k", load) == "c" and cache.get("k", load) == "c"
    listener.current = False  # the connection dropped: a cached entry is no longer trusted
    load2, calls2 = _loader(["d"])
    assert cache.get("k", load2) == "d" and len(calls2) == 1


def test_a_notification_empties_the_cache():
    listener = _Listener()
    cache = NotifiedCache(listener, "ch", ttl_seconds=10)
    load, calls = _loader(["a", "revoked"])
    assert cache.get("k", load) == "a"
    listener.watched[0][1]()  # what the listener thread runs on a NOTIFY
    assert cache.get("k", load) == "revoked" and len(calls) == 2


def test_a_value_read_while_a_notification_arrived_is_not_stored():
    listener = _Listener()
    cache = NotifiedCache(listener, "ch", ttl_seconds=10)

    def load_during_a_change():
        cache.invalidate()
        return "maybe stale"

    assert cache.get("k", load_during_a_change) == "maybe stale"
    load, calls = _loader(["fresh"])
    assert cache.get("k", load) == "fresh" and len(calls) == 1


def test_misses_are_never_cached_and_entries_expire_after_the_ttl():
    clock = _Clock()
    cache = NotifiedCache(_Listener(), "ch", ttl_seconds=10, clock=clock)
    load, calls = _loader([None, "created"])
    assert cache.get("k", load) is None
    assert cache.get("k", load) == "created"
    clock.now += 9.9
    assert cache.get("k", load) == "created" and len(calls) == 2
    clock.now += 0.2
    assert cache.get("k", load) is None and len(calls) == 3


def test_ttl_zero_turns_the_cache_off():
    listener = _Listener()
    cache = NotifiedCache(listener, "ch", ttl_seconds=0)
    load, calls = _loader(["a", "b"])
    assert [cache.get("k", load), cache.get("k", load)] == ["a", "b"]


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_the_trigger_notifies_every_change_to_api_keys_through_a_real_listener(settings, engine):
    listener = make_listener(settings, engine)
    changes = threading.Event()
    try:
        payloads = []
        listener.watch(API_KEYS_CHANNEL, lambda payload: (payloads.append(payload), changes.set()))
        assert _wait_for(lambda: listener.is_current(API_KEYS_CHANNEL)), "the listener never LISTENed"
        changes.clear()
        _, record = create_api_key(engine, tenant_id=uuid.uuid4(), permissions="read")
        assert not changes.wait(0.3), "an insert needs no NOTIFY (misses are never cached)"
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE key_id = :k"), {"k": record.key_id})
        assert changes.wait(5), "a revocation by plain SQL must NOTIFY"
        assert payloads[-1].isdigit(), "the payload is the changing transaction's id"
    finally:
        listener.close()
    assert not listener.is_current(API_KEYS_CHANNEL)


def test_a_key_revoked_by_plain_sql_is_refused_on_the_next_request_in_process(make_app, engine):
    app = make_app()
    client = app.test_client()
    secret, record = create_api_key(engine, tenant_id=uuid.uuid4(), permissions="read")
    headers = {"Authorization": f"ApiKey {secret}"}
    cache = app.extensions["sequencer"].api_keys
    listener = app.extensions["sequencer"].long_polls.listener
    path = f"/api/v1/ves/head?tenant_id={record.tenant_id}&store_id={uuid.uuid4()}"
    assert client.get(path, headers=headers).status_code == 200
    assert _wait_for(lambda: listener.is_current(API_KEYS_CHANNEL))
    assert client.get(path, headers=headers).status_code == 200
    hits = cache.hits
    assert client.get(path, headers=headers).status_code == 200
    assert cache.hits == hits + 1, "the key should now come from the cache"
    epoch = cache.epoch
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE key_id = :k"), {"k": record.key_id})
    # Behind the app's back, the change is seen as soon as its NOTIFY is read (the listener thread, microseconds
    # after the commit); a revocation through the API waits for it before answering (next test).
    assert cache.wait_for_invalidation(epoch, 5)
    response = client.get(path, headers=headers)
    assert response.status_code == 401 and response.json["code"] == "invalid_api_key"


def test_a_key_revoked_through_the_api_is_refused_on_the_very_next_request_in_process(make_app, engine):
    app = make_app(bootstrap_admin_api_key=BOOTSTRAP_KEY)
    client = app.test_client()
    secret, record = create_api_key(engine, tenant_id=uuid.uuid4(), permissions="read")
    headers = {"Authorization": f"ApiKey {secret}"}
    listener = app.extensions["sequencer"].long_polls.listener
    path = f"/api/v1/ves/head?tenant_id={record.tenant_id}&store_id={uuid.uuid4()}"
    assert client.get(path, headers=headers).status_code == 200
    assert _wait_for(lambda: listener.is_current(API_KEYS_CHANNEL))
    assert client.get(path, headers=headers).status_code == 200
    hits = app.extensions["sequencer"].api_keys.hits
    assert client.get(path, headers=headers).status_code == 200
    assert app.extensions["sequencer"].api_keys.hits == hits + 1
    for _ in range(3):  # and again after re-caching nothing: every request refuses it
        assert client.delete(f"/api/v1/admin/api-keys/{record.key_id}",
                             headers={"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}).status_code == 204
        response = client.get(path, headers=headers)
        assert response.status_code == 401 and response.json["code"] == "invalid_api_key"


# ---------------------------------------------------------------------------------------------------------------
# Through gunicorn: every worker


ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
WORKERS = 3


def _per_worker(metrics_dir: Path, metric: str) -> dict[int, dict[str, float]]:
    """`{pid: {labels json: value}}` of one counter, read from each worker's own multiprocess file."""
    from prometheus_client.mmap_dict import MmapedDict

    found: dict[int, dict[str, float]] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for entry in MmapedDict.read_all_values_from_file(str(path)):
            key, value = entry[0], entry[1]
            name, sample, labels, _ = json.loads(key)
            if sample == metric:
                found.setdefault(pid, {})[json.dumps(labels, sort_keys=True)] = value
    return found


def _requests_by_worker(metrics_dir: Path) -> dict[int, float]:
    return {pid: sum(values.values())
            for pid, values in _per_worker(metrics_dir, "sequencer_api_key_lookups_total").items()}


def _cache_hits_by_worker(metrics_dir: Path) -> dict[int, float]:
    return {pid: values.get(json.dumps({"source": "cache"}), 0.0)
            for pid, values in _per_worker(metrics_dir, "sequencer_api_key_lookups_total").items()}


@pytest.mark.slow
def test_a_revoked_key_is_refused_on_its_next_request_by_every_gunicorn_worker(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": "11" * 32, "LOG_LEVEL": "warning",
           "RATE_LIMIT_PER_MINUTE": "0"}
    with start_gunicorn(database_url, env=env, workers=WORKERS) as server:
        pids = set(server.worker_pids())
        assert len(pids) == WORKERS
        tenant = uuid.uuid4()
        keys = []
        for _ in range(2):
            created = requests.post(f"{server.url}/api/v1/admin/api-keys", headers=ADMIN, timeout=10,
                                    json={"tenant_id": str(tenant), "permissions": "read"})
            assert created.status_code == 201, created.text
            keys.append(created.json())
        url = f"{server.url}/api/v1/ves/head?tenant_id={tenant}&store_id={uuid.uuid4()}"

        def get(key):  # a new connection each time, so the kernel spreads them over the workers
            return requests.get(url, headers={"Authorization": f"ApiKey {key['api_key']}", "Connection": "close"},
                                timeout=10)

        # Every worker serves both keys from its cache (so the test can fail if the cache were not emptied).
        deadline = time.monotonic() + 60
        while True:
            for key in keys:
                assert get(key).status_code == 200
            hits = _cache_hits_by_worker(server.metrics_dir)
            if all(hits.get(pid, 0) >= 4 for pid in pids):
                break
            assert time.monotonic() < deadline, f"not every worker cached the keys: {hits}"

        def refused_everywhere(key, how):
            before = _requests_by_worker(server.metrics_dir)
            how()
            seen: set[int] = set()
            answers = []
            deadline = time.monotonic() + 60
            while seen != pids:
                response = get(key)
                answers.append((response.status_code, response.json().get("code")))
                now = _requests_by_worker(server.metrics_dir)
                seen = {pid for pid in pids if now.get(pid, 0) > before.get(pid, 0)}
                assert time.monotonic() < deadline, f"requests never reached every worker: {seen} of {pids}"
            assert set(answers) == {(401, "invalid_api_key")}, answers

        # Revoked through the API (by whichever worker took the DELETE) ...
        refused_everywhere(keys[0], lambda: requests.delete(
            f"{server.url}/api/v1/admin/api-keys/{keys[0]['key_id']}", headers=ADMIN, timeout=10).raise_for_status())
        # ... and behind every worker's back, by plain SQL.
        sql = sa.create_engine(database_url)

        def revoke_by_sql():
            with sql.begin() as conn:
                conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE key_id = :k"),
                             {"k": keys[1]["key_id"]})

        try:
            refused_everywhere(keys[1], revoke_by_sql)
        finally:
            sql.dispose()
        assert set(server.worker_pids()) == pids
