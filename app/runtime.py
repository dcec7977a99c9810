"""Per-process runtime state attached to the Flask app: settings, engines (primary, optional read replica), receipt
signer, schema validator, long polls.

`current()` is how blueprints reach it; nothing else keeps module-level state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask
from flask import current_app
from sqlalchemy import Engine

from app.config import Settings
from app.db.engine import make_engine
from app.db.engine import make_read_engine

if TYPE_CHECKING:
    from app.db.key_cache import NotifiedCache
    from app.services.ingest import ReceiptSigner
    from app.services.query import LongPolls
    from app.services.replica import ReadDatabases
    from app.services.schemas import SchemaValidator
    from app.services.stream_logs import LogKey


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    signer: "ReceiptSigner"
    schemas: "SchemaValidator"
    long_polls: "LongPolls | None" = None
    read_engine: Engine | None = None
    api_keys: "NotifiedCache | None" = None
    """API key records by key hash, dropped at once on any change to api_keys (app/db/key_cache.py)."""

    @functools.cached_property
    def reads(self) -> "ReadDatabases":
        """Where reads of the log may go: the primary, and the read replica when DATABASE_READ_URL is set."""
        from app.services.replica import ReadDatabases

        return ReadDatabases(self.engine, self.read_engine)

    @functools.cached_property
    def log_key(self) -> "LogKey | None":
        """The transparency-log key (LOG_SIGNING_KEY under LOG_ORIGIN), or None when checkpoints are disabled."""
        from app.services.stream_logs import LogKey

        return LogKey.from_settings(self.settings)

    def close(self) -> None:
        """Stop the listener thread and close every pooled connection (tests; a worker just exits)."""
        if self.long_polls is not None:
            self.long_polls.close()
        self.engine.dispose()
        if self.read_engine is not None:
            self.read_engine.dispose()


def init_app(app: Flask, settings: Settings) -> Runtime:
    from app.db.key_cache import API_KEYS_ACK_CHANNEL
    from app.db.key_cache import API_KEYS_CHANNEL
    from app.db.key_cache import NotifiedCache
    from app.db.notify import make_listener
    from app.services.ingest import ReceiptSigner
    from app.services.query import LongPolls
    from app.services.schemas import SchemaValidator

    engine = make_engine(settings)
    listener = make_listener(settings, engine)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        signer=ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key),
        schemas=SchemaValidator(engine, settings.schema_validation_mode, settings.schema_validation_timeout_ms / 1000),
        long_polls=LongPolls(listener, settings.long_poll_slots_per_worker),
        read_engine=make_read_engine(settings),
        api_keys=NotifiedCache(listener, API_KEYS_CHANNEL, settings.api_key_cache_seconds,
                               acknowledge_on=API_KEYS_ACK_CHANNEL),
    )
    app.extensions["sequencer"] = runtime
    return runtime


def current() -> Runtime:
    return current_app.extensions["sequencer"]
