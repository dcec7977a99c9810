"""Where one worker's time goes: cProfile over signed ingest requests served in-process (not part of the tests).

Builds the real app (create_app) on a fresh database, pre-signs 2 x `--batches` requests of `--batch-size` events,
and posts them through Flask's test client, once timed plainly and once under cProfile: the same code path a gunicorn worker runs, minus the
socket. Prints the own time (tottime) summed into buckets, then the top functions.

    .venv/bin/python bench/profile_ingest.py [--batches 40] [--batch-size 100] [--database-url URL] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg2.extensions  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from app.client.signer import AgentSigner  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db.migrations import upgrade_to_head  # noqa: E402
from app.services.api_keys import create_api_key  # noqa: E402
from app.services.agent_keys import register_agent_key  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from ingest import _sample_payload  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402

# First matching rule wins: (bucket, substring of "file:function").
BUCKETS = [
    ("Ed25519 verify (agent signatures)", "_sodium.crypto_sign_open"),
    ("Ed25519 sign (receipts)", "_sodium.crypto_sign>"),
    ("PyNaCl wrappers", "/nacl/"),
    ("JCS canonicalisation (rfc8785)", "rfc8785"),
    ("VES hashing / encoding (app/ves)", "app/ves/"),
    ("envelope parsing (services/envelopes)", "app/services/envelopes"),
    ("ingest service (services/ingest)", "app/services/ingest"),
    ("psycopg2 round trips (execute/commit)", "~:<method 'execute' of 'psycopg2"),
    ("psycopg2 round trips (execute/commit)", "~:<method 'commit' of 'psycopg2"),
    ("psycopg2 round trips (execute/commit)", "~:<method 'rollback' of 'psycopg2"),
    ("psycopg2 round trips (execute/commit)", "~:<method 'executemany' of 'psycopg2"),
    ("psycopg2 adaptation", "psycopg2"),
    ("SQLAlchemy (compile, execute, rows)", "sqlalchemy"),
    ("JSON (de)serialisation", "json/"),
    ("JSON (de)serialisation", "_json"),
    ("JSON (de)serialisation", "flask/json"),
    ("uuid / datetime", "uuid.py"),
    ("uuid / datetime", "datetime"),
    ("hashlib", "_hashlib"),
    ("hashlib", "'hashlib"),
    ("marshmallow", "marshmallow"),
    ("jsonschema", "jsonschema"),
    ("Flask / Werkzeug request handling", "werkzeug"),
    ("Flask / Werkzeug request handling", "flask"),
    ("prometheus / limiter", "prometheus"),
    ("prometheus / limiter", "limit"),
    ("logging", "logging"),
]


def bucket_of(key: tuple[str, int, str]) -> str:
    filename, _, function = key
    name = f"{filename}:{function}"
    for bucket, needle in BUCKETS:
        if needle in name:
            return bucket
    return "other (stdlib, dataclasses, builtins)"


def bucket_totals(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time per bucket in seconds, largest first. Own times add up to the profiled total."""
    totals: dict[str, float] = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():
        totals[bucket_of(key)] = totals.get(bucket_of(key), 0.0) + tottime
    return sorted(totals.items(), key=lambda item: -item[1])


class _CountingCursor(psycopg2.extensions.cursor):
    counter: dict | None = None

    def execute(self, query, vars=None):
        if _CountingCursor.counter is not None:
            _CountingCursor.counter["statements"] += 1
        return super().execute(query, vars)


def count_round_trips(engine: sa.Engine, run) -> dict[str, int]:
    """Statements, commits, rollbacks and pool checkouts while `run()` serves one request in this process (every
    cursor of the pool's connections counts, SQLAlchemy's and the raw ones; BEGIN, which psycopg2 sends before a
    transaction's first statement, is counted as the transactions that committed or rolled back)."""
    counter = {"statements": 0, "commits": 0, "rollbacks": 0, "checkouts": 0}

    def on_checkout(dbapi_connection, record, proxy):
        counter["checkouts"] += 1
        dbapi_connection.cursor_factory = _CountingCursor

    def on_commit(conn):
        counter["commits"] += 1

    def on_rollback(conn):
        counter["rollbacks"] += 1

    sa.event.listen(engine, "checkout", on_checkout)
    sa.event.listen(engine, "commit", on_commit)
    sa.event.listen(engine, "rollback", on_rollback)
    _CountingCursor.counter = counter
    try:
        run()
    finally:
        _CountingCursor.counter = None
        sa.event.remove(engine, "checkout", on_checkout)
        sa.event.remove(engine, "commit", on_commit)
        sa.event.remove(engine, "rollback", on_rollback)
    return counter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", metavar="PATH", help="write the raw pstats file to PATH")
    parser.add_argument("--no-profile", action="store_true", help="stop after the counts and the unprofiled timing")
    options = parser.parse_args(argv)

    scratch = ScratchDatabase(options.database_url, "seqprof")
    database_url = scratch.url
    try:
        engine = sa.create_engine(database_url)
        upgrade_to_head(engine)
        engine.dispose()
        settings = Settings(database_url=database_url, rate_limit_per_minute=0, log_level="WARNING",
                            sequencer_signing_key=bytes.fromhex("42" * 32),
                            bootstrap_admin_api_key="profile-bootstrap-admin-key-0123456789")
        app = create_app(settings)
        engine = app.extensions["sequencer"].engine
        tenant, agent, store, seed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), os.urandom(32)
        signer = AgentSigner(seed, tenant, agent, 1)
        register_agent_key(engine, tenant_id=tenant, agent_id=agent, key_id=1, public_key=signer.public_key)
        secret, _ = create_api_key(engine, tenant_id=tenant, permissions="read_write")
        headers = {"Authorization": f"ApiKey {secret}", "Content-Type": "application/json"}
        bodies = []
        for b in range(2 * options.batches + 1):
            events = [signer.build_event(store, "order", f"e{(b * options.batch_size + i) % 1000}", "order.updated",
                                         _sample_payload(0, b * options.batch_size + i))
                      for i in range(options.batch_size)]
            bodies.append(json.dumps({"events": events}, separators=(",", ":")).encode())
        client = app.test_client()

        def post(body: bytes) -> None:
            response = client.post("/api/v1/ves/events/ingest", data=body, headers=headers)
            assert response.status_code == 200 and response.json["eventsAccepted"] == options.batch_size, \
                response.get_data(as_text=True)[:300]

        post(bodies[0])
        counts = count_round_trips(engine, lambda: post(bodies[0]))
        print("per request (a replay of the warm-up request: same statements as a new one less the write): "
              + ", ".join(f"{name} {value}" for name, value in counts.items()))
        counted = bodies[1:6]
        totals: dict[str, int] = {}
        for body in counted:
            for name, value in count_round_trips(engine, lambda b=body: post(b)).items():
                totals[name] = totals.get(name, 0) + value
        print("per new request, mean of 5: " + ", ".join(f"{name} {value / len(counted):.1f}"
                                                          for name, value in totals.items()), flush=True)
        bodies = bodies[6:] + bodies[1:6]
        unprofiled, profiled = bodies[1: options.batches + 1], bodies[options.batches + 1:]
        walls = []
        cpu_started = time.process_time()
        for body in unprofiled:
            sent = time.perf_counter()
            post(body)
            walls.append(time.perf_counter() - sent)
        cpu = (time.process_time() - cpu_started) / len(unprofiled)
        walls.sort()
        print(f"without profiler, per request of {options.batch_size} events: wall median "
              f"{1000 * walls[len(walls) // 2]:.1f} ms, min {1000 * walls[0]:.1f} ms; this process's CPU "
              f"{1000 * cpu:.1f} ms ({1e6 * cpu / options.batch_size:.0f} us/event; PostgreSQL's CPU not included)")
        if options.no_profile:
            app.extensions["sequencer"].close()
            return 0
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for body in profiled:
            post(body)
        profiler.disable()
        wall = time.perf_counter() - started
        events = options.batches * options.batch_size
        stats = pstats.Stats(profiler)
        total = sum(tottime for _, _, tottime, _, _ in stats.stats.values())
        print(f"{options.batches} requests x {options.batch_size} events in {wall:.2f} s under cProfile "
              f"({events / wall:.0f} events/s, profiled CPU {total:.2f} s = {1e6 * total / events:.0f} us/event; "
              "cProfile itself inflates Python-heavy buckets)")
        print(f"{'bucket (own time)':<42} {'s':>7} {'%':>6} {'us/event':>9}")
        for bucket, seconds in bucket_totals(stats):
            print(f"{bucket:<42} {seconds:7.3f} {100 * seconds / total:6.1f} {1e6 * seconds / events:9.1f}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(options.top)
        print(out.getvalue())
        if options.dump:
            stats.dump_stats(options.dump)
        app.extensions["sequencer"].engine.dispose()
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
