"""JSON-lines logging to stdout: `timestamp`, `level`, `target`, `message`, plus any `extra=` fields.

Never pass a secret, key, signature or payload body as a field: log lines are shipped to aggregators.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import time
import traceback

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _target(logger_name: str) -> str:
    """`stateset_sequencer.api` -> `stateset_sequencer::api` (the Rust implementation's target format)."""
    return logger_name.replace(".", "::")


def _is_database_error(exc_type: type) -> bool:
    return any(cls.__module__.split(".")[0] in ("psycopg2", "sqlalchemy") for cls in exc_type.__mro__[:-1]
               if issubclass(cls, Exception))


def _withheld(exc: BaseException) -> str:
    """What a database error says without its message: PostgreSQL's messages, DETAIL and LINE context, and
    SQLAlchemy's `[parameters: ...]`, quote the values of the statement (schema bodies, payloads, key hashes)."""
    orig = getattr(exc, "orig", exc)
    parts = [f"SQLSTATE {getattr(orig, 'pgcode', None) or 'unknown'}"]
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        parts.append(f"statement: {' '.join(statement.split())[:500]}")
    return "; ".join(parts) + " (message withheld: it may quote SQL parameters)"


def format_exception_safely(exc_info) -> str:
    """The traceback, every frame kept, with the message of each database error in the chain replaced by
    `_withheld` (its SQLSTATE and parameterless statement)."""
    exc_type, exc, tb = exc_info
    if exc is None:
        return "".join(traceback.format_exception(exc_type, exc, tb))
    top = traceback.TracebackException(exc_type, exc, tb)
    seen, stack = set(), [(top, exc)]
    while stack:
        te, value = stack.pop()
        if id(te) in seen:
            continue
        seen.add(id(te))
        if _is_database_error(type(value)):
            te._str = _withheld(value)
        if te.__cause__ is not None and value.__cause__ is not None:
            stack.append((te.__cause__, value.__cause__))
        if te.__context__ is not None and value.__context__ is not None:
            stack.append((te.__context__, value.__context__))
    return "".join(top.format()).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def formatException(self, ei) -> str:  # noqa: N802 - logging.Formatter's name
        return format_exception_safely(ei)

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "target": _target(record.name),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error_type"] = record.exc_info[0].__name__
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class EveryInterval:
    """At most one log line per `seconds` per key: `due(key)` is the number of occurrences folded into this line
    (≥ 1) when one is due, else None (and the occurrence is counted for the next line)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._last: dict[str, float] = {}
        self._folded: dict[str, int] = {}
        self._lock = threading.Lock()

    def due(self, key: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            self._folded[key] = self._folded.get(key, 0) + 1
            last = self._last.get(key)
            if last is not None and now - last < self.seconds:
                return None
            self._last[key] = now
            return self._folded.pop(key)


FAULT_LOG_INTERVAL_SECONDS = 60.0
"""During an outage (database, rate-limit storage) the same fault is logged once per this interval, with the count
of occurrences it stands for, instead of a line (or a traceback) per request."""


class OncePerInterval(logging.Filter):
    """A logging filter for a third-party logger that logs a traceback per request while a dependency is down
    (flask-limiter's "Failed to rate limit. Swallowing error"): each distinct message passes at most once per
    interval, as a WARNING without the traceback, naming the exception type and how many it stands for."""

    def __init__(self, seconds: float = FAULT_LOG_INTERVAL_SECONDS):
        super().__init__()
        self.every = EveryInterval(seconds)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        count = self.every.due(record.getMessage())
        if count is None:
            return False
        if record.exc_info and record.exc_info[0] is not None:
            record.error_type = record.exc_info[0].__name__
            record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.occurrences = count
        record.repeats_suppressed_seconds = self.every.seconds
        return True


def configure_logging(level: str) -> None:
    """Send every logger's records to stdout as JSON lines at `level` (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sequencer_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._sequencer_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    limiter_log = logging.getLogger("flask-limiter")
    if not any(isinstance(f, OncePerInterval) for f in limiter_log.filters):
        limiter_log.addFilter(OncePerInterval())
    for noisy in ("werkzeug", "urllib3", "web3", "asyncio", "pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
