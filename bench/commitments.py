"""Commitment benchmark (not part of the test suite): 10,000 signed events committed in 1,024-event batches.

Ingests the events through the real app (in-process, fresh database), then times `create_commitment` for each
range (one transaction: lock, read leaf inputs, leaf hashes, Merkle tree, state root, insert) and `build_proof`
for sampled events. Also times the pure part (leaf hashes + tree over 1,024 leaves) on its own.

    .venv/bin/python bench/commitments.py [--events 10000] [--max-events 1024] [--database-url URL] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from app import create_app  # noqa: E402
from app.client.signer import AgentSigner  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db.migrations import upgrade_to_head  # noqa: E402
from app.services.agent_keys import register_agent_key  # noqa: E402
from app.services.api_keys import create_api_key  # noqa: E402
from app.services.commitments import build_proof  # noqa: E402
from app.services.commitments import commit_pending  # noqa: E402
from app.ves.merkle import build_tree  # noqa: E402
from app.ves.merkle import leaf_hash  # noqa: E402
from tests.support.pg import ScratchDatabase  # noqa: E402

INGEST_BATCH = 500


def _ingest(app, tenant: uuid.UUID, store: uuid.UUID, count: int) -> None:
    engine = app.extensions["sequencer"].engine
    seed = os.urandom(32)
    signer = AgentSigner(seed, tenant, uuid.uuid4(), 1)
    register_agent_key(engine, tenant_id=tenant, agent_id=uuid.UUID(signer.agent_id), key_id=1,
                       public_key=signer.public_key)
    secret, _ = create_api_key(engine, tenant_id=tenant, permissions="read_write")
    client = app.test_client()
    for start in range(0, count, INGEST_BATCH):
        events = [signer.build_event(store, "order", f"o{n % 300}", "order.updated", {"n": n, "note": "bench"})
                  for n in range(start, min(count, start + INGEST_BATCH))]
        response = client.post("/api/v1/ves/events/ingest", json={"events": events},
                               headers={"Authorization": f"ApiKey {secret}"})
        if response.status_code != 200 or response.json["eventsAccepted"] != len(events):
            raise RuntimeError(response.get_data(as_text=True)[:300])


def _pure_tree_ms(leaf_count: int, repeats: int = 5) -> float:
    tenant, store = uuid.uuid4(), uuid.uuid4()
    inputs = [(n + 1, os.urandom(32), os.urandom(64)) for n in range(leaf_count)]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        build_tree([leaf_hash(tenant, store, number, signing_hash, signature)
                    for number, signing_hash, signature in inputs])
        best = min(best, time.perf_counter() - started)
    return 1000 * best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="admin URL of a PostgreSQL server (default: embedded pgserver)")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--max-events", type=int, default=1024)
    parser.add_argument("--proofs", type=int, default=50)
    parser.add_argument("--json", metavar="PATH")
    options = parser.parse_args(argv)

    scratch = ScratchDatabase(options.database_url, "seqbenchc")
    database_url = scratch.url
    try:
        engine = sa.create_engine(database_url)
        upgrade_to_head(engine)
        engine.dispose()
        app = create_app(Settings(database_url=database_url, rate_limit_per_minute=0, log_level="WARNING",
                                  sequencer_signing_key=bytes.fromhex("42" * 32),
                                  bootstrap_admin_api_key="bench-bootstrap-admin-key-0123456789"))
        engine = app.extensions["sequencer"].engine
        tenant, store = uuid.uuid4(), uuid.uuid4()
        started = time.perf_counter()
        _ingest(app, tenant, store, options.events)
        print(f"ingested {options.events} signed events in {time.perf_counter() - started:.1f} s (setup, untimed)")

        timings, sizes = [], []
        while True:
            started = time.perf_counter()
            record = commit_pending(engine, tenant, store, max_events=options.max_events)
            elapsed = time.perf_counter() - started
            if record is None:
                break
            timings.append(elapsed)
            sizes.append(record.sequence_end - record.sequence_start + 1)
        if sum(sizes) != options.events:
            raise RuntimeError(f"committed {sum(sizes)} of {options.events} events")
        full = [t for t, size in zip(timings, sizes) if size == options.max_events]
        step = max(1, options.events // options.proofs)
        proof_times = []
        for number in range(1, options.events + 1, step):
            started = time.perf_counter()
            build_proof(engine, tenant, store, number)
            proof_times.append(time.perf_counter() - started)
        pure = _pure_tree_ms(options.max_events)
        result = {
            "events": options.events, "max_events": options.max_events, "commitments": len(timings),
            "commitment_sizes": sizes, "total_s": sum(timings),
            "per_full_commitment_ms_median": 1000 * statistics.median(full) if full else None,
            "per_full_commitment_ms_max": 1000 * max(full) if full else None,
            "per_commitment_ms": [round(1000 * t, 2) for t in timings],
            "leaf_hashes_and_tree_ms_pure": pure,
            "proof_ms_median": 1000 * statistics.median(proof_times), "proof_ms_max": 1000 * max(proof_times),
            "proofs": len(proof_times),
        }
        print(f"{len(timings)} commitments ({sizes[0]}..{sizes[-1]} events) in {result['total_s'] * 1000:.0f} ms; "
              f"full {options.max_events}-event commitment: median {result['per_full_commitment_ms_median']:.1f} ms, "
              f"max {result['per_full_commitment_ms_max']:.1f} ms")
        print(f"pure leaf hashes + tree over {options.max_events} leaves: {pure:.1f} ms")
        print(f"inclusion proof (rebuilt from stored leaves): median {result['proof_ms_median']:.1f} ms, "
              f"max {result['proof_ms_max']:.1f} ms over {len(proof_times)} proofs")
        if options.json:
            Path(options.json).write_text(json.dumps(result, indent=2) + "\n")
        engine.dispose()
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
