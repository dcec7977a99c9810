"""Secret seeds kept in files under `./var/` for the zero-configuration development default, and the server's
receipt-key and log-key rules (`ensure_receipt_signing_key`, `ensure_log_signing_key`).

A seed file holds one line: the seed as lowercase hex. It is created once, atomically and with mode 0600, and read
back unchanged on every later start, so keys made for `./bin/run` survive restarts. Production deployments pass
their keys in environment variables instead; these files are never consulted when a key is given.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import MutableMapping
from pathlib import Path

from app.config import ConfigError
from app.config import Settings

VAR_DIR = Path(__file__).resolve().parents[1] / "var"
RECEIPT_KEY_FILE = "receipt-signing-key"
LOG_KEY_FILE = "log-signing-key"

log = logging.getLogger("stateset_sequencer.startup")


class KeyFileError(ConfigError):
    """A seed file exists but cannot be used (wrong length, not hex, readable by others). Names the file."""


def load_or_create_seed(path: Path, size: int = 32) -> bytes:
    """Return the `size`-byte seed stored at `path`, creating it first (random, mode 0600) if it does not exist.

    Concurrent callers agree on one seed: the file is written under a private temporary name and hard-linked into
    place, which fails for every caller but the first. An existing file is never rewritten; one with group or other
    permission bits, or with content that is not `size` bytes of hex, raises `KeyFileError`, as does a file or
    directory that cannot be read or written.
    """
    path = Path(path)
    try:
        try:
            return _read_seed(path, size)
        except FileNotFoundError:
            return _create_seed(path, size)
    except KeyFileError:
        raise
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read or create the key file ({error.strerror})") from None


def _create_seed(path: Path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(secrets.token_bytes(size).hex() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staged, path)
        except FileExistsError:
            pass
    finally:
        staged.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return _read_seed(path, size)


def _read_seed(path: Path, size: int) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "r", encoding="ascii", errors="replace") as handle:
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise KeyFileError(f"{path} has mode {mode:04o}; a key file must be readable by its owner only "
                               f"(chmod 600 {path})")
        text = handle.read().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != size:
        raise KeyFileError(f"{path} does not hold a {size}-byte hex seed; move it away to generate a new key")
    return seed


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def ensure_receipt_signing_key(settings: Settings, environ: MutableMapping[str, str] | None = None,
                               var_dir: Path = VAR_DIR) -> Settings:
    """The server's rule for the receipt key, applied once in the gunicorn master before workers fork.

    - `VES_SEQUENCER_SIGNING_KEY` set: used as given.
    - `DATABASE_URL` unset (the embedded development default): the seed in `var_dir/receipt-signing-key`, made on
      the first start and reused on every later one; exported as `VES_SEQUENCER_SIGNING_KEY` for the workers.
    - `DATABASE_URL` set without a key: `ConfigError` (the server refuses to start), unless
      `ALLOW_UNSIGNED_RECEIPTS=1`, which starts with a warning and receipts carrying `signature_alg: "none"`.
    """
    environ = os.environ if environ is None else environ
    if settings.sequencer_signing_key is not None:
        return settings
    if settings.database_url is None:
        seed = load_or_create_seed(var_dir / RECEIPT_KEY_FILE)
        environ["VES_SEQUENCER_SIGNING_KEY"] = seed.hex()
        return settings.replace(sequencer_signing_key=seed)
    if settings.allow_unsigned_receipts:
        from app.logging import configure_logging

        configure_logging(settings.log_level)
        log.warning("receipt signing is OFF: VES_SEQUENCER_SIGNING_KEY is not set and ALLOW_UNSIGNED_RECEIPTS=1; "
                    "receipts carry signature_alg \"none\", no verifier can check them, and events sequenced now "
                    "stay unsigned for good")
        return settings
    raise ConfigError("VES_SEQUENCER_SIGNING_KEY is not set: with DATABASE_URL given the sequencer needs a 32-byte "
                      "Ed25519 seed to sign receipts (generate one with `openssl rand -hex 32` and keep it secret), "
                      "or set ALLOW_UNSIGNED_RECEIPTS=1 to run with unsigned receipts")


def ensure_log_signing_key(settings: Settings, environ: MutableMapping[str, str] | None = None,
                           var_dir: Path = VAR_DIR) -> Settings:
    """The rule for the transparency-log key (LOG.md), applied with the receipt key's in the gunicorn master.

    - `LOG_SIGNING_KEY` set: used as given (config refuses it equal to the receipt key, or with `LOG_DISABLED=1`).
    - `DATABASE_URL` unset (the embedded development default): the seed in `var_dir/log-signing-key`, made on the
      first start and reused; exported as `LOG_SIGNING_KEY` for the workers.
    - `DATABASE_URL` set without a key: `ConfigError` (the server refuses to start), unless `LOG_DISABLED=1`, which
      starts with a warning: logs are still built in every ingest, but no checkpoint is signed or served (503
      `LOG_DISABLED`) until a key is set.
    """
    environ = os.environ if environ is None else environ
    if settings.log_signing_key is not None:
        if settings.log_disabled:
            raise ConfigError("LOG_DISABLED=1 and LOG_SIGNING_KEY are both set: unset one (LOG_DISABLED=1 turns "
                              "checkpoints off, a key turns them on)")
        return settings
    if settings.log_disabled:
        from app.logging import configure_logging

        configure_logging(settings.log_level)
        log.warning("transparency-log checkpoints are OFF: LOG_DISABLED=1; logs are still built, but no checkpoint "
                    "is signed or served until LOG_SIGNING_KEY is set")
        return settings
    if settings.database_url is None:
        seed = load_or_create_seed(var_dir / LOG_KEY_FILE)
        environ["LOG_SIGNING_KEY"] = seed.hex()
        return settings.replace(log_signing_key=seed)
    raise ConfigError("LOG_SIGNING_KEY is not set: with DATABASE_URL given the sequencer needs a 32-byte Ed25519 "
                      "seed of its own (not the receipt key) to sign transparency-log checkpoints (generate one with "
                      "`openssl rand -hex 32` and keep it secret), or set LOG_DISABLED=1 to serve no checkpoints")
