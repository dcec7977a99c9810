"""Point-in-time recovery with the shipped artifacts (docs/RESTORE.md): WAL archived by sequencer.conf's
archive_command, a base backup by `backup.sh base`, a restore to time T by `restore-pitr.sh` (recovery.signal,
restore_command, recovery_target_time, recovery_target_action = promote) into a fresh data directory.

Ingest through the real API before and after the base backup, note T, ingest more (also on a stream that starts
after T), restore to T: exactly the events receipted before T are there, with their numbers and receipt hashes,
none of the later ones. The restore time is printed (docs/RESTORE.md quotes it)."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid

import pytest
import sqlalchemy as sa

from tests.support.load import StreamWriter
from tests.support.load import register_signer
from tests.support.pgnode import server_owned_dir
from tests.support.pitr import ArchivingPrimary
from tests.support.pitr import restored_to
from tests.support.pitr import run_backup_script
from tests.support.pitr import server_clock
from tests.support.servers import start_gunicorn

ADMIN_KEY = "pitr-bootstrap-admin-key-0123456"
ADMIN = {"Authorization": f"ApiKey {ADMIN_KEY}"}


def ingest_batches(writer: StreamWriter, batches: int) -> None:
    writer.deliver(batches)
    assert writer.unexpected == []
    assert {a.outcome for a in writer.attempts} == {"200"}


def stored(url: str, tenant_id: uuid.UUID) -> tuple[dict, dict]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT store_id::text, event_id::text, sequence_number, encode(receipt_hash, 'hex') "
            "FROM events WHERE tenant_id = :t ORDER BY store_id, sequence_number"), {"t": tenant_id}).all()
        heads = dict(conn.execute(sa.text("SELECT store_id::text, head_sequence FROM streams WHERE tenant_id = :t"),
                                  {"t": tenant_id}).all())
    engine.dispose()
    events: dict[str, dict] = {}
    for store_id, event_id, number, receipt_hash in rows:
        events.setdefault(store_id, {})[event_id] = (number, receipt_hash)
    return events, heads


def held(writer: StreamWriter, event_ids=None) -> dict:
    return {event_id: (r.sequence_number, r.receipt_hash) for event_id, r in writer.receipts.items()
            if event_ids is None or event_id in event_ids}


@pytest.mark.slow
def test_restore_to_a_moment_keeps_exactly_what_was_receipted_before_it():
    with ArchivingPrimary() as primary:
        env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_LEVEL": "warning"}
        with start_gunicorn(primary.url, env=env, workers=1) as server:
            tenant_id = uuid.uuid4()
            writers = [StreamWriter(server.url, ADMIN, tenant_id, *register_signer(server.url, ADMIN, tenant_id))
                       for _ in range(2)]
            for writer in writers:
                ingest_batches(writer, 3)
            backup = primary.base_backup()
            for writer in writers:
                ingest_batches(writer, 3)
            before_target = {str(w.store_id): held(w) for w in writers}
            target_time = server_clock(primary.url)
            for writer in writers:
                ingest_batches(writer, 2)
            late = StreamWriter(server.url, ADMIN, tenant_id, *register_signer(server.url, ADMIN, tenant_id))
            ingest_batches(late, 2)
        primary.archive_everything()
        source_events, _ = stored(primary.url, tenant_id)

        with restored_to(backup, primary.archive_dir, target_time) as restored:
            restored_events, heads = stored(restored.sqlalchemy_url(), tenant_id)
        print(f"\npoint-in-time restore: base backup {backup.stat().st_size} bytes, restored to {target_time} "
              f"and promoted in {restored.seconds:.1f} s")

    assert {store: len(events) for store, events in source_events.items()} == {
        str(writers[0].store_id): 40, str(writers[1].store_id): 40, str(late.store_id): 10}
    assert restored_events == before_target
    assert heads == {store: 30 for store in before_target}
    assert str(late.store_id) not in heads


def test_restore_script_refuses_ambiguous_or_unsafe_requests():
    """Before touching anything: a target time without a zone, a data directory in use, a missing archive."""
    root = server_owned_dir("seqpitrcheck-")
    try:
        backup = root / "sequencer_base_20240101T000000Z.tar.gz"
        backup.write_bytes(b"")
        os.chmod(backup, 0o644)
        archive = root / "archive"
        archive.mkdir()
        used = root / "used"
        used.mkdir()
        (used / "PG_VERSION").write_text("15\n")
        cases = [
            ({"WAL_ARCHIVE_DIR": str(archive), "RECOVERY_TARGET_TIME": "2024-01-15 10:00:00"}, root / "new",
             "explicit zone"),
            ({"WAL_ARCHIVE_DIR": str(archive), "RECOVERY_TARGET_TIME": "2024-01-15 10:00:00+00"}, used,
             "is not empty"),
            ({"RECOVERY_TARGET_TIME": "2024-01-15 10:00:00Z"}, root / "new", "WAL_ARCHIVE_DIR is not set"),
            ({"WAL_ARCHIVE_DIR": str(root / "missing")}, root / "new", "not a readable directory"),
        ]
        for env, data_dir, message in cases:
            with pytest.raises(RuntimeError, match=message):
                run_backup_script("restore-pitr.sh", str(backup), str(data_dir), **env)
            assert not (root / "new").exists()
        assert sorted(p.name for p in used.iterdir()) == ["PG_VERSION"]
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_base_backup_retention_prunes_the_archive_below_the_oldest_backup_kept():
    with ArchivingPrimary() as primary:
        first = primary.base_backup()
        for _ in range(3):
            primary.archive_everything()
        os.utime(first, (946684800, 946684800))
        stamp = first.name.split(".")[0]
        while time.strftime("sequencer_base_%Y%m%dT%H%M%SZ", time.gmtime()) == stamp:
            time.sleep(0.05)
        archived_before = wal_segments(primary.archive_dir)
        second = primary.base_backup()
        assert not first.exists() and second.exists()
        label = second.name.split(".")[0]
        history = [p for p in primary.archive_dir.glob("*.backup") if f"LABEL: {label}\n" in p.read_text()]
        assert len(history) == 1
        start_segment = history[0].name[:24]
        remaining = wal_segments(primary.archive_dir)
        assert remaining and min(remaining) == start_segment
        assert [s for s in archived_before if s < start_segment], "nothing older was archived to prune"
        assert set(remaining) >= {s for s in archived_before if s >= start_segment}
        assert len(list(primary.archive_dir.glob("*.backup"))) == 2


def wal_segments(archive_dir) -> list[str]:
    return sorted(p.name for p in archive_dir.iterdir() if re.fullmatch(r"[0-9A-F]{24}", p.name))
