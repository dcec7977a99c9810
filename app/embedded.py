"""Embedded PostgreSQL for the zero-configuration quick start (`DATABASE_URL` unset).

Uses the `pgserver` package, which ships PostgreSQL binaries. Data lives under `./var/pgdata` and survives restarts;
the server keeps running after the process that started it exits, and the next start reuses it.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "var" / "pgdata"
DATABASE_NAME = "stateset_sequencer"


def start_embedded_postgres(data_dir: Path = DEFAULT_DATA_DIR, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server and return a SQLAlchemy URL for `database`, creating it if needed."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return database_url_from_server_uri(server.get_uri(), database)


def database_url_from_server_uri(server_uri: str, database: str) -> str:
    """Turn pgserver's `postgresql://postgres:@/postgres?host=<socket dir>` into a psycopg2 URL for `database`."""
    parsed = urllib.parse.urlsplit(server_uri)
    socket_dir = urllib.parse.parse_qs(parsed.query)["host"][0]
    return f"postgresql+psycopg2://postgres@/{database}?host={urllib.parse.quote(socket_dir)}"
