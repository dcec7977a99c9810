"""A real PgBouncer (Debian's /usr/sbin/pgbouncer) in front of the test PostgreSQL, stopped by PID.

Transaction pooling by default: a server connection belongs to a client only for one transaction, so anything
session-level (SET, session advisory locks, LISTEN, prepared statements) does not survive between transactions.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from tests.support.servers import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass
class PgBouncer:
    port: int
    process: subprocess.Popen
    log_path: Path

    def url_for(self, database_url: str) -> str:
        """`database_url` (same user, password and database) routed through this PgBouncer."""
        url = make_url(database_url)
        return url.set(host="127.0.0.1", port=self.port, query={}).render_as_string(hide_password=False)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _upstream(database_url: str) -> tuple[str, int, str | None]:
    url = make_url(database_url)
    host = url.query.get("host") or url.host or "127.0.0.1"
    if isinstance(host, tuple):
        host = host[0]
    return host, int(url.port or 5432), url.password


def _run_as(host: str) -> str | None:
    """PgBouncer refuses to run as root: run it as the owner of the Unix socket directory (it must reach the
    socket), or as `nobody` for a TCP upstream."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    return "nobody"


@contextlib.contextmanager
def start_pgbouncer(database_url: str, pool_mode: str = "transaction", pool_size: int = 20,
                    timeout: float = 20.0, render: Callable[[int, Path], str] | None = None):
    """Run PgBouncer on a free loopback port in front of the server of `database_url` until the block exits.

    `render(listen_port, auth_file)`, when given, returns the whole pgbouncer.ini to run instead of the test's own
    (a shipped configuration); `auth_file` then holds `database_url`'s user and password, as plain text."""
    host, port, password = _upstream(database_url)
    user = make_url(database_url).username or "postgres"
    workdir = Path(tempfile.mkdtemp(prefix="seqpgbouncer-"))
    workdir.chmod(0o755)
    listen_port = free_port()
    auth_file = workdir / "userlist.txt"
    auth_file.write_text(f'"{user}" "{password or ""}"\n')
    config = workdir / "pgbouncer.ini"
    config.write_text(render(listen_port, auth_file) if render else "\n".join([
        "[databases]",
        f"* = host={host} port={port}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen_port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {auth_file}",
        f"pool_mode = {pool_mode}",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 500",
        "ignore_startup_parameters = extra_float_digits",
        "server_login_retry = 1",
        "",
    ]))
    for path in (auth_file, config):
        path.chmod(0o644)
    command = [PGBOUNCER, str(config)]
    run_as = _run_as(host)
    if run_as:
        command[1:1] = ["-u", run_as]
    log_path = workdir / "pgbouncer.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    bouncer = PgBouncer(listen_port, process, log_path)
    try:
        _wait_ready(bouncer, database_url, timeout)
        yield bouncer
    finally:
        _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(bouncer: PgBouncer, database_url: str, timeout: float) -> None:
    dsn = make_url(bouncer.url_for(database_url)).set(drivername="postgresql").render_as_string(hide_password=False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {bouncer.process.returncode}:\n{bouncer.log_text()[-3000:]}")
        try:
            psycopg2.connect(dsn, connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not accept connections in {timeout}s:\n{bouncer.log_text()[-3000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
