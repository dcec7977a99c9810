"""Seed files under ./var/ (`load_or_create_seed`) and the server's receipt-key rule (`ensure_receipt_signing_key`)."""

from __future__ import annotations

import multiprocessing
import os
import stat

import pytest

from app.config import ConfigError
from app.config import Settings
from app.keyfiles import RECEIPT_KEY_FILE
from app.keyfiles import KeyFileError
from app.keyfiles import ensure_receipt_signing_key
from app.keyfiles import load_or_create_seed

PRODUCTION_URL = "postgres://sequencer:pw@db:5432/stateset_sequencer"


def test_a_new_seed_is_random_private_hex_and_stable(tmp_path):
    path = tmp_path / "var" / "some-key"
    first = load_or_create_seed(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.hex() + "\n"
    assert load_or_create_seed(path) == first
    assert load_or_create_seed(tmp_path / "var" / "other-key") != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["other-key", "some-key"], "no staging files left"


def test_other_sizes(tmp_path):
    assert len(load_or_create_seed(tmp_path / "k64", size=64)) == 64


def _race(path, queue):
    queue.put(load_or_create_seed(path).hex())


def test_concurrent_first_starts_agree_on_one_seed(tmp_path):
    path = tmp_path / "raced-key"
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    racers = [context.Process(target=_race, args=(path, queue)) for _ in range(6)]
    for racer in racers:
        racer.start()
    seeds = {queue.get(timeout=60) for _ in racers}
    for racer in racers:
        racer.join(timeout=60)
    assert seeds == {path.read_text().strip()}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_a_key_file_others_can_read_is_refused(tmp_path, mode):
    path = tmp_path / "key"
    load_or_create_seed(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as raised:
        load_or_create_seed(path)
    assert str(path) in str(raised.value) and "chmod 600" in str(raised.value)


@pytest.mark.parametrize("content", ["", "zz" * 32, "ab" * 31, "ab" * 33, "ab" * 32 + "\nab"])
def test_a_key_file_without_a_seed_is_refused_not_replaced(tmp_path, content):
    path = tmp_path / "key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content.encode())
    os.close(fd)
    with pytest.raises(KeyFileError) as raised:
        load_or_create_seed(path)
    assert str(path) in str(raised.value)
    assert path.read_text() == content


def test_a_symlinked_key_file_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    load_or_create_seed(target)
    (tmp_path / "key").symlink_to(target)
    with pytest.raises(KeyFileError):
        load_or_create_seed(tmp_path / "key")


def test_a_given_key_is_used_and_no_file_is_made(tmp_path):
    settings = Settings.from_env({"VES_SEQUENCER_SIGNING_KEY": "cd" * 32})
    environ = {}
    assert ensure_receipt_signing_key(settings, environ, var_dir=tmp_path) is settings
    assert environ == {} and list(tmp_path.iterdir()) == []


def test_the_embedded_default_keeps_one_key_under_var_and_exports_it(tmp_path):
    environ = {}
    first = ensure_receipt_signing_key(Settings.from_env({}), environ, var_dir=tmp_path)
    seed = (tmp_path / RECEIPT_KEY_FILE).read_text().strip()
    assert first.sequencer_signing_key.hex() == seed == environ["VES_SEQUENCER_SIGNING_KEY"]
    assert Settings.from_env(environ).sequencer_signing_key == first.sequencer_signing_key, "workers read it back"
    again = ensure_receipt_signing_key(Settings.from_env({}), {}, var_dir=tmp_path)
    assert again.sequencer_signing_key == first.sequencer_signing_key


@pytest.mark.parametrize("allow", [None, "0", "false"])
def test_production_without_a_key_refuses_to_start(tmp_path, allow):
    env = {"DATABASE_URL": PRODUCTION_URL}
    if allow is not None:
        env["ALLOW_UNSIGNED_RECEIPTS"] = allow
    with pytest.raises(ConfigError) as raised:
        ensure_receipt_signing_key(Settings.from_env(env), {}, var_dir=tmp_path)
    message = str(raised.value)
    assert message.startswith("VES_SEQUENCER_SIGNING_KEY is not set") and "\n" not in message
    assert "ALLOW_UNSIGNED_RECEIPTS=1" in message and "openssl rand -hex 32" in message
    assert list(tmp_path.iterdir()) == [], "production never falls back to a key file"


def test_production_may_opt_out_explicitly_with_a_warning(tmp_path, caplog):
    settings = Settings.from_env({"DATABASE_URL": PRODUCTION_URL, "ALLOW_UNSIGNED_RECEIPTS": "1"})
    with caplog.at_level("WARNING"):
        result = ensure_receipt_signing_key(settings, {}, var_dir=tmp_path)
    assert result.sequencer_signing_key is None
    (record,) = [r for r in caplog.records if r.name == "stateset_sequencer.startup"]
    assert record.levelname == "WARNING" and "receipt signing is OFF" in record.getMessage()
    assert list(tmp_path.iterdir()) == []
