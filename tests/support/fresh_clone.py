"""A fresh copy of this working tree, run the way a newcomer runs it: nothing configured.

The copy holds the files a clone would have (tracked plus untracked-but-not-ignored, as they are in the working
tree): no `./var/`, no `.venv`, no `../shared` next to it. It runs on this checkout's virtualenv; `python -m ...`
from the copy's root imports the copy's `app` (the current directory comes before the editable install).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from tests.support.servers import ROOT
from tests.support.servers import free_port

RUNTIME_VARIABLES = {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "TEST_DATABASE_URL", "XDG_RUNTIME_DIR",
                     "PYTHONWARNINGS", "VIRTUAL_ENV"}


def make_fresh_clone(parent: Path) -> Path:
    """Copy the working tree's checkout-able files to `parent/repo` and return that path."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout
    clone = parent / "repo"
    for raw in filter(None, listed.split(b"\0")):
        name = os.fsdecode(raw)
        source = ROOT / name
        if not source.is_file():
            continue
        target = clone / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return clone


def setting_names() -> set[str]:
    """Every variable `app/config.py` reads."""
    source = (ROOT / "app" / "config.py").read_text()
    return set(re.findall(r'env\.(?:get|int|float|bool|raw)\("([A-Z0-9_]+)"', source)) | {"LOG_LEVEL", "RUST_LOG"}


def newcomer_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any sequencer setting and without `XDG_RUNTIME_DIR` (as on a server or
    in CI), plus `overrides`."""
    dropped = setting_names() | RUNTIME_VARIABLES
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env.update(overrides)
    return env


@dataclass
class CloneServer:
    """`gunicorn -c config/gunicorn.conf.py wsgi:app` (what `bin/run` execs) started in a clone, in its own
    process group as a terminal's foreground job is."""

    clone: Path
    process: subprocess.Popen
    port: int
    stdout_path: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def settle(self, timeout: float = 30.0) -> None:
        """Return once the (single) worker has finished every earlier request: a marker request's access-log line
        is written only after its response, and one sync worker serves requests one after another."""
        marker = f"settle-{uuid.uuid4()}"
        requests.get(self.url + "/health", headers={"X-Request-ID": marker}, timeout=10)
        deadline = time.monotonic() + timeout
        while marker not in self.stdout():
            assert time.monotonic() < deadline, "the access log never showed the marker request"
            time.sleep(0.05)

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C: SIGINT to the whole process group; wait for the master to exit and return its status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """kill -9 of the process group (master and workers), as when a terminal is closed hard."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def start_clone_server(clone: Path, env: dict[str, str], log_dir: Path, timeout: float = 120.0) -> CloneServer:
    port = int(env["PORT"])
    stdout_path, stderr_path = log_dir / f"server-{port}.out", log_dir / f"server-{port}.err"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
                                   cwd=clone, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    server = CloneServer(clone, process, port, stdout_path, stderr_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.stderr()[-4000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + "/ready", timeout=1).status_code == 200:
                return server
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"gunicorn in the clone did not become ready in {timeout}s:\n{server.stderr()[-4000:]}")


def run_in_clone(clone: Path, env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """`python <args>` from the clone's root (e.g. `-m app.cli create-api-key ...`)."""
    return subprocess.run([sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=timeout)


def postmaster_pid(clone: Path) -> int | None:
    path = clone / "var" / "pgdata" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split("\n", 1)[0])
    return None


def is_gone(pid: int) -> bool:
    """True when no live process has `pid` (a zombie nobody reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def postgres_processes_on(clone: Path) -> list[int]:
    """PIDs of live processes whose command line names the clone's data directory (postmaster and children have
    it only in the postmaster's; children are found as its descendants)."""
    data_dir = str(clone / "var" / "pgdata")
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if process.info["status"] != psutil.STATUS_ZOMBIE and data_dir in (process.info["cmdline"] or []):
                found.append(process.pid)
                found.extend(child.pid for child in process.children(recursive=True)
                             if child.status() != psutil.STATUS_ZOMBIE)
    return found


def stop_leftover_postgres(clone: Path) -> None:
    """Test clean-up: stop a postmaster this test's clone still runs (only that PID)."""
    pid = postmaster_pid(clone)
    if pid is not None and not is_gone(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)


@contextlib.contextmanager
def fresh_clone():
    """A fresh clone in a new temporary directory (nothing next to it), removed afterwards together with any
    embedded PostgreSQL it left running."""
    parent = Path(tempfile.mkdtemp(prefix="seqclone-"))
    parent.chmod(0o755)
    clone = make_fresh_clone(parent)
    try:
        yield clone
    finally:
        stop_leftover_postgres(clone)
        shutil.rmtree(parent, ignore_errors=True)
