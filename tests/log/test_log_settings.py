"""LOG_SIGNING_KEY, LOG_ORIGIN, LOG_MAX_DELAY_SECONDS, LOG_PUBLIC (app/config.py) and the embedded default's key file
(app/log_key.py)."""

from __future__ import annotations

import stat
import threading

import pytest

from app.config import ConfigError
from app.config import Settings
from app.log_key import DEFAULT_LOG_KEY_FILE
from app.log_key import load_or_create_seed
from app.log_key import log_key
from app.ves.signing import public_key_from_seed

DB = {"DATABASE_URL": "postgresql://db.example/sequencer"}


def test_defaults():
    settings = Settings.from_env(DB)
    assert (settings.log_signing_key, settings.log_signing_key_file) == (None, None)
    assert settings.log_origin == "localhost/stateset-sequencer"
    assert settings.log_max_delay_seconds == 5.0 and settings.log_public is False
    assert log_key(settings) is None


def test_every_variable_is_read():
    settings = Settings.from_env({**DB, "LOG_SIGNING_KEY": "ab" * 32, "LOG_ORIGIN": "sequencer.example.com/ves",
                                  "LOG_MAX_DELAY_SECONDS": "2.5", "LOG_PUBLIC": "1"})
    assert settings.log_signing_key == bytes([0xAB]) * 32
    assert (settings.log_origin, settings.log_max_delay_seconds, settings.log_public) == (
        "sequencer.example.com/ves", 2.5, True)
    key = log_key(settings)
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


def test_the_embedded_default_uses_a_key_file_under_var():
    settings = Settings.from_env({})
    assert settings.log_signing_key is None and settings.log_signing_key_file == str(DEFAULT_LOG_KEY_FILE)
    assert DEFAULT_LOG_KEY_FILE.parent.name == "var"
    assert Settings.from_env({"LOG_SIGNING_KEY": "ab" * 32}).log_signing_key_file is None


def test_the_key_file_is_created_once_with_mode_0600_and_reused(tmp_path):
    path = tmp_path / "var" / "log_signing_key"
    settings = Settings(log_signing_key_file=str(path))
    first = log_key(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert log_key(settings).public_key == first.public_key
    assert len(bytes.fromhex(path.read_text().strip())) == 32


def test_concurrent_first_starts_agree_on_one_key(tmp_path):
    path = tmp_path / "log_signing_key"
    seeds: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        seeds.append(load_or_create_seed(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seeds) == 8 and len(set(seeds)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log_signing_key"]


def test_a_key_file_others_can_read_or_that_is_malformed_is_refused(tmp_path):
    path = tmp_path / "log_signing_key"
    path.write_text("ab" * 32 + "\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="owner only"):
        load_or_create_seed(path)
    path.chmod(0o600)
    assert load_or_create_seed(path) == bytes([0xAB]) * 32
    path.write_text("ab" * 31)
    with pytest.raises(ConfigError, match="32-byte"):
        load_or_create_seed(path)
    path.write_text("not hex")
    with pytest.raises(ConfigError, match="hex"):
        load_or_create_seed(path)
