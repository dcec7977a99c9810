"""docker-compose.yml as validated and resolved by a real compose client.

`docker compose` (the v2 plugin) is not installed here, so this uses Debian's `docker-compose` 1.29 (`config` works
offline and checks the file against the compose schema, interpolation and profiles).
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

RECEIPT_KEY = "ab" * 32
LOG_KEY = "cd" * 32


def compose_config(repo_root, find_tool, *profiles, env=None):
    argv = [find_tool("docker-compose")]
    for profile in profiles:
        argv += ["--profile", profile]
    full_env = {key: value for key, value in os.environ.items()
                if key not in ("DB_PASSWORD", "VES_SEQUENCER_SIGNING_KEY", "LOG_SIGNING_KEY")}
    full_env.update(env or {})
    return subprocess.run(argv + ["config"], cwd=repo_root, env=full_env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def full_config(repo_root, find_tool):
    result = compose_config(repo_root, find_tool, "tls", "anchoring",
                            env={"DB_PASSWORD": "pw-under-test", "VES_SEQUENCER_SIGNING_KEY": RECEIPT_KEY,
                                 "LOG_SIGNING_KEY": LOG_KEY})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_default_profile_runs_only_sequencer_and_postgres(full_config):
    unprofiled = {name for name, service in full_config["services"].items() if not service.get("profiles")}
    assert unprofiled == {"sequencer", "postgres"}


def test_missing_db_password_is_refused_by_name(repo_root, find_tool):
    result = compose_config(repo_root, find_tool, env={"VES_SEQUENCER_SIGNING_KEY": RECEIPT_KEY,
                                                       "LOG_SIGNING_KEY": LOG_KEY})
    assert result.returncode != 0
    assert "DB_PASSWORD" in result.stderr


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_missing_receipt_key_is_refused_by_name_with_how_to_make_one(repo_root, find_tool, value):
    env = {"DB_PASSWORD": "pw-under-test", "LOG_SIGNING_KEY": LOG_KEY}
    if value is not None:
        env["VES_SEQUENCER_SIGNING_KEY"] = value
    result = compose_config(repo_root, find_tool, env=env)
    assert result.returncode != 0
    assert "set VES_SEQUENCER_SIGNING_KEY (openssl rand -hex 32)" in result.stderr


def test_missing_log_key_is_refused_by_name(repo_root, find_tool):
    result = compose_config(repo_root, find_tool, env={"DB_PASSWORD": "pw-under-test",
                                                       "VES_SEQUENCER_SIGNING_KEY": RECEIPT_KEY})
    assert result.returncode != 0
    assert "set LOG_SIGNING_KEY (openssl rand -hex 32, not the receipt key)" in result.stderr


def test_receipt_key_reaches_both_services(full_config):
    for name in ("sequencer", "anchor"):
        assert full_config["services"][name]["environment"]["VES_SEQUENCER_SIGNING_KEY"] == RECEIPT_KEY


def test_profiles_add_nginx_anchoring_and_pgbouncer(full_config):
    services = full_config["services"]
    assert set(services) == {"sequencer", "postgres", "nginx", "anchor", "pgbouncer"}
    assert services["nginx"]["profiles"] == ["tls"]
    assert services["anchor"]["profiles"] == ["anchoring"]
    assert services["pgbouncer"]["profiles"] == ["pgbouncer"]


@pytest.fixture(scope="module")
def pooled_config(repo_root, find_tool):
    result = compose_config(repo_root, find_tool, "pgbouncer", "anchoring", env={
        "DB_PASSWORD": "pw-under-test", "VES_SEQUENCER_SIGNING_KEY": RECEIPT_KEY, "LOG_SIGNING_KEY": LOG_KEY,
        "SEQUENCER_DB_ADDRESS": "pgbouncer:6432"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_with_pgbouncer_the_pools_go_through_it_and_listen_goes_direct(pooled_config, full_config):
    for name in ("sequencer", "anchor"):
        env = pooled_config["services"][name]["environment"]
        assert env["DATABASE_URL"] == "postgres://sequencer:pw-under-test@pgbouncer:6432/stateset_sequencer"
        assert env["DATABASE_LISTEN_URL"] == "postgres://sequencer:pw-under-test@postgres:5432/stateset_sequencer"
        assert full_config["services"][name]["environment"]["DATABASE_LISTEN_URL"] == env["DATABASE_LISTEN_URL"]


def test_pgbouncer_service_runs_the_shipped_config_after_postgres(pooled_config, repo_root):
    pgbouncer = pooled_config["services"]["pgbouncer"]
    assert f"{repo_root / 'deploy' / 'pgbouncer' / 'pgbouncer.ini'}:/etc/pgbouncer/pgbouncer.ini:ro" in \
        pgbouncer["volumes"]
    assert pgbouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert pgbouncer["environment"]["DB_PASSWORD"] == "pw-under-test"
    assert pgbouncer["environment"]["AUTH_TYPE"] == "scram-sha-256"
    assert "6432" in pgbouncer["healthcheck"]["test"]
    assert not pgbouncer.get("ports"), "PgBouncer is reachable inside the compose network only"


def test_sequencer_waits_for_healthy_postgres_and_checks_health(full_config):
    sequencer = full_config["services"]["sequencer"]
    assert sequencer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/health" in " ".join(sequencer["healthcheck"]["test"])
    assert [port.rsplit(":", 1)[-1] for port in sequencer["ports"]] == ["8080/tcp"]
    url = sequencer["environment"]["DATABASE_URL"]
    assert url == "postgres://sequencer:pw-under-test@postgres:5432/stateset_sequencer"


def test_postgres_is_16_with_pg_isready_healthcheck(full_config):
    postgres = full_config["services"]["postgres"]
    assert postgres["image"] == "postgres:16-alpine"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_DB"] == "stateset_sequencer"
    assert "postgres_data:/var/lib/postgresql/data:rw" in postgres["volumes"]
    assert postgres["ports"] == ["127.0.0.1:5432:5432/tcp"]


def test_environment_names_are_settings_the_app_reads(full_config, known_setting_names):
    for name in ("sequencer", "anchor"):
        unknown = set(full_config["services"][name]["environment"]) - known_setting_names - {"ANCHOR_INTERVAL_SECONDS"}
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"


def test_guide_defaults(full_config):
    env = full_config["services"]["sequencer"]["environment"]
    assert env["PORT"] == "8080"
    assert env["MAX_BODY_SIZE_BYTES"] == "10485760"
    assert env["MAX_EVENTS_PER_BATCH"] == "1000"
    assert env["MAX_EVENT_PAYLOAD_SIZE"] == "1048576"
    assert env["L2_CHAIN_ID"] == "84532001"


def test_anchor_service_runs_the_cron_entrypoint_without_migrating(full_config):
    anchor = full_config["services"]["anchor"]
    assert "stateset-sequencer-admin anchor --once" in " ".join(anchor["command"])
    assert anchor["environment"]["DB_MIGRATE_ON_STARTUP"] == "0"
    assert anchor["image"] == full_config["services"]["sequencer"]["image"]


def test_nginx_mounts_the_repository_config_and_certs(full_config, repo_root):
    volumes = full_config["services"]["nginx"]["volumes"]
    assert f"{repo_root / 'nginx' / 'nginx.conf'}:/etc/nginx/nginx.conf:ro" in volumes
    assert f"{repo_root / 'certs'}:/etc/nginx/certs:ro" in volumes
    assert {p["target"] for p in full_config["services"]["nginx"]["ports"]} == {80, 443}
