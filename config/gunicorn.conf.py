"""gunicorn configuration for the sequencer: `gunicorn -c config/gunicorn.conf.py wsgi:app`.

Settings come from the environment (see README). Migrations run once in the master before workers fork; each
worker builds its own database engine and long-poll listener when it imports `wsgi:app` (no `preload_app`).

Worker model (docs/DEPLOYMENT.md, "Worker model"): `gthread` workers, `WEB_THREADS` threads each. A long poll waits
in one of `LONG_POLL_SLOTS_PER_WORKER` slots without holding a database connection, so the other threads keep
answering; `/health` never touches the database.
"""

import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from app.serving import load_settings_or_exit  # noqa: E402
from app.serving import prepare_master  # noqa: E402
from app.serving import announce_listening  # noqa: E402
from app.serving import json_gunicorn_errors  # noqa: E402
from app.serving import quit_once  # noqa: E402
from app.serving import worker_exited  # noqa: E402
from app import restore_recursion_limit  # noqa: E402

_settings = load_settings_or_exit()

bind = [f"[{_settings.host}]:{_settings.port}" if ":" in _settings.host else f"{_settings.host}:{_settings.port}"]
workers = _settings.web_concurrency or (2 * multiprocessing.cpu_count() + 1)
worker_class = "gthread"
threads = _settings.web_threads
timeout = int(max(60, _settings.long_poll_max_seconds + 30))
graceful_timeout = int(max(30, _settings.long_poll_max_seconds + 5))
keepalive = 5
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
logger_class = "app.serving.JsonAccessLogger"
limit_request_line = 8190
limit_request_fields = 100
proc_name = "stateset-sequencer"
control_socket_disable = True


def on_starting(server):
    prepare_master(_settings)


def post_worker_init(worker):
    quit_once(worker)
    json_gunicorn_errors(worker)
    restore_recursion_limit()


def child_exit(server, worker):
    worker_exited(worker.pid)


def when_ready(server):
    announce_listening(_settings)
