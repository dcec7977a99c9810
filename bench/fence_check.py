"""Cost of the post-restore fence check in the ingest transaction (not part of the test suite).

On an embedded PostgreSQL with 10 000 fenced streams: the primary-key lookup alone (`read_fence`), then single-event
unsigned ingests through the service with the check and with it patched out, alternated four times.

    PYTHONPATH=. .venv/bin/python bench/fence_check.py
"""
import os, time, uuid, statistics, sqlalchemy as sa
from tests.support.pg import EmbeddedPostgres, create_database
from app.db.migrations import upgrade_to_head
from app.config import Settings
from app.db.engine import make_engine
from app.db import fences
from app.services.ingest import ReceiptSigner, ingest_unsigned
from app.services.schemas import SchemaValidator
pg = EmbeddedPostgres().start()
try:
    url = create_database(pg.server_url())
    e = sa.create_engine(url); upgrade_to_head(e); e.dispose()
    settings = Settings(database_url=Settings.from_env({"DATABASE_URL": url}).database_url, max_db_connections=2, rate_limit_per_minute=0)
    engine = make_engine(settings, pool_size=2)
    # some fences, as after a restore of many streams
    with engine.begin() as conn:
        for _ in range(10000):
            fences.save_fence(conn, fences.FenceRow(uuid.uuid4(), uuid.uuid4(), "STREAM_FENCED", 5, None, None, None, "watermark", 1))
    t, s = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        for _ in range(200): fences.read_fence(conn, t, s)
        n = 5000; start = time.perf_counter()
        for _ in range(n): fences.read_fence(conn, t, s)
        per = (time.perf_counter() - start) / n * 1e6
    print(f"read_fence: {per:.0f} us per lookup (10000 fenced streams in the table)")
    signer = ReceiptSigner("bench", bytes(range(32)))
    schemas = SchemaValidator(engine, settings.schema_validation_mode)
    import app.services.fence as fs
    real = fs.check_writable
    def one(i):
        ingest_unsigned(engine, settings, signer, schemas, [{"event_id": str(uuid.uuid4()), "tenant_id": str(t), "store_id": str(s),
            "entity_type": "o", "entity_id": str(i % 7), "event_type": "t", "payload": {"i": i}}], None, lambda a, b: True)
    for label, patch in [("without", lambda *a, **k: None), ("with fence check", real)] * 4:
        fs.check_writable = patch
        for i in range(100): one(i)
        n = 800; start = time.perf_counter()
        for i in range(n): one(i)
        print(f"single-event unsigned ingest, {label}: {(time.perf_counter() - start) / n * 1000:.3f} ms")
    fs.check_writable = real
finally:
    pg.destroy()
