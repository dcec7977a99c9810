"""The admin CLI against a real database, and the in-memory rate limiter's bounds."""

import json
import os
import subprocess
import sys
import uuid

import pytest

from app.limits import BoundedMemoryStorage
from app.limits import per_window
from tests.controls import auth
from tests.support.servers import ROOT


def _cli(database_url, *args):
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "warning"}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_newcomer_flow_create_key_use_it_and_get_refused_elsewhere(database_url, make_app):
    tenant = uuid.uuid4()
    created = _cli(database_url, "create-api-key", "--tenant", str(tenant), "--permissions", "read", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["tenant_id"] == str(tenant) and key["api_key"].startswith("ssk_")
    client = make_app().test_client()
    mine = client.get(f"/api/v1/ves/head?tenant_id={tenant}&store_id={uuid.uuid4()}", headers=auth(key["api_key"]))
    assert mine.status_code == 200 and mine.json["head_sequence"] == 0
    other = client.get(f"/api/v1/ves/head?tenant_id={uuid.uuid4()}&store_id={uuid.uuid4()}",
                       headers=auth(key["api_key"]))
    assert other.status_code == 403

    listed = _cli(database_url, "list-api-keys", "--tenant", str(tenant))
    assert listed.returncode == 0 and key["key_id"] in listed.stdout and key["api_key"] not in listed.stdout
    revoked = _cli(database_url, "revoke-api-key", key["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    refused = client.get(f"/api/v1/ves/head?tenant_id={tenant}&store_id={uuid.uuid4()}", headers=auth(key["api_key"]))
    assert refused.status_code == 401
    missing = _cli(database_url, "revoke-api-key", str(uuid.uuid4()))
    assert missing.returncode == 1 and "no API key" in missing.stderr


def test_register_agent_key_from_the_cli(database_url, make_app):
    tenant, agent = uuid.uuid4(), uuid.uuid4()
    public = "0x" + "ab" * 32
    args = ["register-agent-key", "--tenant", str(tenant), "--agent", str(agent), "--key-id", "4",
            "--public-key", public]
    first, second = _cli(database_url, *args), _cli(database_url, *args)
    assert first.returncode == 0 and "registered" in first.stdout
    assert second.returncode == 0 and "already registered" in second.stdout
    conflict = _cli(database_url, *args[:-1], "0x" + "cd" * 32)
    assert conflict.returncode == 1 and "different public key" in conflict.stderr
    bad = _cli(database_url, *args[:-1], "0x1234")
    assert bad.returncode == 1 and "public key" in bad.stderr


def test_cli_migrate_and_bad_usage(database_url):
    result = _cli(database_url, "migrate")
    assert result.returncode == 0 and "already at revision" in result.stdout
    usage = _cli(database_url, "create-api-key", "--tenant", "not-a-uuid", "--permissions", "read")
    assert usage.returncode == 2 and "not a UUID" in usage.stderr
    config = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": "mysql://nope"}, timeout=60)
    assert config.returncode == 2 and config.stderr.startswith("configuration error: DATABASE_URL")


def test_bounded_memory_storage_forgets_the_oldest_windows_beyond_max_entries():
    storage = BoundedMemoryStorage(max_entries=100)
    for i in range(250):
        storage.incr(f"client-{i}", 60)
    assert len(storage.expirations) <= 100
    assert storage.get("client-249") == 1
    assert storage.get("client-0") == 0


@pytest.mark.parametrize(("per_minute", "window", "expected"), [(100, 60, 100), (100, 30, 50), (1, 10, 1),
                                                               (600, 1, 10)])
def test_per_minute_budget_is_scaled_to_the_window(per_minute, window, expected):
    assert per_window(per_minute, window) == expected


def test_oversized_body_is_413_before_it_is_read(make_app, engine):
    app = make_app(max_body_size_bytes=2048)
    response = app.test_client().post("/api/v1/ves/events/ingest", data=b"{" + b" " * 5000 + b"}",
                                      content_type="application/json",
                                      headers=auth("test-bootstrap-admin-key-0123456789"))
    assert response.status_code == 413 and response.json["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("text/plain", b"{}", 415), ("application/x-www-form-urlencoded", b"a=b", 415),
    ("application/json", b"\xff\xfe", 400), ("application/json", b"{\"events\": [}", 400),
    ("application/json", b"{\"a\": NaN}", 400), ("application/json", b"{\"a\": 1, \"a\": 2}", 400),
    ("application/json", b"[" * 100 + b"]" * 100, 400),
])
def test_non_json_bodies_are_415_or_400(client, content_type, body, status):
    response = client.post("/api/v1/ves/events/ingest", data=body, content_type=content_type,
                           headers=auth("test-bootstrap-admin-key-0123456789"))
    assert response.status_code == status
    assert set(response.json) == {"error", "code", "request_id"}
