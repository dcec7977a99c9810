"""Prometheus metrics, correct across gunicorn workers (prometheus_client multiprocess mode).

Names follow the deployment guide. Import this module only in workers (after fork) or tools: prometheus_client
picks its multiprocess value class from `PROMETHEUS_MULTIPROC_DIR` when it is first imported.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import generate_latest

if TYPE_CHECKING:
    from flask import Flask
    from flask import Response

EVENTS_INGESTED = Counter("sequencer_events_ingested_total", "Events accepted and sequenced (new, not replays).")
EVENTS_REJECTED = Counter("sequencer_events_rejected_total", "Events rejected, by reason.", ["reason"])
EVENTS_DUPLICATE = Counter("sequencer_events_duplicate_total", "Idempotent replays answered with the original receipt.")
SEQUENCE_HEAD = Gauge("sequencer_sequence_head", "Head sequence number per stream.", ["tenant_id", "store_id"],
                      multiprocess_mode="max")
INGEST_LATENCY_MS = Histogram(
    "sequencer_ingest_latency_ms", "Ingest request latency in milliseconds (parse to commit).",
    buckets=(1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
INGEST_BATCH_SIZE = Histogram("sequencer_ingest_batch_size", "Events per ingest request.",
                              buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
DB_CONNECTIONS = Gauge("sequencer_db_connections", "Database pool connections checked out.",
                       multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("sequencer_db_pool_size", "Configured database pool size (summed over live workers).",
                     multiprocess_mode="livesum")
COMMITMENTS_TOTAL = Counter("sequencer_commitments_total", "Merkle commitments created.")
SCHEMA_WARNINGS = Counter("sequencer_schema_validation_warnings_total",
                          "Payloads that failed a schema in warn mode (accepted).", ["event_type"])
ANCHOR_UNANCHORED = Gauge("sequencer_anchor_unanchored_commitments", "Commitments not yet anchored on chain.",
                          multiprocess_mode="mostrecent")
ANCHOR_OLDEST_AGE = Gauge("sequencer_anchor_oldest_unanchored_age_seconds",
                          "Age of the oldest unanchored commitment (0 when none).", multiprocess_mode="mostrecent")
ANCHORED_TOTAL = Counter("sequencer_anchor_commitments_anchored_total", "Commitments recorded as anchored.")
LOG_CHECKPOINTS_SIGNED = Counter("sequencer_log_checkpoints_signed_total",
                                 "Transparency-log checkpoints signed and persisted (LOG.md).")
LOG_CHECKPOINT_SIZE = Gauge("sequencer_log_checkpoint_tree_size", "Tree size of the latest checkpoint signed, per "
                            "stream.", ["tenant_id", "store_id"], multiprocess_mode="max")
LOG_INTEGRITY_FAILURES = Counter("sequencer_log_integrity_failures_total",
                                 "Refusals to sign or prove because the stored log contradicts itself, the events or "
                                 "a signed checkpoint (LOG_INTEGRITY): alert on any.")
REPLICA_READS = Counter(
    "sequencer_replica_reads_total",
    "Reads of the log offered to the read replica (DATABASE_READ_URL), by outcome: served by it; behind (it had not "
    "replayed the reader's floor: answered by the primary); failed (it erred or did not answer in time: primary).",
    ["outcome"])
API_KEY_LOOKUPS = Counter(
    "sequencer_api_key_lookups_total",
    "API keys resolved per request, by source: cache (the worker's, kept current by NOTIFY) or database.",
    ["source"])


def observe_pool(engine) -> None:
    pool = engine.pool
    DB_CONNECTIONS.set(pool.checkedout())


def init_metrics(app: Flask, settings, engine) -> None:
    """HTTP metrics from prometheus-flask-exporter plus the sequencer's own; `/metrics` aggregates all workers."""
    from prometheus_flask_exporter import PrometheusMetrics

    registry = None if _multiprocess() else CollectorRegistry(auto_describe=True)
    PrometheusMetrics(app, path=None, registry=registry or REGISTRY, defaults_prefix="flask",
                      excluded_paths=["/metrics", "/health", "/ready"], group_by="url_rule")
    app.extensions["sequencer_metrics_registry"] = registry
    DB_POOL_SIZE.set(settings.max_db_connections)

    @app.after_request
    def _track_pool(response):
        observe_pool(engine)
        return response


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def render_metrics(app: Flask) -> Response:
    from flask import Response

    if _multiprocess():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
        extra = app.extensions.get("sequencer_metrics_registry")
        if extra is not None:
            body += generate_latest(extra)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def refresh_anchor_gauges(engine) -> None:
    """Set the anchoring-lag gauges from the database (cheap: served by idx_commitments_unanchored)."""
    import sqlalchemy as sa

    from app.db.tables import batch_commitments as bc

    with engine.connect() as conn:
        count, oldest = conn.execute(
            sa.select(sa.func.count(), sa.func.min(bc.c.committed_at)).where(bc.c.chain_tx_hash.is_(None))
        ).one()
    ANCHOR_UNANCHORED.set(count)
    ANCHOR_OLDEST_AGE.set(0 if oldest is None else max(0.0, time.time() - oldest.timestamp()))
