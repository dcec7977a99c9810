import subprocess
import sys

import pytest

from app.config import ConfigError
from app.config import Settings
from tests.support.servers import ROOT


def test_defaults_match_the_deployment_guide():
    s = Settings.from_env({"DATABASE_URL": "postgres://u:p@db:5432/seq"})
    assert (s.host, s.port, s.max_db_connections) == ("0.0.0.0", 8080, 10)
    assert s.allow_unsigned_receipts is False
    s = Settings.from_env({})
    assert (s.max_body_size_bytes, s.max_events_per_batch, s.max_event_payload_size) == (10485760, 1000, 1048576)
    assert s.l2_chain_id == 84532001
    assert s.db_migrate_on_startup is True
    assert s.database_url is None
    assert s.sequencer_signing_key is None


@pytest.mark.parametrize(
    ("env", "host"),
    [({}, "127.0.0.1"), ({"DATABASE_URL": "postgres://u@db/seq"}, "0.0.0.0"), ({"HOST": "0.0.0.0"}, "0.0.0.0"),
     ({"HOST": "::1", "DATABASE_URL": "postgres://u@db/seq"}, "::1"), ({"HOST": ""}, "127.0.0.1")],
)
def test_host_defaults_to_loopback_only_on_the_embedded_database(env, host):
    assert Settings.from_env(env).host == host


def test_every_guide_variable_is_read():
    env = {
        "DATABASE_URL": "postgres://u:p@db:5432/seq",
        "HOST": "127.0.0.1",
        "PORT": "9000",
        "MAX_DB_CONNECTIONS": "20",
        "RUST_LOG": "debug",
        "MAX_BODY_SIZE_BYTES": "2048",
        "MAX_EVENTS_PER_BATCH": "10",
        "MAX_EVENT_PAYLOAD_SIZE": "100",
        "VES_SEQUENCER_SIGNING_KEY": "ab" * 32,
        "DB_MIGRATE_ON_STARTUP": "0",
        "SCHEMA_VALIDATION_MODE": "required",
        "RATE_LIMIT_PER_MINUTE": "100",
        "RATE_LIMIT_MAX_ENTRIES": "500",
        "RATE_LIMIT_WINDOW_SECONDS": "30",
        "L2_RPC_URL": "http://127.0.0.1:8545",
        "SET_REGISTRY_ADDRESS": "0x" + "12" * 20,
        "SEQUENCER_PRIVATE_KEY": "0x" + "34" * 32,
        "L2_CHAIN_ID": "31337",
    }
    s = Settings.from_env(env)
    assert s.database_url == "postgresql+psycopg2://u:p@db:5432/seq"
    assert (s.host, s.port, s.max_db_connections, s.log_level) == ("127.0.0.1", 9000, 20, "DEBUG")
    assert (s.max_body_size_bytes, s.max_events_per_batch, s.max_event_payload_size) == (2048, 10, 100)
    assert s.sequencer_signing_key == bytes([0xAB]) * 32
    assert s.db_migrate_on_startup is False
    assert s.schema_validation_mode == "required"
    assert (s.rate_limit_per_minute, s.rate_limit_max_entries, s.rate_limit_window_seconds) == (100, 500, 30)
    assert s.anchoring_configured and s.l2_chain_id == 31337


@pytest.mark.parametrize("url", [
    "postgresql://seq:p%40ss@pg1:5432,pg2:5433/stateset_sequencer?target_session_attrs=read-write",
    "postgres://pg1,pg2",
    "postgresql://seq@pg1,pg2:6000,10.0.0.3/db?sslmode=require&application_name=x&target_session_attrs=primary",
    "postgresql://seq@%2Fvar%2Frun%2Fpostgresql,pg2/db",
    "postgresql+psycopg2://seq@pg1:5432,pg2:5432/db?target_session_attrs=read-write",
])
def test_multi_host_url_reaches_libpq_as_libpq_itself_reads_it(url):
    """What SQLAlchemy passes to psycopg2 for the validated URL equals libpq's own parse of the operator's URL:
    every host in order, its port, credentials, database and query options (target_session_attrs above all)."""
    from psycopg2.extensions import parse_dsn
    from sqlalchemy.dialects.postgresql.psycopg2 import dialect
    from sqlalchemy.engine import make_url

    validated = Settings.from_env({"DATABASE_URL": url}).database_url
    args, kwargs = dialect().create_connect_args(make_url(validated))
    assert args == []
    assert {key: str(value) for key, value in kwargs.items()} == parse_dsn(url.replace("+psycopg2", ""))


@pytest.mark.parametrize("hosts", ["[::1]:5432,pg2", "pg1,,pg2", "pg1:x,pg2", "pg1:5432:1,pg2", "pg1 ,pg2"])
def test_multi_host_url_with_an_unusable_host_is_refused_naming_the_variable(hosts):
    with pytest.raises(ConfigError, match=r"^DATABASE_URL lists several hosts"):
        Settings.from_env({"DATABASE_URL": f"postgresql://seq@{hosts}/db"})


@pytest.mark.parametrize(
    "value",
    ["00" * 32, "0x" + "00" * 32, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"],
)
def test_signing_key_accepts_hex_and_base64(value):
    key = Settings.from_env({"VES_SEQUENCER_SIGNING_KEY": value}).sequencer_signing_key
    assert len(key) == 32


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"VES_SEQUENCER_SIGNING_KEY": "ab" * 31}, "VES_SEQUENCER_SIGNING_KEY"),
        ({"VES_SEQUENCER_SIGNING_KEY": "not a key!"}, "VES_SEQUENCER_SIGNING_KEY"),
        ({"SCHEMA_VALIDATION_MODE": "paranoid"}, "SCHEMA_VALIDATION_MODE"),
        ({"MAX_DB_CONNECTIONS": "0"}, "MAX_DB_CONNECTIONS"),
        ({"DB_MIGRATE_ON_STARTUP": "maybe"}, "DB_MIGRATE_ON_STARTUP"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"SET_REGISTRY_ADDRESS": "0x1234"}, "SET_REGISTRY_ADDRESS"),
        ({"SEQUENCER_PRIVATE_KEY": "0x12"}, "SEQUENCER_PRIVATE_KEY"),
        ({"L2_CHAIN_ID": "-1"}, "L2_CHAIN_ID"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"WEB_CONCURRENCY": "many"}, "WEB_CONCURRENCY"),
        ({"ALLOW_UNSIGNED_RECEIPTS": "please"}, "ALLOW_UNSIGNED_RECEIPTS"),
    ],
)
def test_bad_value_names_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(variable)
    assert "\n" not in str(info.value)


def test_strict_is_an_alias_for_enforce():
    assert Settings.from_env({"SCHEMA_VALIDATION_MODE": "strict"}).schema_validation_mode == "enforce"


@pytest.mark.parametrize(
    ("rust_log", "level"),
    [("info,stateset_sequencer=debug", "INFO"), ("debug,sqlx=debug", "DEBUG"), ("warn", "WARNING"),
     ("stateset_sequencer=debug", "INFO"), ("trace", "DEBUG"), ("error", "ERROR")],
)
def test_rust_log_leading_default_sets_level(rust_log, level):
    assert Settings.from_env({"RUST_LOG": rust_log}).log_level == level


def test_log_level_wins_over_rust_log():
    assert Settings.from_env({"RUST_LOG": "debug", "LOG_LEVEL": "error"}).log_level == "ERROR"


def test_secrets_are_not_in_repr():
    s = Settings.from_env(
        {"VES_SEQUENCER_SIGNING_KEY": "cd" * 32, "BOOTSTRAP_ADMIN_API_KEY": "super-secret-bootstrap-key",
         "SEQUENCER_PRIVATE_KEY": "ef" * 32}
    )
    text = repr(s)
    assert "cdcd" not in text and "super-secret" not in text and "efef" not in text


def test_gunicorn_start_up_stops_with_one_clear_line_on_bad_config():
    env = {"PATH": "/usr/bin:/bin", "PORT": "not-a-port", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "configuration error: PORT must be an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_refuses_to_start_without_a_receipt_key_when_database_url_is_set():
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: VES_SEQUENCER_SIGNING_KEY is not set: with DATABASE_URL given the sequencer needs a "
        "32-byte Ed25519 seed to sign receipts (generate one with `openssl rand -hex 32` and keep it secret), or set "
        "ALLOW_UNSIGNED_RECEIPTS=1 to run with unsigned receipts"]


@pytest.mark.slow
def test_gunicorn_with_allow_unsigned_receipts_starts_warns_and_signs_nothing(database_url):
    import json

    import requests

    from tests.support.servers import start_gunicorn

    env = {"VES_SEQUENCER_SIGNING_KEY": "", "ALLOW_UNSIGNED_RECEIPTS": "1"}
    with start_gunicorn(database_url, env=env, workers=1) as server:
        info = requests.get(server.url + "/api/v1/ves/sequencer", timeout=10).json()
        log = server.log_text()
    assert info["signature_alg"] == "none"
    warnings = [json.loads(line) for line in log.splitlines()
                if line.startswith("{") and "receipt signing is OFF" in line]
    assert [(w["level"], w["target"]) for w in warnings] == [("WARNING", "stateset_sequencer::startup")]


def test_worker_model_and_database_bound_defaults():
    s = Settings.from_env({"DATABASE_URL": "postgres://u:secret@db/seq"})
    assert (s.web_threads, s.long_poll_slots_per_worker) == (8, 3)
    assert (s.db_connect_timeout_seconds, s.db_statement_timeout_ms, s.stream_lock_timeout_ms) == (2, 5000, 4000)
    assert s.db_pool_timeout_seconds == 2.0 and s.db_response_timeout_seconds == 6.0
    assert s.database_listen_url is None and s.listen_url == s.database_url
    direct = Settings.from_env({"DATABASE_URL": "postgres://u@bouncer:6432/seq",
                                "DATABASE_LISTEN_URL": "postgresql://u:listen-secret@db:5432/seq"})
    assert direct.listen_url == "postgresql+psycopg2://u:listen-secret@db:5432/seq"
    assert "listen-secret" not in repr(direct)


def test_read_replica_url_is_optional_secret_and_needs_a_primary():
    assert Settings.from_env({"DATABASE_URL": "postgres://u@db/seq"}).database_read_url is None
    with_replica = Settings.from_env({"DATABASE_URL": "postgres://u@db/seq",
                                      "DATABASE_READ_URL": "postgres://u:replica-secret@standby:5432/seq"})
    assert with_replica.database_read_url == "postgresql+psycopg2://u:replica-secret@standby:5432/seq"
    assert "replica-secret" not in repr(with_replica)
    for env in ({"DATABASE_URL": "postgres://u@db/seq", "DATABASE_READ_URL": "mysql://standby/seq"},
                {"DATABASE_READ_URL": "postgres://u@standby/seq"}):
        with pytest.raises(ConfigError) as info:
            Settings.from_env(env)
        assert str(info.value).startswith("DATABASE_READ_URL")


def test_threads_never_exceed_the_pool_and_slots_leave_a_thread_free():
    assert Settings.from_env({"MAX_DB_CONNECTIONS": "4"}).web_threads == 4
    assert Settings.from_env({"MAX_DB_CONNECTIONS": "4"}).long_poll_slots_per_worker == 1
    assert Settings.from_env({"WEB_THREADS": "16", "MAX_DB_CONNECTIONS": "20"}).long_poll_slots_per_worker == 7
    assert Settings.from_env({"WEB_THREADS": "1"}).long_poll_slots_per_worker == 0
    assert Settings.from_env({"LONG_POLL_SLOTS_PER_WORKER": "0"}).long_poll_slots_per_worker == 0
    assert Settings.from_env({"LONG_POLL_SLOTS_PER_WORKER": "7"}).long_poll_slots_per_worker == 7


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WEB_THREADS": "12"}, "WEB_THREADS"),
        ({"WEB_THREADS": "0"}, "WEB_THREADS"),
        ({"WEB_THREADS": "4", "LONG_POLL_SLOTS_PER_WORKER": "4"}, "LONG_POLL_SLOTS_PER_WORKER"),
        ({"LONG_POLL_SLOTS_PER_WORKER": "-1"}, "LONG_POLL_SLOTS_PER_WORKER"),
        ({"DATABASE_LISTEN_URL": "redis://x"}, "DATABASE_LISTEN_URL"),
        ({"DB_CONNECT_TIMEOUT_SECONDS": "1"}, "DB_CONNECT_TIMEOUT_SECONDS"),
        ({"DB_STATEMENT_TIMEOUT_MS": "fast"}, "DB_STATEMENT_TIMEOUT_MS"),
        ({"DB_POOL_TIMEOUT_SECONDS": "-1"}, "DB_POOL_TIMEOUT_SECONDS"),
        ({"STREAM_LOCK_TIMEOUT_MS": "5000"}, "STREAM_LOCK_TIMEOUT_MS"),
        ({"STREAM_LOCK_TIMEOUT_MS": "900", "DB_STATEMENT_TIMEOUT_MS": "800"}, "STREAM_LOCK_TIMEOUT_MS"),
    ],
)
def test_bad_worker_or_bound_value_names_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(variable)


def test_gunicorn_runs_gthread_workers_with_web_threads():
    code = ("import runpy; ns = runpy.run_path('config/gunicorn.conf.py'); "
            "print(ns['worker_class'], ns['threads'], ns['graceful_timeout'])")
    env = {"PATH": "/usr/bin:/bin", "WEB_THREADS": "5", "LONG_POLL_MAX_SECONDS": "60",
           "DATABASE_URL": "postgresql://x@127.0.0.1:1/x", "VES_SEQUENCER_SIGNING_KEY": "ab" * 32,
           "LOG_SIGNING_KEY": "cd" * 32}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gthread", "5", "65"]


def test_a_worker_handles_only_the_first_of_two_quit_signals():
    """Ctrl-C reaches a worker twice (SIGINT from the terminal, SIGQUIT from its master). gunicorn's gthread quit
    handler is not re-entrant (a second signal inside it waits forever for the thread pool's shutdown lock), so the
    worker hook `post_worker_init` installs a handler that runs it once. Checked through the real config file, in a
    child process so this process's signal handlers stay as they are."""
    code = """
import runpy, signal
ns = runpy.run_path('config/gunicorn.conf.py')
calls = []
class Worker:
    def handle_quit(self, signum, frame):
        calls.append(signum)
        signal.getsignal(signal.SIGQUIT)(signal.SIGQUIT, None)   # the master's signal lands meanwhile
ns['post_worker_init'](Worker())
signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
signal.getsignal(signal.SIGQUIT)(signal.SIGQUIT, None)
print(calls == [signal.SIGINT])
"""
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
           "VES_SEQUENCER_SIGNING_KEY": "ab" * 32, "LOG_SIGNING_KEY": "cd" * 32}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]
