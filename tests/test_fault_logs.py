"""Logs stay clean under faults: database errors never carry statement parameters, and an outage is one warning
line per interval, not a traceback per request.

The log lines are the real ones: the app's JSON formatter on a handler of the root logger, fed by a real PostgreSQL
error, and by an app whose database (and, separately, whose rate-limit storage) is unreachable.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.engine import make_engine
from app.logging import EveryInterval
from app.logging import JsonFormatter
from tests.controls import BOOTSTRAP_KEY
from tests.controls import auth
from tests.support.servers import free_port

SECRET = "schema-body-7c1f3e"


@pytest.fixture
def log_lines():
    """Every record of every logger, formatted by the app's JsonFormatter, as parsed JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def test_a_database_error_traceback_carries_no_parameters(settings, log_lines):
    engine = make_engine(settings)
    parameters = {"body": '{"%s": %s}' % (SECRET, "Inf" + "inity")}  # jsonb refuses it; PostgreSQL quotes it back
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT CAST(:body AS jsonb)"), parameters)
    except DBAPIError as exc:
        assert SECRET not in str(exc).split("[SQL:")[1], "hide_parameters: SQLAlchemy's part names no parameter"
        logging.getLogger("stateset_sequencer.api").exception("database error")
    finally:
        engine.dispose()
    [line] = [line for line in log_lines() if line["message"] == "database error"]
    assert SECRET not in json.dumps(line) and "Infinity" not in json.dumps(line), line["traceback"]
    assert "SQLSTATE 22P02" in line["traceback"] and "SELECT CAST(%(body)s AS jsonb)" in line["traceback"]
    assert "File " in line["traceback"], "the frames are kept"


def test_every_interval_folds_repeats():
    every = EveryInterval(3600)
    assert every.due("x") == 1
    assert [every.due("x") for _ in range(5)] == [None] * 5
    assert every.due("y") == 1


def outage_requests(client, count: int = 40) -> list[int]:
    statuses = []
    for _ in range(count):
        response = client.get("/api/v1/ves/head?tenant_id=00000000-0000-0000-0000-000000000001&store_id="
                              "00000000-0000-0000-0000-000000000002", headers=auth("ssk_some-key-during-outage"))
        statuses.append(response.status_code)
        assert response.is_json and set(response.json) == {"error", "code", "request_id"}
    return statuses


@pytest.fixture
def fresh_intervals(monkeypatch):
    """The once-per-interval state is per process; start it afresh so earlier tests' faults do not count."""
    import app.api.errors
    from app.logging import OncePerInterval

    monkeypatch.setattr(app.api.errors, "_OUTAGE_LOG", EveryInterval(60))
    for log_filter in logging.getLogger("flask-limiter").filters:
        if isinstance(log_filter, OncePerInterval):
            monkeypatch.setattr(log_filter, "every", EveryInterval(60))


def test_a_database_outage_is_one_warning_per_interval_not_a_traceback_per_request(make_app, log_lines,
                                                                                   fresh_intervals):
    down = Settings.from_env({"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"}).database_url
    app = make_app(database_url=down, rate_limit_per_minute=100_000, db_connect_timeout_seconds=1)
    assert set(outage_requests(app.test_client())) == {503}
    lines = log_lines()
    assert not [line for line in lines if "traceback" in line], [line["message"] for line in lines][:5]
    warnings = [line for line in lines if line["level"] in ("WARNING", "ERROR")]
    assert 1 <= len(warnings) <= 3, [line["message"] for line in warnings]


def test_rate_limit_storage_down_is_one_warning_per_interval(make_app, log_lines, fresh_intervals):
    app = make_app(rate_limit_per_minute=100_000, rate_limit_storage_uri=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    for _ in range(40):
        response = client.get("/api/v1/anchor/status", headers=auth(BOOTSTRAP_KEY))
        assert response.status_code == 200
    limiter_lines = [line for line in log_lines() if line["target"] == "flask-limiter"]
    assert not [line for line in limiter_lines if "traceback" in line]
    assert 1 <= len(limiter_lines) <= 3, [line["message"] for line in limiter_lines]
