"""Embedded PostgreSQL for the zero-configuration quick start (`DATABASE_URL` unset).

Uses the `pgserver` package, which ships PostgreSQL binaries. Data lives under `./var/pgdata` and survives restarts.
The process that starts the server stops it again when it exits (`./bin/run` on Ctrl-C or SIGTERM, a CLI command
when it finishes); a server that was already running is reused and left running. `stop_embedded_postgres()`
(`bin/stop-db`) stops one left behind by a process that was killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import urllib.parse
import warnings
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "var" / "pgdata"
DATABASE_NAME = "stateset_sequencer"


def import_pgserver():
    """`import pgserver` without platformdirs' `RuntimeDirWarning` when `XDG_RUNTIME_DIR` is unset (the usual case
    outside a desktop session): pgserver then uses platformdirs' private fallback `/tmp/runtime-<uid>` (mode 0700),
    which is what we want, so the warning is noise on every start."""
    import platformdirs

    category = getattr(platformdirs, "RuntimeDirWarning", None)
    with warnings.catch_warnings():
        if category is not None:
            warnings.simplefilter("ignore", category)
        import pgserver
    return pgserver


def running_postmaster_pid(data_dir: Path = DEFAULT_DATA_DIR) -> int | None:
    """PID of the postmaster serving `data_dir`, or None when none runs (read from `postmaster.pid`)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def start_embedded_postgres(data_dir: Path = DEFAULT_DATA_DIR, database: str = DATABASE_NAME,
                            stop_at_exit: bool = True) -> str:
    """Start (or reuse) the embedded server and return a SQLAlchemy URL for `database`, creating it if needed.

    With `stop_at_exit`, a server this call started is stopped when this process exits (not when a child forked
    from it exits: gunicorn workers inherit the hook but skip it).
    """
    pgserver = import_pgserver()

    data_dir.mkdir(parents=True, exist_ok=True)
    already_running = running_postmaster_pid(data_dir) is not None
    with _environment_without_secrets():
        server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    if stop_at_exit and not already_running:
        atexit.register(_stop_if_owner, os.getpid(), data_dir)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return database_url_from_server_uri(server.get_uri(), database)


POSTGRES_ENVIRONMENT = frozenset({"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR"})


@contextlib.contextmanager
def _environment_without_secrets():
    """Run the block with only locale, path and home variables in `os.environ`, so the PostgreSQL it starts does not
    inherit our keys (a receipt key exported for the workers, SEQUENCER_PRIVATE_KEY, BOOTSTRAP_ADMIN_API_KEY)."""
    saved = dict(os.environ)
    for name in saved:
        if name not in POSTGRES_ENVIRONMENT and not name.startswith("LC_"):
            del os.environ[name]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stop_embedded_postgres(data_dir: Path = DEFAULT_DATA_DIR) -> int | None:
    """Stop the server on `data_dir` (fast shutdown: open connections are cut) and return the PID it had, or None
    when none was running."""
    pid = running_postmaster_pid(data_dir)
    if pid is None:
        return None
    import_pgserver()
    from pgserver._commands import pg_ctl

    owner = data_dir.stat().st_uid
    user = None
    if os.geteuid() == 0 and owner != 0:
        import pwd

        user = pwd.getpwuid(owner).pw_name
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user, timeout=60)
    return pid


def _stop_if_owner(owner_pid: int, data_dir: Path) -> None:
    if os.getpid() != owner_pid:
        return
    try:
        stop_embedded_postgres(data_dir)
    except Exception as error:  # noqa: BLE001 - exiting anyway; say why the server may still run
        print(f"warning: could not stop the embedded PostgreSQL on {data_dir} ({error}); run bin/stop-db",
              file=sys.stderr, flush=True)


def database_url_from_server_uri(server_uri: str, database: str) -> str:
    """Turn pgserver's `postgresql://postgres:@/postgres?host=<socket dir>` into a psycopg2 URL for `database`."""
    parsed = urllib.parse.urlsplit(server_uri)
    socket_dir = urllib.parse.parse_qs(parsed.query)["host"][0]
    return f"postgresql+psycopg2://postgres@/{database}?host={urllib.parse.quote(socket_dir)}"


def main(argv: list[str] | None = None) -> int:
    """`python -m app.embedded stop` (what `bin/stop-db` runs): stop the server on ./var/pgdata, keeping its data."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["stop"]:
        print("usage: python -m app.embedded stop", file=sys.stderr)
        return 2
    pid = stop_embedded_postgres()
    if pid is None:
        print(f"the embedded PostgreSQL on {DEFAULT_DATA_DIR} is not running")
    else:
        print(f"stopped the embedded PostgreSQL on {DEFAULT_DATA_DIR} (pid {pid}); its data is kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
