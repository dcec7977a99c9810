"""The database goes away and comes back: liveness stays up, readiness follows the database, nothing wedges."""

import time

import pytest
import requests
import sqlalchemy as sa

from app.db.migrations import upgrade_to_head
from tests.support.pg import EmbeddedPostgres
from tests.support.pg import create_database
from tests.support.servers import start_gunicorn


@pytest.fixture
def restartable_database():
    server = EmbeddedPostgres().start()
    url = create_database(server.server_url())
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield server, url
    server.destroy()


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_ready_goes_503_while_database_is_down_and_recovers(restartable_database):
    server, url = restartable_database
    with start_gunicorn(url, workers=2) as app_server:
        assert requests.get(app_server.url + "/ready", timeout=5).status_code == 200

        server.stop_server()
        responses = [requests.get(app_server.url + "/ready", timeout=10) for _ in range(4)]
        assert [r.status_code for r in responses] == [503] * 4
        assert all(r.json()["code"] == "DATABASE_UNAVAILABLE" for r in responses)
        assert requests.get(app_server.url + "/health", timeout=5).status_code == 200

        server.restart_server()
        assert _wait_for(lambda: requests.get(app_server.url + "/ready", timeout=10).status_code == 200)
        assert all(requests.get(app_server.url + "/ready", timeout=10).status_code == 200 for _ in range(4))
        assert "Traceback" not in app_server.log_text()
