"""Soak: cost must not grow with the data (issue 12 item 5; not part of the test suite or CI).

Starts gunicorn on a fresh database and writes `--events` (default 1,000,000) signed events into `--streams` (100)
streams through POST /api/v1/ves/events/ingest, in batches of 100 from 4 client processes (each owns a quarter of
the streams and signs as it goes, so signing is inside the window, equally for every tenth). Prints the
throughput of each tenth of the events (target: the last within 10 % of the first), and, once at 10,000 events and
once at the end, the latency of a range read (100 events from a random position), an entity's history (a page of
10), a Merkle
commitment of the next 100 uncommitted events, and an inclusion proof in it (target: within 1.5x), each over
HTTP with the clients idle. Every write and every read is checked.

    .venv/bin/python bench/soak.py                      # embedded PostgreSQL, ~10 min on 2 cores
    .venv/bin/python bench/soak.py --events 100000      # smoke run
    .venv/bin/python bench/soak.py --database-url postgresql://postgres@127.0.0.1:5432/postgres --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402

import ingest as ingest_bench  # noqa: E402
from app.client.signer import AgentSigner  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402

BATCH = 100
CLIENTS = 4
PROBE_EARLY = 10_000
ENTITIES_PER_STREAM = 10
HISTORY_PAGE = 10
"""Each stream's events cycle over 10 entities, so an entity's history page (10 events) is full at 10,000 events
(100 per stream) as at 1,000,000: the probe compares the same answer over 100 times the data."""


def _writer(base_url: str, api_key: str, seed: bytes, tenant: str, agent: str, stores: list[str], client: int,
            batches: int, progress, go, done) -> None:
    """Write `batches` batches round-robin over `stores`, adding each accepted batch to `progress`; wait on `go`
    (a multiprocessing.Event) before each batch, so the parent can pause writers for probes."""
    try:
        signer = AgentSigner(seed, tenant, agent, 1)
        url = base_url + ingest_bench.INGEST_PATH
        headers = {"Authorization": f"ApiKey {api_key}", "Content-Type": "application/json"}
        written = {store: 0 for store in stores}
        with requests.Session() as session:
            for b in range(batches):
                go.wait()
                store = stores[b % len(stores)]
                start = written[store]
                events = [signer.build_event(store, "order", f"o{(start + i) % ENTITIES_PER_STREAM}", "order.updated",
                                             ingest_bench._sample_payload(client, start + i)) for i in range(BATCH)]
                body = json.dumps({"events": events}, separators=(",", ":")).encode()
                ingest_bench._post(session, url, headers, body, BATCH)
                written[store] += BATCH
                with progress.get_lock():
                    progress.value += BATCH
        done.put(("ok", client))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        done.put(("error", repr(exc)))


def _timed(samples: list[float], call):
    started = time.perf_counter()
    response = call()
    samples.append((time.perf_counter() - started) * 1000)
    if response.status_code not in (200, 201):
        raise RuntimeError(f"probe failed: HTTP {response.status_code} {response.text[:300]}")
    return response.json()


def probe(base_url: str, api_key: str, tenant: str, stores: list[str], rng: random.Random, samples: int) -> dict:
    """Latencies (ms) of reads, commitments and proofs on random streams, the writers paused."""
    headers = {"Authorization": f"ApiKey {api_key}"}
    results: dict[str, list[float]] = {"range read (100 events)": [], "entity history": [],
                                       "commitment (next 100 events)": [], "inclusion proof": []}
    with requests.Session() as session:
        probed = 0
        for store in rng.sample(stores, len(stores)):
            if probed == samples:
                break
            stream = f"tenant_id={tenant}&store_id={store}"
            head = session.get(f"{base_url}/api/v1/ves/head?{stream}", headers=headers, timeout=30).json()
            top = int(head.get("head_sequence", head.get("headSequence", 0)))
            if top < BATCH:
                continue  # not written yet (early probe): needs a batch to read and commit
            probed += 1
            page = _timed(results["range read (100 events)"], lambda: session.get(
                f"{base_url}/api/v1/ves/events?{stream}&from={rng.randint(1, max(1, top - 100))}&limit=100",
                headers=headers, timeout=30))
            assert len(page["events"]) == min(100, top), (len(page["events"]), top)
            entity = f"o{rng.randrange(ENTITIES_PER_STREAM)}"
            history = _timed(results["entity history"], lambda: session.get(
                f"{base_url}/api/v1/ves/entities/order/{entity}?{stream}&limit={HISTORY_PAGE}", headers=headers,
                timeout=30))
            assert len(history["events"]) == HISTORY_PAGE, len(history["events"])
            commitment = _timed(results["commitment (next 100 events)"], lambda: session.post(
                f"{base_url}/api/v1/ves/commitments", headers=headers, timeout=60,
                json={"tenant_id": tenant, "store_id": store, "max_events": 100}))
            first = int(commitment.get("sequence_start", commitment.get("sequenceStart")))
            last = int(commitment.get("sequence_end", commitment.get("sequenceEnd")))
            _timed(results["inclusion proof"], lambda: session.get(
                f"{base_url}/api/v1/ves/proofs/{rng.randint(first, last)}?{stream}", headers=headers, timeout=30))
    return {name: {"p50_ms": round(sorted(v)[len(v) // 2], 2), "p95_ms": round(ingest_bench.percentile(sorted(v), 0.95), 2),
                   "samples": len(v)} for name, v in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--json", metavar="PATH")
    options = parser.parse_args(argv)
    if options.events % (BATCH * CLIENTS) or options.streams % CLIENTS:
        parser.error(f"--events must be a multiple of {BATCH * CLIENTS} and --streams of {CLIENTS}")

    scratch = ScratchDatabase(options.database_url, "seqsoak")
    try:
        machine = ingest_bench.machine_description(scratch.url)
        print(f"machine: {machine}", flush=True)
        with start_gunicorn(scratch.url, env=ingest_bench._server_env("warning"), workers=options.workers) as server:
            tenant, agent, api_key, seed = ingest_bench._setup_tenant(server.url)
            stores = [str(uuid.uuid4()) for _ in range(options.streams)]
            ctx = multiprocessing.get_context("fork")
            progress, go, done = ctx.Value("q", 0), ctx.Event(), ctx.Queue()
            per_client = options.events // (BATCH * CLIENTS)
            writers = [ctx.Process(daemon=True, target=_writer, args=(server.url, api_key, seed, tenant, agent,
                                                         stores[c::CLIENTS], c, per_client, progress, go, done))
                       for c in range(CLIENTS)]
            for writer in writers:
                writer.start()
            rng = random.Random(12)
            tenth = options.events // 10
            marks: list[tuple[int, float]] = []
            probes = {}
            go.set()
            started = time.perf_counter()
            marks.append((0, started))
            paused = 0.0
            early_done = False
            outcomes = []
            while True:
                time.sleep(0.05)
                while not done.empty():
                    outcomes.append(done.get())
                errors = [o[1] for o in outcomes if o[0] == "error"]
                if errors:
                    raise RuntimeError(f"a writer failed: {errors[0]}")
                value = progress.value
                if value < options.events and not any(w.is_alive() for w in writers):
                    raise RuntimeError(f"writers exited at {value} events")
                if not early_done and value >= PROBE_EARLY:
                    go.clear()
                    time.sleep(1.0)  # let in-flight batches land
                    pause_started = time.perf_counter()
                    probes["at ~10,000 events"] = probe(server.url, api_key, tenant, stores, rng, options.probes)
                    probes["at ~10,000 events"]["events"] = progress.value
                    print(f"probes at {progress.value} events: {probes['at ~10,000 events']}", flush=True)
                    early_done = True
                    paused += time.perf_counter() - pause_started + 1.0
                    go.set()
                while len(marks) <= 10 and value >= len(marks) * tenth:
                    now = time.perf_counter() - paused
                    marks.append((len(marks) * tenth, now))
                    rate = tenth / (now - marks[-2][1])
                    print(f"events {marks[-2][0]:>9,}..{marks[-1][0]:>9,}: {rate:8.0f} events/s", flush=True)
                if value >= options.events:
                    break
            for writer in writers:
                writer.join(timeout=60)
            probes["at the end"] = probe(server.url, api_key, tenant, stores, rng, options.probes)
            probes["at the end"]["events"] = progress.value
            print(f"probes at {progress.value} events: {probes['at the end']}", flush=True)
        rates = [tenth / (marks[i + 1][1] - marks[i][1]) for i in range(10)]
        ratio = rates[-1] / rates[0]
        print(f"last tenth / first tenth throughput: {ratio:.2f} (target >= 0.90)")
        growth = {name: round(probes["at the end"][name]["p50_ms"] / probes["at ~10,000 events"][name]["p50_ms"], 2)
                  for name in probes["at the end"] if name != "events"}
        print(f"p50 latency at the end / at 10,000 events: {growth} (target <= 1.5)")
        machine["load_average_at_end"] = os.getloadavg()
        if options.json:
            Path(options.json).write_text(json.dumps({
                "machine": machine, "events": options.events, "streams": options.streams, "workers": options.workers,
                "events_per_s_per_tenth": [round(r, 1) for r in rates], "last_over_first": round(ratio, 3),
                "probes": probes, "p50_growth": growth}, indent=2) + "\n")
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
