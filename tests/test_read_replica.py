"""Reads from a real hot standby (`DATABASE_READ_URL`), with replication lag induced by pausing its WAL replay.

The primary and the standby are PostgreSQL servers this module starts (`pg_basebackup -R`, tests/support/standby.py).
What must hold: a client never sees a head go backwards nor a page that ends before a sequence number it was given
a receipt for, whichever database answers; the replica really answers when it may (proved by a deliberately low
`min_sequence` getting its stale view); long polls wake and return the event although the replica lags; a vanished
replica costs one bounded wait, then reads go to the primary at once; `/ready` reports the lag and stays 200.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
import requests
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from app import create_app
from app.db.migrations import upgrade_to_head
from tests.controls import Stream
from tests.support.blackhole import BlackholeForwarder
from tests.support.pg import create_database
from tests.support.servers import free_port
from tests.support.servers import start_gunicorn
from tests.support.standby import start_streaming_pair
from tests.test_worker_model import ADMIN
from tests.test_worker_model import register_signer
from tests.test_worker_model import server_env

pytestmark = pytest.mark.slow  # its own PostgreSQL pair: nothing to gain from the second run on another server


@pytest.fixture(scope="module")
def pair():
    with start_streaming_pair() as streaming:
        yield streaming


@pytest.fixture(scope="module")
def primary_url(pair):
    url = create_database(pair.primary.url(), prefix="seqreplica")
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    pair.wait_caught_up()
    return url


def on_port(url: str, port: int) -> str:
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def standby_url(pair, primary_url):
    return on_port(primary_url, pair.standby.port)


@pytest.fixture(scope="module")
def primary_engine(primary_url):
    engine = sa.create_engine(primary_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def replica_app(settings, primary_url, standby_url):
    app = create_app(settings.replace(database_url=primary_url, database_read_url=standby_url,
                                      long_poll_max_seconds=10.0))
    yield app
    app.extensions["sequencer"].close()


@pytest.fixture
def stream(replica_app, primary_engine, pair):
    created = Stream(replica_app.test_client(), primary_engine)
    pair.wait_caught_up()
    return created


@pytest.fixture
def lagging(pair):
    """Replay paused for the test (the standby keeps receiving WAL); resumed and caught up afterwards."""
    pair.pause_replay()
    try:
        yield pair
    finally:
        pair.resume_replay()
        pair.wait_caught_up()


def replica_reads(outcome: str) -> float:
    return REGISTRY.get_sample_value("sequencer_replica_reads_total", {"outcome": outcome}) or 0.0


def get(stream, path: str, **params) -> dict:
    query = "".join(f"&{key}={value}" for key, value in params.items())
    response = stream.client.get(f"{path}?{stream.query}{query}", headers=stream.headers)
    assert response.status_code == 200, response.json
    return response.json


def page_numbers(stream, **params) -> tuple[list[int], int]:
    body = get(stream, "/api/v1/ves/events", limit=1000, **params)
    return [event["sequence_number"] for event in body["events"]], body["head_sequence"]


def head(stream, **params) -> int:
    return get(stream, "/api/v1/ves/head", **params)["head_sequence"]


def ingest(stream, count: int, entity: str = "order-1") -> list[int]:
    body = stream.ingest([stream.event(entity, {"i": i}) for i in range(count)])
    return [receipt["sequenceNumber"] for receipt in body["receipts"]]


def test_a_caught_up_replica_answers_and_a_lagging_one_never_hides_a_receipted_write(stream, pair):
    ingest(stream, 3)
    pair.wait_caught_up()
    served = replica_reads("served")
    assert page_numbers(stream) == ([1, 2, 3], 3)
    assert replica_reads("served") == served + 1
    pair.pause_replay()
    try:
        assert ingest(stream, 2) == [4, 5]
        behind = replica_reads("behind")
        assert page_numbers(stream) == ([1, 2, 3, 4, 5], 5)
        assert page_numbers(stream, min_sequence=5) == ([1, 2, 3, 4, 5], 5)
        assert replica_reads("behind") == behind + 2
        # Asked for no more than it has, the paused replica answers with its own (older) view: it is really used.
        assert page_numbers(stream, min_sequence=3) == ([1, 2, 3], 3)
        assert (head(stream), head(stream, min_sequence=5), head(stream, min_sequence=2)) == (5, 5, 3)
        history = get(stream, "/api/v1/ves/entities/order/order-1")
        assert (history["version"], [e["sequence_number"] for e in history["events"]]) == (5, [1, 2, 3, 4, 5])
        assert get(stream, "/api/v1/ves/entities/order/order-1", min_sequence=3)["version"] == 3
        newest = get(stream, "/api/v1/ves/events", **{"from": 5})["events"][0]
        assert get(stream, f"/api/v1/ves/events/{newest['event_id']}")["sequence_number"] == 5
    finally:
        pair.resume_replay()
        pair.wait_caught_up()
    assert page_numbers(stream, min_sequence=5) == ([1, 2, 3, 4, 5], 5)


def test_one_client_replica_then_primary_then_replica_never_sees_its_head_go_back(stream, lagging):
    """The issue's sequence: a read the replica answers, a write, a read the primary must answer, and a read the
    replica could answer if its stale view were allowed; then the replica catches up and answers again."""
    ingest(stream, 2)
    lagging.resume_replay()
    lagging.wait_caught_up()
    lagging.pause_replay()
    other = ingest(stream, 2, "someone-else")
    assert other == [3, 4]
    seen = head(stream, min_sequence=2)
    assert seen == 2  # the replica, paused at 2
    (mine,) = ingest(stream, 1)
    seen = max(seen, mine)
    served = replica_reads("served")
    assert head(stream, min_sequence=seen) == 5  # the primary: the replica is behind the client's position
    assert page_numbers(stream, min_sequence=seen)[1] == 5
    assert head(stream, min_sequence=seen) == 5  # the replica is still at 2: the primary again, not 2
    assert head(stream) == 5 and page_numbers(stream)[0][-1] == 5
    assert replica_reads("served") == served
    lagging.resume_replay()
    lagging.wait_caught_up()
    assert head(stream, min_sequence=seen) == 5
    assert replica_reads("served") == served + 1


def test_randomised_interleaving_of_writes_lag_and_reads_keeps_every_client_monotonic(replica_app, primary_engine,
                                                                                      pair):
    """Three clients (one sends its position as min_sequence, one sends a stale or no position, one never sends it)
    write and read one stream while the replica's replay is paused and resumed at random. Every head a client is
    shown is at least every head it was shown before and every number it was receipted; every page ends no earlier
    than its last receipt."""
    stream = Stream(replica_app.test_client(), primary_engine)
    rng = random.Random(14)
    shown = {"tracking": 0, "careless": 0, "plain": 0}
    receipted = {name: 0 for name in shown}
    paused = False
    try:
        for step in range(60):
            client = rng.choice(list(shown))
            action = rng.random()
            if action < 0.15:
                (pair.resume_replay if paused else pair.pause_replay)()
                paused = not paused
                continue
            if action < 0.45:
                numbers = ingest(stream, rng.randint(1, 3), f"e{step % 4}")
                receipted[client] = max(receipted[client], numbers[-1])
                shown[client] = max(shown[client], numbers[-1])
                continue
            floor = {"tracking": shown[client], "careless": rng.choice([None, 0, shown[client] // 2]),
                     "plain": None}[client]
            params = {} if floor is None else {"min_sequence": floor}
            if rng.random() < 0.5:
                numbers, answered = page_numbers(stream, **params)
                assert numbers == list(range(1, answered + 1))
            else:
                answered = head(stream, **params)
            if client != "careless":
                assert answered >= shown[client], (step, client, answered, shown[client])
                assert answered >= receipted[client]
            shown[client] = max(shown[client], answered)
    finally:
        pair.resume_replay()
        pair.wait_caught_up()
    assert replica_reads("served") > 0 and replica_reads("behind") > 0


def test_a_long_poll_wakes_and_returns_the_event_while_the_replica_lags(stream, lagging):
    ingest(stream, 1)
    waiter = stream.client.application.test_client()
    result = {}

    def poll():
        response = waiter.get(f"/api/v1/ves/events?{stream.query}&from=2&wait=8", headers=stream.headers)
        result["done"], result["body"] = time.monotonic(), response.json

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    assert ingest(stream, 1) == [2]
    committed = time.monotonic()
    thread.join(timeout=15)
    assert [e["sequence_number"] for e in result["body"]["events"]] == [2]
    assert result["body"]["head_sequence"] == 2
    assert result["done"] - committed < 1.5


def test_commitments_and_proofs_are_read_from_the_primary(stream, lagging):
    ingest(stream, 3)
    created = stream.client.post("/api/v1/ves/commitments", headers=stream.headers,
                                 json={"tenant_id": str(stream.tenant_id), "store_id": str(stream.store_id)})
    assert created.status_code == 200, created.json
    batch_id = created.json["batch_id"]
    assert stream.client.get(f"/api/v1/ves/commitments/{batch_id}", headers=stream.headers).status_code == 200
    proof = stream.client.get(f"/api/v1/ves/proofs/3?{stream.query}", headers=stream.headers)
    assert proof.status_code == 200 and proof.json["batch_id"] == batch_id
    listed = get(stream, "/api/v1/ves/commitments")["commitments"]
    assert [c["batch_id"] for c in listed] == [batch_id]


def ready(app) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().get("/ready")
    return response.status_code, response.json, time.monotonic() - started


def test_ready_reports_the_replicas_lag_and_stays_ready_while_it_lags(replica_app, stream, pair):
    status, body, _ = ready(replica_app)
    assert status == 200 and body["status"] == "ready"
    assert body["replica"] == {"status": "current", "lag_bytes": 0, "lag_seconds": 0.0, "replay_paused": False}
    pair.pause_replay()
    try:
        ingest(stream, 5)
        time.sleep(0.3)
        status, body, _ = ready(replica_app)
        assert status == 200
        replica = body["replica"]
        assert replica["status"] == "behind" and replica["replay_paused"] is True
        assert replica["lag_bytes"] > 0 and replica["lag_seconds"] >= 0.2
    finally:
        pair.resume_replay()
    deadline = time.monotonic() + 10
    while ready(replica_app)[1]["replica"]["status"] != "current":
        assert time.monotonic() < deadline, "the replica did not catch up"
        time.sleep(0.1)


def test_ready_has_no_replica_field_without_a_read_replica(client):
    response = client.get("/ready")
    assert response.status_code == 200 and "replica" not in response.json


def test_a_refused_replica_costs_nothing_and_reads_answer_from_the_primary(settings, primary_url, primary_engine):
    app = create_app(settings.replace(database_url=primary_url,
                                      database_read_url=on_port(primary_url, free_port())))
    try:
        stream = Stream(app.test_client(), primary_engine)
        ingest(stream, 2)
        failed = replica_reads("failed")
        started = time.monotonic()
        assert page_numbers(stream, min_sequence=1) == ([1, 2], 2)
        assert head(stream, min_sequence=2) == 2
        assert time.monotonic() - started < 1.0
        assert replica_reads("failed") == failed + 2
        status, body, _ = ready(app)
        assert status == 200 and body["replica"]["status"] == "unavailable"
    finally:
        app.extensions["sequencer"].close()


def test_a_blackholed_replica_costs_one_bounded_wait_then_reads_go_to_the_primary(settings, primary_url, pair,
                                                                                 primary_engine):
    """A replica that stops answering without closing anything (a vanished node): /ready says so within about a
    second and stays 200; a read waits at most the replica's bounds (2 s connect, or 2 s statement + 1 s), later ones
    go to the primary at once; when the replica comes back it is used again."""
    with BlackholeForwarder(("127.0.0.1", pair.standby.port)) as forwarder:
        app = create_app(settings.replace(database_url=primary_url,
                                          database_read_url=on_port(primary_url, forwarder.port)))
        try:
            stream = Stream(app.test_client(), primary_engine)
            ingest(stream, 2)
            pair.wait_caught_up()
            served = replica_reads("served")
            assert page_numbers(stream, min_sequence=2) == ([1, 2], 2)
            assert replica_reads("served") == served + 1
            forwarder.blackhole()
            status, body, elapsed = ready(app)
            assert status == 200 and body["replica"]["status"] == "unavailable" and elapsed < 1.6, elapsed
            time.sleep(1.1)
            timings = []
            for _ in range(5):
                started = time.monotonic()
                assert page_numbers(stream, min_sequence=2) == ([1, 2], 2)
                timings.append(time.monotonic() - started)
            assert timings[0] < 3.6 and max(timings[1:]) < 0.5, timings
            assert ready(app)[2] < 1.6
            forwarder.resume()
            deadline = time.monotonic() + 15
            while replica_reads("served") == served + 1:
                assert time.monotonic() < deadline, "the replica was not used again after it came back"
                assert page_numbers(stream, min_sequence=2) == ([1, 2], 2)
                time.sleep(0.2)
        finally:
            app.extensions["sequencer"].close()


@pytest.mark.parametrize("value", ["-1", "x", str(2**63)])
def test_a_bad_min_sequence_is_400(client, value):
    query = f"tenant_id={uuid.uuid4()}&store_id={uuid.uuid4()}&min_sequence={value}"
    for path in ("/api/v1/ves/events", "/api/v1/ves/head", "/api/v1/ves/entities/order/a"):
        response = client.get(f"{path}?{query}", headers=ADMIN)
        assert response.status_code == 400 and response.json["code"] == "INVALID_REQUEST", path


def test_gunicorn_with_a_read_replica_reads_its_own_writes_over_http(primary_url, standby_url, pair):
    env = server_env(DATABASE_READ_URL=standby_url)
    with start_gunicorn(primary_url, env=env, workers=2) as server:
        tenant, store = uuid.uuid4(), uuid.uuid4()
        signer = register_signer(server.url, tenant)
        pair.wait_caught_up()
        assert requests.get(f"{server.url}/ready", timeout=5).json()["replica"]["status"] == "current"
        pair.pause_replay()
        try:
            for count in range(1, 6):
                event = signer.build_event(store, "order", "o", "order.touched", {"n": count})
                receipt = requests.post(f"{server.url}/api/v1/ves/events/ingest", json={"events": [event]},
                                        headers=ADMIN, timeout=10).json()["receipts"][0]
                assert receipt["sequenceNumber"] == count
                page = requests.get(f"{server.url}/api/v1/ves/events?tenant_id={tenant}&store_id={store}",
                                    headers=ADMIN, timeout=10).json()
                assert page["head_sequence"] == count and page["events"][-1]["event_id"] == event["event_id"]
            stale = requests.get(f"{server.url}/api/v1/ves/head?tenant_id={tenant}&store_id={store}&min_sequence=0",
                                 headers=ADMIN, timeout=10).json()
            assert stale["head_sequence"] == 0  # the paused replica answered what it was asked for
            lag = requests.get(f"{server.url}/ready", timeout=5).json()["replica"]
            assert lag["status"] == "behind" and lag["lag_bytes"] > 0
        finally:
            pair.resume_replay()
            pair.wait_caught_up()
