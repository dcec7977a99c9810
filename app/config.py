"""Settings: one frozen object built from the environment and validated once at start-up.

Variable names and defaults follow the deployment guide (`DATABASE_URL`, `HOST`, `PORT`, ...). A bad value
raises `ConfigError` whose message is one line naming the variable; entry points print it and exit 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import Callable
from typing import Mapping

SCHEMA_VALIDATION_MODES = ("disabled", "warn", "enforce", "required")
_SCHEMA_MODE_ALIASES = {"strict": "enforce"}
_LOG_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
    "off": "CRITICAL",
}
DEFAULT_LOG_ORIGIN = "localhost/stateset-sequencer"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def derived_sequencer_id(name: str) -> str:
    """The stable UUID a sequencer called `name` (SEQUENCER_ID) places in receipts when VES_SEQUENCER_ID is unset:
    UUIDv5 in the URL namespace of `urn:stateset-sequencer:<name>` (the same on every start and every worker)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:stateset-sequencer:{name}"))


DEFAULT_SEQUENCER_ID = derived_sequencer_id("stateset-sequencer")


class ConfigError(ValueError):
    """A configuration variable has a value the sequencer cannot run with. The message names the variable."""


def _secret_field(default=None):
    return field(default=default, repr=False)


@dataclass(frozen=True)
class Settings:
    """Validated runtime configuration. Secrets are excluded from `repr` so they never reach a log line."""

    database_url: str | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    max_db_connections: int = 10
    web_concurrency: int | None = None
    log_level: str = "INFO"
    max_body_size_bytes: int = 10 * 1024 * 1024
    max_events_per_batch: int = 1000
    max_event_payload_size: int = 1024 * 1024
    sequencer_signing_key: bytes | None = _secret_field()
    allow_unsigned_receipts: bool = False
    sequencer_id: str = DEFAULT_SEQUENCER_ID
    db_migrate_on_startup: bool = True
    schema_validation_mode: str = "enforce"
    schema_validation_timeout_ms: int = 1000
    page_max_bytes: int = 4 * 1024 * 1024
    rate_limit_per_minute: int = 12000
    rate_limit_max_entries: int = 10000
    rate_limit_window_seconds: int = 60
    rate_limit_storage_uri: str = "memory://"
    bootstrap_admin_api_key: str | None = _secret_field()
    trust_proxy_headers: bool = False
    require_agent_signatures: bool = False
    long_poll_max_seconds: float = 30.0
    stream_lock_timeout_ms: int = 4000
    web_threads: int = 8
    long_poll_slots_per_worker: int = 3
    database_listen_url: str | None = _secret_field()
    database_read_url: str | None = _secret_field()
    db_connect_timeout_seconds: int = 2
    db_statement_timeout_ms: int = 5000
    db_pool_timeout_seconds: float = 2.0
    metrics_require_auth: bool = False
    console_enabled: bool = True
    l2_rpc_url: str | None = None
    set_registry_address: str | None = None
    sequencer_private_key: str | None = _secret_field()
    l2_chain_id: int = 84532001
    anchor_max_events: int = 1024
    anchor_request_timeout_seconds: float = 8.0
    public_agent_registration_enabled: bool = False
    public_agent_registration_rate_limit_per_minute: int = 30
    public_agent_registration_window_seconds: int = 60
    log_signing_key: bytes | None = _secret_field()
    log_origin: str = DEFAULT_LOG_ORIGIN
    log_max_delay_seconds: float = 5.0
    log_public: bool = False
    api_key_cache_seconds: float = 10.0
    log_disabled: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read and validate every variable; raise `ConfigError` naming the first bad one."""
        env = _Env(os.environ if environ is None else environ)
        database_url = env.get("DATABASE_URL", _database_url)
        return cls(
            database_url=database_url,
            host=env.get("HOST", _nonempty) or default_host(database_url),
            port=env.int("PORT", 8080, minimum=1, maximum=65535),
            max_db_connections=env.int("MAX_DB_CONNECTIONS", 10, minimum=1, maximum=1000),
            web_concurrency=env.int("WEB_CONCURRENCY", 0, minimum=0, maximum=256) or None,
            log_level=_log_level(env),
            max_body_size_bytes=env.int("MAX_BODY_SIZE_BYTES", 10 * 1024 * 1024, minimum=1024),
            max_events_per_batch=env.int("MAX_EVENTS_PER_BATCH", 1000, minimum=1),
            max_event_payload_size=env.int("MAX_EVENT_PAYLOAD_SIZE", 1024 * 1024, minimum=1),
            sequencer_signing_key=env.get("VES_SEQUENCER_SIGNING_KEY", _ed25519_seed),
            allow_unsigned_receipts=env.bool("ALLOW_UNSIGNED_RECEIPTS", False),
            sequencer_id=_sequencer_id(env),
            db_migrate_on_startup=env.bool("DB_MIGRATE_ON_STARTUP", True),
            schema_validation_mode=env.get("SCHEMA_VALIDATION_MODE", _schema_mode) or "enforce",
            schema_validation_timeout_ms=env.int("SCHEMA_VALIDATION_TIMEOUT_MS", 1000, minimum=1, maximum=60000),
            page_max_bytes=env.int("PAGE_MAX_BYTES", 4 * 1024 * 1024, minimum=64 * 1024),
            rate_limit_per_minute=env.int("RATE_LIMIT_PER_MINUTE", 12000, minimum=0),
            rate_limit_max_entries=env.int("RATE_LIMIT_MAX_ENTRIES", 10000, minimum=1),
            rate_limit_window_seconds=env.int("RATE_LIMIT_WINDOW_SECONDS", 60, minimum=1, maximum=86400),
            rate_limit_storage_uri=env.get("RATE_LIMIT_STORAGE_URI", _storage_uri) or "memory://",
            bootstrap_admin_api_key=env.get("BOOTSTRAP_ADMIN_API_KEY", _bootstrap_key),
            trust_proxy_headers=env.bool("TRUST_PROXY_HEADERS", False),
            require_agent_signatures=env.bool("REQUIRE_AGENT_SIGNATURES", False),
            long_poll_max_seconds=env.float("LONG_POLL_MAX_SECONDS", 30.0, minimum=0.0, maximum=300.0),
            **_worker_and_database_bounds(env),
            metrics_require_auth=env.bool("METRICS_REQUIRE_AUTH", False),
            console_enabled=env.bool("CONSOLE_ENABLED", True),
            l2_rpc_url=env.get("L2_RPC_URL", _http_url),
            set_registry_address=env.get("SET_REGISTRY_ADDRESS", _eth_address),
            sequencer_private_key=env.get("SEQUENCER_PRIVATE_KEY", _eth_private_key),
            l2_chain_id=env.int("L2_CHAIN_ID", 84532001, minimum=1),
            anchor_max_events=env.int("ANCHOR_MAX_EVENTS", 1024, minimum=1, maximum=1 << 20),
            anchor_request_timeout_seconds=env.float("ANCHOR_REQUEST_TIMEOUT_SECONDS", 8.0, minimum=0.5,
                                                     maximum=60.0),
            public_agent_registration_enabled=env.bool("PUBLIC_AGENT_REGISTRATION_ENABLED", False),
            public_agent_registration_rate_limit_per_minute=env.int(
                "PUBLIC_AGENT_REGISTRATION_RATE_LIMIT_PER_MINUTE", 30, minimum=1, maximum=100_000),
            public_agent_registration_window_seconds=env.int("PUBLIC_AGENT_REGISTRATION_WINDOW_SECONDS", 60,
                                                             minimum=1, maximum=86400),
            **_log_settings(env),
            api_key_cache_seconds=env.float("API_KEY_CACHE_SECONDS", 10.0, minimum=0.0, maximum=3600.0),
        )

    def replace(self, **changes) -> "Settings":
        """Return a copy with `changes` applied (tests build variants this way)."""
        return dataclasses.replace(self, **changes)

    @property
    def listen_url(self) -> str | None:
        """Where the per-worker LISTEN connection goes: `DATABASE_LISTEN_URL`, else `DATABASE_URL`."""
        return self.database_listen_url or self.database_url

    @property
    def db_response_timeout_seconds(self) -> float:
        """Longest a worker waits for any one answer of the database before it drops the connection: the
        server-side statement timeout plus one second, so a live server always answers first."""
        return self.db_statement_timeout_ms / 1000 + 1.0

    @property
    def anchoring_configured(self) -> bool:
        return bool(self.l2_rpc_url and self.set_registry_address and self.sequencer_private_key)


def default_host(database_url: str | None) -> str:
    """`HOST` when unset: loopback for the embedded development database, every interface for a real deployment."""
    return "0.0.0.0" if database_url else "127.0.0.1"


class _Env:
    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def get(self, name: str, parse: Callable[[str, str], object]):
        value = self.raw(name)
        return None if value is None else parse(name, value)

    def int(self, name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
        _check_range(name, number, minimum, maximum)
        return number

    def float(self, name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if number != number:
            raise ConfigError(f"{name} must be a number, got {value!r}")
        _check_range(name, number, minimum, maximum)
        return number

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {value!r}")


def _worker_and_database_bounds(env: _Env) -> dict:
    """Threads, long-poll slots and every bound on a database wait, checked against each other.

    WEB_THREADS defaults to 8 but never more than MAX_DB_CONNECTIONS (each thread may need a connection at once);
    LONG_POLL_SLOTS_PER_WORKER defaults to fewer than half the threads and must leave at least one thread free.
    A lock wait must end before the statement that waits is cancelled, so STREAM_LOCK_TIMEOUT_MS must be below
    DB_STATEMENT_TIMEOUT_MS.
    """
    pool = env.int("MAX_DB_CONNECTIONS", 10, minimum=1, maximum=1000)
    threads = env.int("WEB_THREADS", min(8, pool), minimum=1, maximum=256)
    if threads > pool:
        raise ConfigError(f"WEB_THREADS must be at most MAX_DB_CONNECTIONS ({pool}): every thread may need a "
                          f"database connection at once; got {threads}")
    slots = env.int("LONG_POLL_SLOTS_PER_WORKER", (threads - 1) // 2, minimum=0, maximum=max(0, threads - 1))
    statement_ms = env.int("DB_STATEMENT_TIMEOUT_MS", 5000, minimum=100, maximum=600000)
    lock_ms = env.int("STREAM_LOCK_TIMEOUT_MS", 4000, minimum=100, maximum=600000)
    if lock_ms >= statement_ms:
        raise ConfigError(f"STREAM_LOCK_TIMEOUT_MS must be below DB_STATEMENT_TIMEOUT_MS ({statement_ms}), "
                          f"got {lock_ms}")
    return {
        "stream_lock_timeout_ms": lock_ms,
        "web_threads": threads,
        "long_poll_slots_per_worker": slots,
        "database_listen_url": env.get("DATABASE_LISTEN_URL", _database_url),
        "database_read_url": _read_url(env),
        "db_connect_timeout_seconds": env.int("DB_CONNECT_TIMEOUT_SECONDS", 2, minimum=2, maximum=60),
        "db_statement_timeout_ms": statement_ms,
        "db_pool_timeout_seconds": env.float("DB_POOL_TIMEOUT_SECONDS", 2.0, minimum=0.0, maximum=60.0),
    }


def _read_url(env: _Env) -> str | None:
    """DATABASE_READ_URL: a streaming replica for reads of the log; only beside a DATABASE_URL (the primary)."""
    url = env.get("DATABASE_READ_URL", _database_url)
    if url and not env.raw("DATABASE_URL"):
        raise ConfigError("DATABASE_READ_URL is set but DATABASE_URL is not: a read replica needs its primary")
    return url


def _check_range(name, number, minimum, maximum):
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {number}")


def _sequencer_id(env: "_Env") -> str:
    """VES_SEQUENCER_ID (a UUID, as the original's), else one derived from SEQUENCER_ID (default
    "stateset-sequencer"), so receipts stay attributable across restarts."""
    explicit = env.get("VES_SEQUENCER_ID", _uuid_text)
    if explicit:
        return explicit
    return derived_sequencer_id(env.get("SEQUENCER_ID", _nonempty) or "stateset-sequencer")


def _uuid_text(name: str, value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ConfigError(f"{name} must be a UUID (8-4-4-4-12 hex digits)") from None
    if str(parsed) != value.lower():
        raise ConfigError(f"{name} must be a UUID (8-4-4-4-12 hex digits)")
    return str(parsed)


def _nonempty(name: str, value: str) -> str:
    return value


def _database_url(name: str, value: str) -> str:
    """Accept postgres:// and postgresql:// URLs; SQLAlchemy gets the psycopg2 driver explicitly.

    libpq's multi-host form `postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write` (a Patroni
    cluster, docs/DEPLOYMENT.md) is rewritten to SQLAlchemy's spelling of the same thing,
    `...@/db?host=h1:5432&host=h2:5432&target_session_attrs=read-write`, which SQLAlchemy hands to libpq as
    `host=h1,h2 port=5432,5432`: libpq then tries the hosts in order until one accepts the session attributes.
    """
    match = re.match(r"^(postgres|postgresql)(\+psycopg2)?://", value)
    if not match:
        raise ConfigError(f"{name} must be a postgres:// or postgresql:// URL")
    return "postgresql+psycopg2://" + _multi_host_as_query(name, value[match.end():])


def _multi_host_as_query(name: str, rest: str) -> str:
    """`[userinfo@]h1[:p1],h2[:p2][/db][?query]` -> `[userinfo@]/db?host=h1:p1&host=h2:p2[&query]`; any other
    authority is returned unchanged."""
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostlist = authority.rpartition("@")
    if "," not in hostlist:
        return rest
    hosts = hostlist.split(",")
    for host in hosts:
        if not re.fullmatch(r"[A-Za-z0-9._%-]+(:[0-9]{1,5})?", host):
            raise ConfigError(f"{name} lists several hosts; each must be host or host:port (names or IPv4 "
                              f"addresses; for IPv6 use host names), got {host!r}")
    path, question, query = tail.partition("?")
    host_params = "&".join(f"host={host}" for host in hosts)
    return f"{userinfo}{at}{path or '/'}?{host_params}" + (f"&{query}" if query else "")


def _schema_mode(name: str, value: str) -> str:
    mode = _SCHEMA_MODE_ALIASES.get(value.lower(), value.lower())
    if mode not in SCHEMA_VALIDATION_MODES:
        raise ConfigError(f"{name} must be one of disabled, warn, enforce (alias strict), required; got {value!r}")
    return mode


def _storage_uri(name: str, value: str) -> str:
    if not re.match(r"^(memory|redis|rediss|redis\+unix|redis\+sentinel|redis\+cluster|memcached)://", value):
        raise ConfigError(f"{name} must be memory://, redis://host:port or another flask-limiter storage URI")
    return value


def _http_url(name: str, value: str) -> str:
    if not re.match(r"^(https?|wss?)://\S+$", value):
        raise ConfigError(f"{name} must be an http(s):// or ws(s):// URL")
    return value


def _eth_address(name: str, value: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ConfigError(f"{name} must be a 0x-prefixed 20-byte hex address")
    return value


def _eth_private_key(name: str, value: str) -> str:
    hexpart = value[2:] if value.lower().startswith("0x") else value
    if not re.fullmatch(r"[0-9a-fA-F]{64}", hexpart):
        raise ConfigError(f"{name} must be a 32-byte hex private key")
    return "0x" + hexpart.lower()


def _bootstrap_key(name: str, value: str) -> str:
    if len(value) < 16:
        raise ConfigError(f"{name} must be at least 16 characters long")
    return value


def _ed25519_seed(name: str, value: str) -> bytes:
    from app.ves.encoding import parse_key_material
    from app.ves.errors import VesError

    try:
        return parse_key_material(value, 32, name)
    except VesError:
        raise ConfigError(f"{name} must be a 32-byte Ed25519 seed (64 hex digits or base64)") from None


def _log_origin(name: str, value: str) -> str:
    if (not re.fullmatch(r"[\x21-\x7e]{1,200}", value) or "+" in value or "://" in value or value.endswith("/")):
        raise ConfigError(f"{name} must be a schema-less URL naming this deployment, e.g. sequencer.example.com/ves "
                          "(printable ASCII, at most 200 characters, no spaces, '+', scheme or trailing '/')")
    return value


def _log_settings(env: _Env) -> dict:
    """LOG_* of LOG.md. The log key is never the receipt key; without it on the embedded default, the server makes
    one under ./var/ (`app.keyfiles.ensure_log_signing_key`)."""
    seed = env.get("LOG_SIGNING_KEY", _ed25519_seed)
    receipt_seed = env.get("VES_SEQUENCER_SIGNING_KEY", _ed25519_seed)
    if seed is not None and seed == receipt_seed:
        raise ConfigError("LOG_SIGNING_KEY must differ from VES_SEQUENCER_SIGNING_KEY (the log has a key of its own)")
    return {
        "log_signing_key": seed,
        "log_origin": env.get("LOG_ORIGIN", _log_origin) or DEFAULT_LOG_ORIGIN,
        "log_max_delay_seconds": env.float("LOG_MAX_DELAY_SECONDS", 5.0, minimum=0.0, maximum=3600.0),
        "log_public": env.bool("LOG_PUBLIC", False),
        "log_disabled": env.bool("LOG_DISABLED", False),
    }


def _log_level(env: _Env) -> str:
    """LOG_LEVEL wins; else RUST_LOG's leading default directive (`info,stateset_sequencer=debug` -> INFO)."""
    explicit = env.raw("LOG_LEVEL")
    if explicit is not None:
        level = _LOG_LEVELS.get(explicit.lower())
        if level is None:
            raise ConfigError(f"LOG_LEVEL must be one of trace, debug, info, warn, error; got {explicit!r}")
        return level
    rust_log = env.raw("RUST_LOG")
    if rust_log is None:
        return "INFO"
    for directive in rust_log.split(","):
        directive = directive.strip()
        if directive and "=" not in directive:
            level = _LOG_LEVELS.get(directive.lower())
            if level is None:
                raise ConfigError(f"RUST_LOG has an unknown default level {directive!r}")
            return level
    return "INFO"
