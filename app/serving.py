"""gunicorn integration: start-up checks in the master, per-worker set-up after fork, JSON access log.

Used by `config/gunicorn.conf.py`; kept here so it is importable and testable.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import uuid

from gunicorn.glogging import Logger

from app.config import Settings
from app.startup import open_database
from app.startup import settings_or_exit
from app.startup import with_database


def load_settings_or_exit() -> Settings:
    """The server's settings, validated once in the master with the receipt-key and log-key rules (`app.keyfiles`);
    on a bad value, one line naming it and exit 2."""
    from app.keyfiles import ensure_log_signing_key
    from app.keyfiles import ensure_receipt_signing_key

    return settings_or_exit(ensure_receipt_signing_key, ensure_log_signing_key)


def prepare_master(settings: Settings) -> None:
    """Master `on_starting`: embedded DB if needed (its URL exported to the workers), metrics directory, migrations
    (once, advisory-locked)."""
    from app.logging import configure_logging

    configure_logging(settings.log_level)
    settings = with_database(settings, export=True)
    prepare_prometheus_multiproc_dir()
    engine = open_database(settings, pool_size=1)
    try:
        register_receipt_key(engine, settings)
    finally:
        engine.dispose()


def register_receipt_key(engine, settings: Settings) -> None:
    """Register VES_SEQUENCER_SIGNING_KEY as a key version (a new one when it changed; docs/KEYS.md). A retired
    key is a start-up error: exit 2 naming the variable."""
    from app.errors import Unavailable
    from app.services.ingest import ReceiptSigner
    from app.services.sequencer_keys import register_running_key
    from app.startup import exit_misconfigured

    try:
        register_running_key(engine, ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key))
    except Unavailable as exc:
        exit_misconfigured(f"VES_SEQUENCER_SIGNING_KEY: {exc}")


def prepare_prometheus_multiproc_dir() -> str:
    """Make `PROMETHEUS_MULTIPROC_DIR` exist and start empty, so counters from a previous run do not leak in."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="sequencer-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    else:
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            target = os.path.join(path, name)
            if os.path.isdir(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.unlink(target)
    return path


def worker_exited(pid: int) -> None:
    """Master `child_exit`: drop the dead worker's live gauges from the multiprocess metrics."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
    except Exception:  # noqa: BLE001 - metrics clean-up must never take the master down
        pass


def quit_once(worker) -> None:
    """Worker `post_worker_init`: gunicorn's quit handler runs at most once per worker.

    Ctrl-C signals the whole process group, so a worker gets SIGINT from the terminal and SIGQUIT from its master
    moments apart. The gthread handler holds its thread pool's shutdown lock for a few bytecodes; a second signal
    landing there re-enters the handler, which then waits for that lock forever, and the worker hangs until the
    master SIGKILLs it after graceful_timeout. The first handler is already exiting, so later ones do nothing.
    """
    handle_quit = worker.handle_quit
    quitting = []

    def handler(signum, frame):
        if not quitting:
            quitting.append(signum)
            handle_quit(signum, frame)

    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, handler)


_GUNICORN_ERROR_CODES = {400: "BAD_REQUEST", 403: "FORBIDDEN", 414: "URI_TOO_LONG", 417: "EXPECTATION_FAILED",
                         431: "HEADERS_TOO_LARGE", 500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED"}


def json_error_response(status_int: int, reason: str, mesg: str) -> bytes:
    """The raw HTTP response for an error gunicorn answers itself (before the app runs: a malformed request line,
    too many or too large headers, an invalid chunk size), in the app's error shape `{"error", "code",
    "request_id"}` instead of gunicorn's HTML page."""
    detail = mesg.encode("ascii", "backslashreplace").decode("ascii")[:200]
    body = json.dumps({"error": f"{reason}: {detail}" if detail else f"{reason}.",
                       "code": _GUNICORN_ERROR_CODES.get(status_int, "HTTP_ERROR"),
                       "request_id": str(uuid.uuid4())}).encode() + b"\n"
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1", "replace")
    return head + body


def json_gunicorn_errors(worker) -> None:
    """Worker `post_worker_init`: gunicorn's own error responses use the JSON error shape (gunicorn writes them with
    `gunicorn.util.write_error`, looked up at call time, so replacing it in the worker covers every worker class)."""
    from gunicorn import util

    def write_error(sock, status_int, reason, mesg):
        util.write_nonblock(sock, json_error_response(status_int, reason, mesg))

    util.write_error = write_error


class JsonAccessLogger(Logger):
    """gunicorn logger whose access lines are JSON. `remote_addr` is the address the app saw (after ProxyFix)."""

    def setup(self, cfg):
        super().setup(cfg)
        from app.logging import JsonFormatter

        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time):
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.logconfig_dict or self.cfg.syslog):
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        line = {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": "INFO",
            "target": "gunicorn::access",
            "message": "request",
            "remote_addr": environ.get("REMOTE_ADDR"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": dict(resp.headers).get("X-Request-ID"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        try:
            self.access_log.info(json.dumps(line, ensure_ascii=False))
        except Exception:  # noqa: BLE001 - an access-log failure must not fail the request
            self.exception("failed to write access log line")


def announce_listening(settings: Settings) -> None:
    """Master `when_ready`: one human line saying where the sequencer answers."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    print(f"StateSet Sequencer listening on http://{host}:{settings.port} (health: /health, ready: /ready)",
          file=sys.stderr, flush=True)
