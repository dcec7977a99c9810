"""Shared fixtures: a fresh, migrated PostgreSQL database per test run, app and client factories.

Tests isolate from each other by using fresh tenant/store ids (see tests/controls.py), not by truncating tables.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from app import create_app
from app.config import Settings
from app.db.engine import make_engine
from app.db.migrations import upgrade_to_head
from tests.support.pg import EmbeddedPostgres
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.pg import test_server_admin_url
from tests.support.pgbouncer import start_pgbouncer


@pytest.fixture(scope="session")
def database_server_url():
    """Admin URL of the PostgreSQL server the run uses: TEST_DATABASE_URL's server, or a private embedded one."""
    admin = test_server_admin_url()
    if admin:
        yield admin
        return
    embedded = EmbeddedPostgres().start()
    try:
        yield embedded.server_url()
    finally:
        embedded.destroy()


@pytest.fixture(scope="session")
def database_url(database_server_url):
    """A fresh database for this run, migrated to Alembic head, dropped at the end."""
    url = create_database(database_server_url)
    engine = sa.create_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    yield url
    drop_database(database_server_url, url)


@pytest.fixture(scope="session")
def settings(database_url) -> Settings:
    return Settings(
        database_url=Settings.from_env({"DATABASE_URL": database_url}).database_url,
        max_db_connections=4,
        rate_limit_per_minute=0,
        log_level=os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        sequencer_signing_key=bytes(range(32)),
        bootstrap_admin_api_key="test-bootstrap-admin-key-0123456789",
        long_poll_max_seconds=5.0,
        log_signing_key=bytes(range(64, 96)),
        log_origin="sequencer.test/ves",
    )


@pytest.fixture(scope="session")
def app(settings):
    application = create_app(settings)
    yield application
    application.extensions["sequencer"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_app(settings):
    """Build an app with setting overrides; engines are disposed after the test."""
    built = []

    def _make(**overrides):
        application = create_app(settings.replace(**overrides))
        built.append(application)
        return application

    yield _make
    for application in built:
        application.extensions["sequencer"].close()


@pytest.fixture(scope="session")
def engine(settings):
    eng = make_engine(settings, pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def pgbouncer(database_server_url):
    """A real PgBouncer in transaction pooling mode in front of the run's PostgreSQL server (every database)."""
    with start_pgbouncer(database_server_url, pool_mode="transaction", pool_size=20) as bouncer:
        yield bouncer
