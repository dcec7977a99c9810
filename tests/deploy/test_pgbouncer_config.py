"""deploy/pgbouncer/pgbouncer.ini (compose; the k8s ConfigMap is the same text, tests/deploy/test_k8s.py) run by a real
pgbouncer: it parses without complaint, authenticates with SCRAM against its userlist, pools in transaction mode,
and the sequencer's migrations and a sequencing transaction work through it."""

from __future__ import annotations

import re

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Settings
from app.db.engine import make_engine
from app.db.migrations import current_revision
from app.db.migrations import head_revision
from app.db.migrations import upgrade_to_head
from tests.controls import Stream
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.pgbouncer import _upstream
from tests.support.pgbouncer import start_pgbouncer

PASSWORD = "pgbouncer-under-test"
SHIPPED_DATABASE = "stateset_sequencer"


def test_the_shipped_values_are_the_documented_ones(repo_root):
    text = (repo_root / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()
    for setting in ("pool_mode = transaction", "max_client_conn = 200", "listen_port = 6432",
                    "auth_type = scram-sha-256", "idle_transaction_timeout = 0"):
        assert re.search(rf"^{re.escape(setting)}$", text, re.M), setting


@pytest.fixture(scope="module")
def shipped_bouncer(repo_root, database_server_url):
    """The shipped file, with only its addresses and paths changed for a loopback run, in front of a fresh database
    that PgBouncer exposes under the shipped name `stateset_sequencer`."""
    real_database = create_database(database_server_url, prefix="seqshipped")
    host, port, _ = _upstream(database_server_url)
    text = (repo_root / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text()

    def render(listen_port, auth_file) -> str:
        replacements = {
            "listen_addr = 0.0.0.0": "listen_addr = 127.0.0.1",
            "listen_port = 6432": f"listen_port = {listen_port}",
            "auth_file = /etc/pgbouncer/userlist.txt": f"auth_file = {auth_file}",
            "host=postgres port=5432 dbname=stateset_sequencer":
                f"host={host} port={port} dbname={make_url(real_database).database}",
        }
        rendered = text
        for shipped, local in replacements.items():
            assert shipped in rendered, f"deploy/pgbouncer/pgbouncer.ini no longer contains {shipped!r}"
            rendered = rendered.replace(shipped, local)
        return rendered

    client_url = make_url(database_server_url).set(password=PASSWORD, database=SHIPPED_DATABASE)
    client_url = client_url.render_as_string(hide_password=False)
    try:
        with start_pgbouncer(client_url, render=render) as bouncer:
            yield bouncer, bouncer.url_for(client_url), real_database
    finally:
        drop_database(database_server_url, real_database)


@pytest.mark.slow
def test_pgbouncer_accepts_the_file_and_refuses_a_wrong_password(shipped_bouncer):
    bouncer, url, _ = shipped_bouncer
    log = bouncer.log_text()
    assert not re.search(r"unknown parameter|invalid value|syntax error|ERROR|FATAL", log), log
    wrong = make_url(url).set(password="not-the-password", drivername="postgresql")
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(wrong.render_as_string(hide_password=False), connect_timeout=5).close()


@pytest.mark.slow
def test_migrations_and_the_sequencer_work_through_the_shipped_pgbouncer(shipped_bouncer, settings):
    _, url, direct = shipped_bouncer
    pooled = Settings.from_env({"DATABASE_URL": url}).database_url
    engine = make_engine(settings.replace(database_url=pooled), pool_size=2)
    try:
        assert upgrade_to_head(engine) is True
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    app = create_app(settings.replace(database_url=pooled, database_listen_url=direct))
    try:
        stream = Stream(app.test_client(), app.extensions["sequencer"].engine)
        receipts = stream.ingest([stream.event(f"o{i}") for i in range(5)])["receipts"]
        assert [receipt["sequenceNumber"] for receipt in receipts] == [1, 2, 3, 4, 5]
        assert [event["sequence_number"] for event in stream.events()["events"]] == [1, 2, 3, 4, 5]
    finally:
        app.extensions["sequencer"].close()
