"""PostgreSQL server processes of our own for tests that need more than one database server: Debian's PostgreSQL 15
binaries on free loopback ports in temporary directories, run as the `postgres` system user when the tests run as
root (PostgreSQL refuses to run as root). Every process is ended by PID, never by name.
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
from pathlib import Path

import psycopg2

from tests.support.servers import ROOT
from tests.support.servers import free_port

PG_BIN_DIR = Path(os.environ.get("TEST_PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
SERVER_ENVIRONMENT = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
"""The whole environment of the server processes we start: no inherited keys, no pyenv shims on PATH."""


SHIPPED_POSTGRES_CONF = ROOT / "deploy" / "postgres" / "postgresql.conf.d" / "sequencer.conf"
SHIPPED_ARCHIVE_DIR = "/var/lib/postgresql/wal-archive"


def render_sequencer_conf(directory: Path, archive_dir: Path) -> Path:
    """The shipped sequencer.conf with only its archive directory moved to `archive_dir`, as `directory/sequencer.conf`
    (readable by the server user)."""
    text = SHIPPED_POSTGRES_CONF.read_text()
    assert SHIPPED_ARCHIVE_DIR in text, "sequencer.conf no longer archives to the documented directory"
    path = directory / "sequencer.conf"
    path.write_text(text.replace(SHIPPED_ARCHIVE_DIR, str(archive_dir)))
    path.chmod(0o644)
    return path


def running_as_root() -> bool:
    return os.geteuid() == 0


def server_user() -> pwd.struct_passwd:
    """The account server processes run as: `postgres` when we are root (bin/install-test-tools creates it), else
    ourselves."""
    return pwd.getpwnam("postgres") if running_as_root() else pwd.getpwuid(os.geteuid())


def as_server_user(argv: list[str]) -> list[str]:
    """`argv` run as the server user. `setpriv` execs in place, so the PID we get is the program's own."""
    if not running_as_root():
        return argv
    user = server_user()
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--", *argv]


def server_owned_dir(prefix: str) -> Path:
    """A fresh temporary directory the server user owns, under a world-traversable parent (not pytest's tmp_path,
    whose parents are private to us)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    user = server_user()
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def make_server_owned(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    user = server_user()
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def run_tool(argv: list[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL client or server tool as the server user; raise with its output when it fails."""
    result = subprocess.run(as_server_user(argv), env=SERVER_ENVIRONMENT, capture_output=True, text=True,
                            timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def postmaster_pid(data_dir: Path) -> int | None:
    """The PID in `postmaster.pid` when that process still exists, else None."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (no name matching)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def descendant_pids(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in child_pids(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def kill_at_once(roots: list[int]) -> list[int]:
    """SIGKILL every process in `roots` and all their descendants within a millisecond or so, as a power cut
    would: first SIGSTOP the roots (so none forks or reacts meanwhile), collect their descendants, then SIGKILL all.
    Returns the PIDs signalled."""
    roots = [pid for pid in roots if pid and pid_alive(pid)]
    for pid in roots:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    victims = list(dict.fromkeys(roots + [d for pid in roots for d in descendant_pids(pid)]))
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return victims


def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes still alive after {timeout}s: {[p for p in pids if pid_alive(p)]}")
        time.sleep(0.05)


def stop_postmaster(data_dir: Path, timeout: float = 20.0) -> None:
    """Stop the server on `data_dir` if one runs: SIGINT (fast shutdown), then SIGKILL of it and its children."""
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    children = child_pids(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    try:
        wait_gone([pid], timeout)
    except RuntimeError:
        kill_at_once([pid, *children])
    wait_gone(children, timeout)


def wait_for_connection(dsn: str, timeout: float = 30.0, **kwargs) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            psycopg2.connect(dsn, connect_timeout=2, **kwargs).close()
            return
        except psycopg2.OperationalError as error:
            last = error
            time.sleep(0.1)
    raise RuntimeError(f"no connection to {dsn} within {timeout}s: {last}")


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1:`port` with its data in `root/data`, trusted for local connections
    (tests only). `start()` runs `postgres` directly (no pg_ctl fork), so `process.pid` is the postmaster."""

    def __init__(self, root: Path, port: int | None = None, bin_dir: Path = PG_BIN_DIR, data_dir: Path | None = None):
        self.root = root
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.data_dir = data_dir or root / "data"
        self.log_path = root / f"postgres-{self.port}.log"
        self.socket_dir = make_server_owned(root / f"socket-{self.port}")
        self.process: subprocess.Popen | None = None

    def initdb(self, *options: str) -> "PostgresServer":
        run_tool([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", *options])
        return self

    def start(self, *settings: str, timeout: float = 60.0) -> "PostgresServer":
        """Start the server with `-c name=value` `settings` and wait until it accepts connections."""
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-c", f"port={self.port}",
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}"]
        for setting in settings:
            argv += ["-c", setting]
        log = open(self.log_path, "ab")
        user = server_user()
        os.chown(self.log_path, user.pw_uid, user.pw_gid)
        self.process = subprocess.Popen(as_server_user(argv), env=SERVER_ENVIRONMENT, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited {self.process.returncode}:\n{self.log_text()[-4000:]}")
            try:
                psycopg2.connect(self.dsn(), connect_timeout=2).close()
                return self
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in {timeout}s:\n"
                                       f"{self.log_text()[-4000:]}") from None
            time.sleep(0.1)

    def dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql+psycopg2://{user}@127.0.0.1:{self.port}/{database}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_postmaster(self.data_dir)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
