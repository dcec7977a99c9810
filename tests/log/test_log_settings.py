"""LOG_SIGNING_KEY, LOG_ORIGIN, LOG_MAX_DELAY_SECONDS, LOG_PUBLIC (app/config.py), the embedded default's log key
file (`app.keyfiles.ensure_log_signing_key`) and `LogKey.from_settings`."""

from __future__ import annotations

import stat

import pytest

from app.config import ConfigError
from app.config import Settings
from app.keyfiles import LOG_KEY_FILE
from app.keyfiles import RECEIPT_KEY_FILE
from app.keyfiles import ensure_log_signing_key
from app.keyfiles import ensure_receipt_signing_key
from app.services.stream_logs import LogKey
from app.ves.signing import public_key_from_seed

DB = {"DATABASE_URL": "postgresql://db.example/sequencer"}


def test_defaults():
    settings = Settings.from_env(DB)
    assert settings.log_signing_key is None
    assert settings.log_origin == "localhost/stateset-sequencer"
    assert settings.log_max_delay_seconds == 5.0 and settings.log_public is False
    assert LogKey.from_settings(settings) is None


def test_every_variable_is_read():
    settings = Settings.from_env({**DB, "LOG_SIGNING_KEY": "ab" * 32, "LOG_ORIGIN": "sequencer.example.com/ves",
                                  "LOG_MAX_DELAY_SECONDS": "2.5", "LOG_PUBLIC": "1"})
    assert settings.log_signing_key == bytes([0xAB]) * 32
    assert (settings.log_origin, settings.log_max_delay_seconds, settings.log_public) == (
        "sequencer.example.com/ves", 2.5, True)
    key = LogKey.from_settings(settings)
    assert key.public_key == public_key_from_seed(bytes([0xAB]) * 32) and key.log_origin == "sequencer.example.com/ves"
    assert "ab" * 32 not in repr(settings) and "ab" * 32 not in repr(key)


def test_base64_seed_is_accepted():
    settings = Settings.from_env({**DB, "LOG_SIGNING_KEY": "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="})
    assert settings.log_signing_key == bytes([0xAB]) * 32


@pytest.mark.parametrize("env, variable", [
    ({"LOG_SIGNING_KEY": "ab" * 31}, "LOG_SIGNING_KEY"),
    ({"LOG_SIGNING_KEY": "not a key"}, "LOG_SIGNING_KEY"),
    ({"LOG_ORIGIN": "https://sequencer.example.com/ves"}, "LOG_ORIGIN"),
    ({"LOG_ORIGIN": "sequencer.example.com/ves/"}, "LOG_ORIGIN"),
    ({"LOG_ORIGIN": "has space/ves"}, "LOG_ORIGIN"),
    ({"LOG_ORIGIN": "a+b/ves"}, "LOG_ORIGIN"),
    ({"LOG_ORIGIN": "sequencer.\u00e9xample/ves"}, "LOG_ORIGIN"),
    ({"LOG_ORIGIN": "x" * 201}, "LOG_ORIGIN"),
    ({"LOG_MAX_DELAY_SECONDS": "-1"}, "LOG_MAX_DELAY_SECONDS"),
    ({"LOG_MAX_DELAY_SECONDS": "soon"}, "LOG_MAX_DELAY_SECONDS"),
    ({"LOG_MAX_DELAY_SECONDS": "3601"}, "LOG_MAX_DELAY_SECONDS"),
    ({"LOG_PUBLIC": "maybe"}, "LOG_PUBLIC"),
    ({"LOG_SIGNING_KEY": "cd" * 32, "VES_SEQUENCER_SIGNING_KEY": "cd" * 32}, "LOG_SIGNING_KEY"),
])
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**DB, **env})


def test_the_embedded_default_keeps_one_log_key_under_var_and_exports_it(tmp_path):
    environ = {}
    first = ensure_log_signing_key(ensure_receipt_signing_key(Settings.from_env({}), environ, var_dir=tmp_path),
                                   environ, var_dir=tmp_path)
    path = tmp_path / LOG_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.log_signing_key.hex() == path.read_text().strip() == environ["LOG_SIGNING_KEY"]
    assert first.log_signing_key != first.sequencer_signing_key
    assert (tmp_path / RECEIPT_KEY_FILE).read_text() != path.read_text()
    assert Settings.from_env(environ).log_signing_key == first.log_signing_key, "workers read it back"
    again = ensure_log_signing_key(Settings.from_env({}), {}, var_dir=tmp_path)
    assert again.log_signing_key == first.log_signing_key


def test_a_given_key_makes_no_file(tmp_path):
    given = Settings.from_env({"LOG_SIGNING_KEY": "ab" * 32})
    environ = {}
    assert ensure_log_signing_key(given, environ, var_dir=tmp_path) is given
    production = Settings.from_env({**DB, "LOG_SIGNING_KEY": "ab" * 32})
    assert ensure_log_signing_key(production, environ, var_dir=tmp_path) is production
    assert environ == {} and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("disabled", [None, "0", "false"])
def test_production_without_a_log_key_refuses_to_start(tmp_path, disabled):
    env = dict(DB) if disabled is None else {**DB, "LOG_DISABLED": disabled}
    with pytest.raises(ConfigError) as raised:
        ensure_log_signing_key(Settings.from_env(env), {}, var_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith("LOG_SIGNING_KEY is not set") and "\n" not in message
    assert "LOG_DISABLED=1" in message and "openssl rand -hex 32" in message
    assert list(tmp_path.iterdir()) == [], "production never falls back to a key file"


def test_production_may_opt_out_explicitly_with_a_warning_and_then_signs_nothing(tmp_path, caplog):
    settings = Settings.from_env({**DB, "LOG_DISABLED": "1"})
    with caplog.at_level("WARNING"):
        result = ensure_log_signing_key(settings, {}, var_dir=tmp_path)
    assert result.log_signing_key is None and LogKey.from_settings(result) is None
    (record,) = [r for r in caplog.records if r.name == "stateset_sequencer.startup"]
    assert record.levelname == "WARNING" and "checkpoints are OFF" in record.getMessage()
    assert list(tmp_path.iterdir()) == []
    embedded = ensure_log_signing_key(Settings.from_env({"LOG_DISABLED": "1"}), {}, var_dir=tmp_path)
    assert embedded.log_signing_key is None and list(tmp_path.iterdir()) == [], "the opt-out holds on the default too"


def test_a_key_and_the_opt_out_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="LOG_DISABLED=1 and LOG_SIGNING_KEY"):
        ensure_log_signing_key(Settings.from_env({**DB, "LOG_DISABLED": "1", "LOG_SIGNING_KEY": "ab" * 32}), {},
                               var_dir=tmp_path)


def test_gunicorn_refuses_to_start_without_a_log_key_when_database_url_is_set():
    import subprocess
    import sys

    from tests.support.servers import ROOT

    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
           "VES_SEQUENCER_SIGNING_KEY": "ab" * 32}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("configuration error: LOG_SIGNING_KEY is not set"), line

@pytest.mark.slow
def test_gunicorn_with_log_disabled_starts_warns_and_serves_no_checkpoint(database_url):
    import json
    import uuid

    import requests

    from tests.support.servers import start_gunicorn

    admin = "log-disabled-admin-key-0123456789"
    env = {"LOG_SIGNING_KEY": "", "LOG_DISABLED": "1", "BOOTSTRAP_ADMIN_API_KEY": admin}
    with start_gunicorn(database_url, env=env, workers=1) as server:
        info = requests.get(server.url + "/api/v1/ves/sequencer", timeout=10).json()
        answer = requests.get(server.url + "/api/v1/ves/log/checkpoint", timeout=10, headers={
            "Authorization": f"ApiKey {admin}"}, params={"tenant_id": str(uuid.uuid4()), "store_id": str(uuid.uuid4())})
        log = server.log_text()
    assert info["log_public_key"] == "" and info["signature_alg"] == "ed25519"
    assert (answer.status_code, answer.json()["code"]) == (503, "LOG_DISABLED")
    warnings = [json.loads(line) for line in log.splitlines()
                if line.startswith("{") and "checkpoints are OFF" in line]
    assert [w["level"] for w in warnings] == ["WARNING"]
