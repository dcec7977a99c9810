"""No read can exhaust a worker's memory: pages are bounded by bytes (PAGE_MAX_BYTES) as well as by count, and the
rows are streamed from PostgreSQL, at the documented maxima, with worker RSS measured through a real gunicorn.

The stream holds 1,000 events (MAX_PAGE) whose payloads are each as large as MAX_EVENT_PAYLOAD_SIZE allows (1 MiB,
the default), all of one entity. The first is ingested through the API; the other 999 are copies made in SQL (new
event ids, numbers and hashes), since only the reads are under test and 1 GB of ingest would make the test slow.
A read-only key then reads `limit=1000` pages of events, following `next_from` to the end, and the first pages of the
simple shape and of the entity's history (both shapes): each page stops at PAGE_MAX_BYTES of payloads (never fewer
than one event), the pages cover the stream exactly, and neither worker grows by more than 150 MB.
"""

from __future__ import annotations

import threading
import time
import uuid

import psutil
import pytest
import requests
import sqlalchemy as sa

from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow  # ~60 s: 250 pages of 4 MiB
ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
PAYLOAD_MAX = 1024 * 1024
PAGE_MAX_BYTES = 4 * 1024 * 1024
EVENTS = 1000
RSS_GROWTH_LIMIT = 150 * 1024 * 1024

_COPY = sa.text("""
INSERT INTO events (tenant_id, store_id, sequence_number, event_id, command_id, ves_version, source_agent_id,
                    agent_key_id, entity_type, entity_id, event_type, created_at_raw, created_at, sequenced_at,
                    payload_kind, payload, payload_encrypted, payload_plain_hash, payload_cipher_hash,
                    event_signing_hash, agent_signature, base_version, entity_version, receipt_hash,
                    sequencer_signature)
SELECT tenant_id, store_id, g, gen_random_uuid(), NULL, ves_version, source_agent_id, agent_key_id, entity_type,
       entity_id, event_type, created_at_raw, created_at, sequenced_at, payload_kind, payload, payload_encrypted,
       sha256(payload_plain_hash || int8send(g)), sha256(payload_cipher_hash || int8send(g)),
       sha256(event_signing_hash || int8send(g)), agent_signature, NULL, g, sha256(receipt_hash || int8send(g)),
       sequencer_signature
FROM events, generate_series(2, :n) AS g
WHERE tenant_id = :t AND store_id = :s AND sequence_number = 1
""").bindparams(sa.bindparam("t", type_=sa.Uuid), sa.bindparam("s", type_=sa.Uuid))


class PeakRss:
    """The largest RSS each of `pids` reached while the block ran (sampled every 20 ms)."""

    def __init__(self, pids: list[int]):
        self.processes = [psutil.Process(pid) for pid in pids]
        self.baseline = {p.pid: p.memory_info().rss for p in self.processes}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            for process in self.processes:
                self.peak[process.pid] = max(self.peak[process.pid], process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def growth(self) -> dict[int, int]:
        return {pid: self.peak[pid] - self.baseline[pid] for pid in self.peak}


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "LOG_LEVEL": "warning",
           "MAX_EVENT_PAYLOAD_SIZE": str(PAYLOAD_MAX), "PAGE_MAX_BYTES": str(PAGE_MAX_BYTES)}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


def fill_stream(server, database_url) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, store = uuid.uuid4(), uuid.uuid4()
    payload = {"s": "x" * (PAYLOAD_MAX - 64)}
    event = {"event_id": str(uuid.uuid4()), "tenant_id": str(tenant), "store_id": str(store), "entity_type": "blob",
             "entity_id": "big", "event_type": "blob.written", "payload": payload}
    response = requests.post(f"{server.url}/api/v1/events/ingest", json={"events": [event]}, headers=ADMIN,
                             timeout=60)
    assert response.status_code == 200 and response.json()["events_accepted"] == 1, response.text[:500]
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(_COPY, {"t": tenant, "s": store, "n": EVENTS})
            conn.execute(sa.text("UPDATE streams SET head_sequence = :n WHERE tenant_id = :t AND store_id = :s")
                         .bindparams(sa.bindparam("t", type_=sa.Uuid), sa.bindparam("s", type_=sa.Uuid)),
                         {"t": tenant, "s": store, "n": EVENTS})
    finally:
        engine.dispose()
    return tenant, store


def read_all(session, url: str, key: dict, events_key: str = "events", max_pages: int | None = None,
             by_offset: bool = False) -> list[tuple[int, int]]:
    """Follow the pages from the start to the end (or for `max_pages`) with limit=1000; (events, bytes) per page.

    `next_from` continues a page by sequence number; with `by_offset` (the original's `/api/v1/entities`, where
    `from` is an offset into the entity's events, all of them here) the next `from` is the offset after the page."""
    pages, start, numbers = [], 0 if by_offset else 1, []
    while len(numbers) < EVENTS and (max_pages is None or len(pages) < max_pages):
        response = session.get(f"{url}&from={start}&limit=1000", headers=key, timeout=60)
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        got = [e["sequence_number"] for e in body[events_key]]
        assert got, "a page always has at least one event"
        first = start + 1 if by_offset else start
        assert got == list(range(first, first + len(got)))
        assert len(response.content) <= PAGE_MAX_BYTES + 2 * PAYLOAD_MAX, len(response.content)
        numbers += got
        pages.append((len(got), len(response.content)))
        if by_offset:
            start += len(got)
        else:
            start = body["next_from"]
            assert start == got[-1] + 1
    if max_pages is None:
        assert numbers == list(range(1, EVENTS + 1))
    return pages


def test_pages_at_the_documented_maxima_are_bounded_by_bytes_and_rss(server, database_url):
    tenant, store = fill_stream(server, database_url)
    created = requests.post(f"{server.url}/api/v1/admin/api-keys", headers=ADMIN, timeout=10,
                            json={"tenant_id": str(tenant), "permissions": "read"})
    reader = {"Authorization": f"ApiKey {created.json()['api_key']}"}
    query = f"tenant_id={tenant}&store_id={store}"
    session = requests.Session()
    session.get(f"{server.url}/api/v1/events?{query}&limit=1", headers=reader, timeout=30)  # warm both paths once
    with PeakRss(server.worker_pids()) as rss:
        pages = read_all(session, f"{server.url}/api/v1/ves/events?{query}", reader)
        assert 200 <= len(pages) <= 334, len(pages)  # ~4 events of 1 MiB per 4 MiB page, to the end
        for path in ("/api/v1/events", "/api/v1/ves/entities/blob/big", "/api/v1/entities/blob/big"):
            pages = read_all(session, f"{server.url}{path}?{query}", reader, max_pages=10,
                             by_offset=path == "/api/v1/entities/blob/big")
            assert all(count <= 4 for count, _ in pages), (path, pages)
    growth = rss.growth()
    assert max(growth.values()) < RSS_GROWTH_LIMIT, {pid: f"{g / 2**20:.0f} MiB" for pid, g in growth.items()}
    print({pid: f"{g / 2**20:.0f} MiB" for pid, g in growth.items()})
