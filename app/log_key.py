"""The transparency-log key (LOG.md): `LOG_SIGNING_KEY`, or on the embedded default a seed generated once.

With `DATABASE_URL` unset and no `LOG_SIGNING_KEY`, `Settings.log_signing_key_file` names `./var/log_signing_key`:
the first process to need the key creates it (64 hex digits, mode 0600, atomically: concurrent gunicorn workers all
end up with the same key) and every later start reuses it. A file readable by group or others is refused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from app.config import ConfigError
from app.config import Settings

DEFAULT_LOG_KEY_FILE = Path(__file__).resolve().parents[1] / "var" / "log_signing_key"
SEED_SIZE = 32


def load_or_create_seed(path: Path) -> bytes:
    """The 32-byte seed stored in `path`, creating the file (and its directory) first if it does not exist.

    Raises ConfigError naming the file if it is unreadable, malformed, or accessible to group or others.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_bytes(SEED_SIZE).hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temporary)
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ConfigError(f"the log signing key file {path} must be readable by its owner only (chmod 600 it)")
    try:
        seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        raise ConfigError(f"the log signing key file {path} does not hold a hex Ed25519 seed") from None
    if len(seed) != SEED_SIZE:
        raise ConfigError(f"the log signing key file {path} does not hold a 32-byte Ed25519 seed")
    return seed


def log_signing_seed(settings: Settings) -> bytes | None:
    """`LOG_SIGNING_KEY`, else the embedded default's key file, else None (checkpoints cannot be signed)."""
    if settings.log_signing_key is not None:
        return settings.log_signing_key
    if settings.log_signing_key_file:
        return load_or_create_seed(Path(settings.log_signing_key_file))
    return None


def log_key(settings: Settings):
    """The deployment's `LogKey` (app.services.stream_logs) for signing checkpoints, or None without a key."""
    from app.services.stream_logs import LogKey

    seed = log_signing_seed(settings)
    return None if seed is None else LogKey(settings.log_origin, seed)
