"""Engine construction. Create engines after gunicorn forks: a pool must never be shared between processes."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from sqlalchemy import create_engine

from app.config import Settings


def make_engine(settings: Settings, pool_size: int | None = None) -> Engine:
    """Return a pooled engine for `settings.database_url`.

    `MAX_DB_CONNECTIONS` is the pool size of one process; the pool never overflows past it, so the deployment
    guide's "connections > 80 % of pool" alert has a fixed denominator. Connections are checked before use, so a
    database restart costs one failed request per stale connection at most, never a wedged worker.
    """
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set (the embedded database must be started first)")
    size = pool_size or settings.max_db_connections
    return create_engine(
        settings.database_url,
        pool_size=size,
        max_overflow=0,
        pool_timeout=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "stateset-sequencer"},
        json_deserializer=load_stored_json,
    )


def _stored_int(text: str):
    value = int(text)
    return value if -(2**53 - 1) <= value <= 2**53 - 1 else float(text)


def load_stored_json(text: str):
    """Parse jsonb read back from PostgreSQL so that RFC 8785 gives the bytes the agent hashed.

    jsonb prints a float such as 1e21 as the integer `1000000000000000000000`; RFC 8785 serialises numbers as IEEE
    doubles, so integers beyond ±(2^53−1) (which an accepted payload can only have carried as floats) are read back
    as floats. Every other number is exact as stored.
    """
    return json.loads(text, parse_int=_stored_int)
