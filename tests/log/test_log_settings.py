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


def test_a_given_key_or_production_makes_no_file(tmp_path):
    given = Settings.from_env({"LOG_SIGNING_KEY": "ab" * 32})
    environ = {}
    assert ensure_log_signing_key(given, environ, var_dir=tmp_path) is given
    production = Settings.from_env(DB)
    assert ensure_log_signing_key(production, environ, var_dir=tmp_path) is production
    assert environ == {} and list(tmp_path.iterdir()) == []
    assert LogKey.from_settings(production) is None
