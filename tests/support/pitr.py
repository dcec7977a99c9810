"""Point-in-time recovery for tests, with the shipped artifacts: a PostgreSQL 15 primary that archives WAL with
sequencer.conf's own archive_command, base backups by `deploy/backup/backup.sh base`, restores by
`deploy/backup/restore-pitr.sh` into a fresh data directory, started and promoted.

Meant to be reused (the post-restore fence test builds on it): `ArchivingPrimary` gives a migrated database to
ingest into; `restore_to_time(...)` gives a running server restored to a moment, whose `sqlalchemy_url()` a
gunicorn can be started on.
"""

from __future__ import annotations

import contextlib
import datetime
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import sqlalchemy as sa

from app.db.migrations import upgrade_to_head
from tests.support.pgnode import PG_BIN_DIR
from tests.support.pgnode import SERVER_ENVIRONMENT
from tests.support.pgnode import PostgresServer
from tests.support.pgnode import as_server_user
from tests.support.pgnode import make_server_owned
from tests.support.pgnode import remove_tree
from tests.support.pgnode import render_sequencer_conf
from tests.support.pgnode import server_owned_dir
from tests.support.servers import ROOT

BACKUP_SCRIPTS = ROOT / "deploy" / "backup"
DATABASE = "stateset_sequencer"
SMALL_HOST_SETTINGS = ("shared_buffers=64MB", "effective_cache_size=256MB", "maintenance_work_mem=64MB",
                       "work_mem=4MB", "max_wal_size=256MB", "min_wal_size=80MB", "log_connections=off",
                       "log_disconnections=off")
"""Command-line overrides (they win over sequencer.conf) that fit the production file onto a CI box."""


class ArchivingPrimary:
    """A fresh PostgreSQL 15 primary in its own directory whose postgresql.conf includes the shipped
    sequencer.conf (archive_mode on), with the sequencer's database migrated. Context manager; `close()` stops
    the server and removes everything."""

    def __init__(self):
        self.root = server_owned_dir("seqpitr-")
        self.archive_dir = make_server_owned(self.root / "wal-archive", 0o700)
        self.backup_dir = make_server_owned(self.root / "backups", 0o700)
        self.conf = render_sequencer_conf(self.root, self.archive_dir)
        self.server = PostgresServer(make_server_owned(self.root / "primary", 0o700))

    def __enter__(self) -> "ArchivingPrimary":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        self.server.initdb()
        with open(self.server.data_dir / "postgresql.conf", "a") as conf:
            conf.write(f"\ninclude '{self.conf}'\n")
        self.server.start(*SMALL_HOST_SETTINGS)
        conn = psycopg2.connect(self.server.dsn(), connect_timeout=5)
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
        engine = sa.create_engine(self.url)
        upgrade_to_head(engine)
        engine.dispose()

    @property
    def url(self) -> str:
        return self.server.sqlalchemy_url(DATABASE)

    def base_backup(self) -> Path:
        """`backup.sh base` as the runbook runs it; returns the backup file."""
        result = run_backup_script("backup.sh", "base", DATABASE_URL=self.server.dsn(DATABASE),
                                   BACKUP_DIR=str(self.backup_dir), WAL_ARCHIVE_DIR=str(self.archive_dir))
        return Path(result.stdout.strip().splitlines()[-1])

    def archive_everything(self, timeout: float = 30.0) -> str:
        """Close the current WAL segment and wait until the archiver has it: everything committed so far is then
        in the archive. Returns the segment's file name."""
        with contextlib.closing(psycopg2.connect(self.server.dsn(), connect_timeout=5)) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_walfile_name(pg_switch_wal())")
                segment = cursor.fetchone()[0]
                deadline = time.monotonic() + timeout
                while not (self.archive_dir / segment).exists():
                    cursor.execute("SELECT failed_count, last_failed_wal FROM pg_stat_archiver")
                    failed = cursor.fetchone()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{segment} not archived within {timeout}s (archiver: {failed})\n"
                                           + self.server.log_text()[-3000:])
                    time.sleep(0.05)
        return segment

    def close(self) -> None:
        self.server.stop()
        remove_tree(self.root)


@dataclass
class RestoredServer:
    """A server restored to a moment and promoted; `seconds` is how long the restore took (unpack, replay,
    promotion). `stop()` ends it and removes its directory."""

    server: PostgresServer
    target_time: datetime.datetime
    seconds: float

    def sqlalchemy_url(self, database: str = DATABASE) -> str:
        return self.server.sqlalchemy_url(database)

    def stop(self) -> None:
        self.server.stop()
        remove_tree(self.server.root)


def restore_to_time(base_backup: Path, archive_dir: Path, target_time: datetime.datetime,
                    timeout: float = 120.0) -> RestoredServer:
    """`restore-pitr.sh` the base backup into a new data directory with `target_time` (aware datetime), start
    PostgreSQL on it (same configuration files as the original, via the data directory's postgresql.conf) and wait
    until it has promoted itself."""
    assert target_time.tzinfo is not None, "a recovery target needs a zone"
    started = time.monotonic()
    root = server_owned_dir("seqrestored-")
    data_dir = root / "data"
    run_backup_script("restore-pitr.sh", str(base_backup), str(data_dir), WAL_ARCHIVE_DIR=str(archive_dir),
                      RECOVERY_TARGET_TIME=target_time.isoformat(sep=" "))
    server = PostgresServer(root, data_dir=data_dir)
    server.start(*SMALL_HOST_SETTINGS, timeout=timeout)
    deadline = started + timeout
    while True:
        with contextlib.suppress(psycopg2.OperationalError):
            with contextlib.closing(psycopg2.connect(server.dsn(), connect_timeout=2)) as conn:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT pg_is_in_recovery()")
                    if not cursor.fetchone()[0]:
                        break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"restored server did not promote within {timeout}s:\n{server.log_text()[-4000:]}")
        time.sleep(0.05)
    return RestoredServer(server, target_time, time.monotonic() - started)


@contextlib.contextmanager
def restored_to(base_backup: Path, archive_dir: Path, target_time: datetime.datetime):
    """Context manager around `restore_to_time`: yields the `RestoredServer`, stops and removes it afterwards."""
    restored = restore_to_time(base_backup, archive_dir, target_time)
    try:
        yield restored
    finally:
        restored.stop()


def run_backup_script(name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a deploy/backup script as the server user with PG_BIN_DIR set to the server's binaries."""
    full_env = {**SERVER_ENVIRONMENT, "PG_BIN_DIR": str(PG_BIN_DIR), **env}
    result = subprocess.run(as_server_user(["bash", str(BACKUP_SCRIPTS / name), *args]), env=full_env,
                            capture_output=True, text=True, timeout=180, cwd="/")
    if result.returncode != 0:
        raise RuntimeError(f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def server_clock(url: str) -> datetime.datetime:
    """The database server's clock (commit timestamps, and so recovery targets, are on it)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        moment = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    engine.dispose()
    return moment
