"""A real gunicorn serving the app, for tests whose behaviour depends on processes, sockets or workers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
RECEIPT_KEY_HEX = "5e" * 32
"""The receipt key `base_env` gives every server: with DATABASE_URL set the server refuses to start without one."""
LOG_KEY_HEX = "6c" * 32
"""The transparency-log key `base_env` gives every server (refused without one too, unless LOG_DISABLED=1)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GunicornServer:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    metrics_dir: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]


def base_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "WEB_CONCURRENCY"}
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "info",
            "DB_MIGRATE_ON_STARTUP": "1",
            "RATE_LIMIT_PER_MINUTE": "0",
            "VES_SEQUENCER_SIGNING_KEY": RECEIPT_KEY_HEX,
            "LOG_SIGNING_KEY": LOG_KEY_HEX,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


@contextlib.contextmanager
def start_gunicorn(database_url: str, env: dict[str, str] | None = None, workers: int = 2, timeout: float = 60.0,
                   extra_args: tuple[str, ...] = (), launcher: list[str] | None = None):
    """Run `gunicorn -c config/gunicorn.conf.py wsgi:app` on a free loopback port until the block exits.

    Waits until `/health` answers. The combined stdout/stderr (JSON log lines) is kept at `server.log_path`.
    `extra_args` go to gunicorn's command line, which overrides the config file (bench/: `--worker-class sync`).
    `launcher` replaces `python -m gunicorn` (bench/tlog.py's A/B variant).
    """
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="seqgunicorn-"))
    metrics_dir = workdir / "metrics"
    log_path = workdir / "server.log"
    full_env = base_env(database_url, PORT=str(port), WEB_CONCURRENCY=str(workers),
                        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), **(env or {}))
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [*(launcher or [sys.executable, "-m", "gunicorn"]), "-c", str(ROOT / "config" / "gunicorn.conf.py"),
             *extra_args,
             "wsgi:app"],
            cwd=ROOT,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = GunicornServer(f"http://127.0.0.1:{port}", port, process, log_path, metrics_dir)
    try:
        _wait_healthy(server, timeout, workers)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: GunicornServer, timeout: float, workers: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log_text()[-4000:]}")
        try:
            if requests.get(server.url + "/health", timeout=1).status_code == 200 and (
                len(server.worker_pids()) >= workers
            ):
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not become healthy in {timeout}s:\n{server.log_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
