"""A real PostgreSQL primary and a hot standby streaming from it, started by the test and stopped by PID.

Both come from one major version's binaries (Debian's PostgreSQL 15 in /usr/lib/postgresql/15/bin by default, or
`STANDBY_PG_BIN`): the primary is made with `initdb`, the standby with `pg_basebackup -R` from it (plain PostgreSQL
streaming replication; no replication logic of ours). As root, every server program runs as the `postgres` system
user (PostgreSQL refuses to run as root). Lag is induced with `pg_wal_replay_pause()` on the standby: it keeps
receiving WAL but shows the state at the pause until `pg_wal_replay_resume()`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.support.servers import free_port

PG_BIN = Path(os.environ.get("STANDBY_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_SETTINGS = (
    "listen_addresses = '127.0.0.1'",
    "wal_level = replica",
    "max_wal_senders = 4",
    "hot_standby = on",
    "fsync = off",
    "synchronous_commit = on",
    "max_connections = 100",
    "wal_receiver_status_interval = 1s",
)
"""fsync is off only because these servers are thrown away with the test; replication is unchanged by it."""


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], timeout: float = 60) -> None:
    result = subprocess.run(_as_postgres(argv), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@dataclass
class Server:
    name: str
    datadir: Path
    port: int
    log_path: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database} connect_timeout=5"

    def pid(self) -> int | None:
        pid_file = self.datadir / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def query(self, sql: str, database: str = "postgres"):
        with contextlib.closing(psycopg2.connect(self.dsn(database))) as conn:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone() if cursor.description else None

    def start(self) -> None:
        _run([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_path), "-w", "-t", "60", "start"])

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT to the postmaster), then SIGQUIT if it lingers."""
        pid = self.pid()
        if pid is None:
            return
        for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGQUIT, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class StreamingPair:
    primary: Server
    standby: Server

    def pause_replay(self) -> None:
        """Stop applying WAL on the standby and wait until it has stopped (it still receives WAL)."""
        self.standby.query("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.standby.query("SELECT pg_get_wal_replay_pause_state()")[0] != "paused":
            if time.monotonic() > deadline:
                raise RuntimeError("standby replay did not pause")
            time.sleep(0.02)

    def resume_replay(self) -> None:
        self.standby.query("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 20.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        (target,) = self.primary.query("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while True:
            (behind,) = self.standby.query(f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
            if behind <= 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"standby still {behind} bytes behind after {timeout}s:\n{self.standby.log_text()}")
            time.sleep(0.02)


def _configure(datadir: Path, port: int) -> None:
    with open(datadir / "postgresql.conf", "a") as conf:
        conf.write("\n" + "\n".join((*SERVER_SETTINGS, f"port = {port}",
                                     f"unix_socket_directories = '{datadir.parent}'")) + "\n")


@contextlib.contextmanager
def start_streaming_pair(timeout: float = 60.0):
    """A primary and a hot standby of it on free loopback ports, trust authentication for `postgres`, until the
    block exits (then both are stopped by PID and their directories removed)."""
    for program in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / program).exists():
            raise RuntimeError(f"{PG_BIN / program} is missing (Debian package postgresql-15)")
    root = Path(tempfile.mkdtemp(prefix="seqstandby-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    primary = Server("primary", root / "primary", free_port(), root / "primary.log")
    standby = Server("standby", root / "standby", free_port(), root / "standby.log")
    try:
        _run([str(PG_BIN / "initdb"), "-D", str(primary.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-sync", "--no-instructions"])
        _configure(primary.datadir, primary.port)
        primary.start()
        _run([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
              "-D", str(standby.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync"], timeout=timeout)
        _configure(standby.datadir, standby.port)
        standby.start()
        pair = StreamingPair(primary, standby)
        _wait_streaming(pair, timeout)
        yield pair
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait_streaming(pair: StreamingPair, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg2.Error):
            row = pair.standby.query("SELECT status FROM pg_stat_wal_receiver")
            if row and row[0] == "streaming" and pair.standby.query("SELECT pg_is_in_recovery()")[0]:
                pair.wait_caught_up(timeout)
                return
        time.sleep(0.05)
    raise RuntimeError(f"the standby is not streaming after {timeout}s:\n{pair.standby.log_text()[-3000:]}")
