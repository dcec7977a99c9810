"""Rate limiting with flask-limiter: `RATE_LIMIT_PER_MINUTE` per API key, scaled to `RATE_LIMIT_WINDOW_SECONDS`.

The limit is keyed by API key (a hash of the presented key, so unknown keys are limited too) and falls back to the
client address for requests without a key. A key's own `rate_limit` (per minute) overrides the default. Storage is
`RATE_LIMIT_STORAGE_URI`; `memory://` keeps at most `RATE_LIMIT_MAX_ENTRIES` clients per worker, `redis://` shares
counters across workers and replicas. Operations declared `rate_limited=False` (probes, metrics, the OpenAPI
document) are exempt.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from flask_limiter import HeaderNames
from flask_limiter import Limiter
from limits.storage import MemoryStorage
from sqlalchemy.exc import SQLAlchemyError

from app.auth import authenticate
from app.auth import presented_key
from app.config import Settings
from app.errors import SequencerError

class BoundedMemoryStorage(MemoryStorage):
    """In-memory counters for at most `max_entries` rate-limit keys; beyond that the windows that started first are
    forgotten (their clients start a fresh window), so memory stays bounded under a flood of distinct keys."""

    STORAGE_SCHEME = ["bounded-memory"]

    def __init__(self, uri: str | None = None, max_entries: int = 10000, **options):
        super().__init__(uri, **options)
        self.max_entries = int(max_entries)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        value = super().incr(key, expiry, amount)
        if len(self.expirations) > self.max_entries:
            self._evict()
        return value

    def _evict(self) -> None:
        keep = max(1, int(self.max_entries * 0.9))
        for stale in sorted(self.expirations, key=self.expirations.__getitem__)[: len(self.expirations) - keep]:
            self.storage.pop(stale, None)
            self.expirations.pop(stale, None)
            self.locks.pop(stale, None)


def per_window(per_minute: int, window_seconds: int) -> int:
    return max(1, math.ceil(per_minute * window_seconds / 60))


def _rate_limit_key() -> str:
    key = presented_key()
    if key is not None:
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return "addr:" + (request.remote_addr or "unknown")


def init_limiter(app: Flask, settings: Settings) -> Limiter | None:
    if settings.rate_limit_per_minute <= 0:
        return None
    window = settings.rate_limit_window_seconds

    def limit_for_caller() -> str:
        per_minute = settings.rate_limit_per_minute
        if presented_key() is not None:
            try:
                override = authenticate().rate_limit
            except (SequencerError, SQLAlchemyError):  # an unknown key, or the database is down: the default
                override = None
            if override:
                per_minute = override
        return f"{per_window(per_minute, window)} per {window} seconds"

    app.after_request(_header_normaliser(window))
    return _limiter(app, settings, [limit_for_caller])


def _limiter(app: Flask, settings: Settings, default_limits: list) -> Limiter:
    uri = settings.rate_limit_storage_uri
    options = {}
    if uri.startswith("memory://"):
        uri = "bounded-memory://"
        options = {"max_entries": settings.rate_limit_max_entries}
    limiter = Limiter(
        key_func=_rate_limit_key,
        app=app,
        default_limits=default_limits,
        default_limits_exempt_when=_exempt,
        storage_uri=uri,
        storage_options=options,
        strategy="fixed-window",
        headers_enabled=True,
        header_name_mapping={
            HeaderNames.LIMIT: "RateLimit-Limit",
            HeaderNames.REMAINING: "RateLimit-Remaining",
            HeaderNames.RESET: "RateLimit-Reset",
            HeaderNames.RETRY_AFTER: "Retry-After",
        },
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    return limiter


def _exempt() -> bool:
    """Unrouted requests and the operations declared `rate_limited=False` (probes, metrics, the document)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    operation = getattr(view, "operation", None)
    return operation is None or not operation.rate_limited


def _header_normaliser(window_seconds: int):
    def normalise(response):
        """`RateLimit-Reset` as delta-seconds within the window (IETF draft), `Retry-After` only on 429/503 or as the
        view set it (a long poll answered at once without a slot)."""
        reset = response.headers.get("RateLimit-Reset")
        if reset is not None and reset.isdigit() and int(reset) > 1_000_000_000:
            response.headers["RateLimit-Reset"] = str(min(window_seconds, max(0, int(reset) - int(time.time()))))
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
            if "Retry-After" in g.get("view_headers", {}):
                response.headers["Retry-After"] = g.view_headers["Retry-After"]
        elif response.status_code == 429 and "Retry-After" in response.headers:
            retry = response.headers["Retry-After"]
            if retry.lstrip("-").isdigit():
                response.headers["Retry-After"] = str(min(window_seconds, max(1, int(retry))))
        return response

    return normalise


REGISTRATION_ENDPOINT = "legacy_agents.register_agent"


def limit_public_registration(app: Flask, limiter: Limiter | None, settings: Settings) -> None:
    """`POST /api/v1/agents/register`: at most PUBLIC_AGENT_REGISTRATION_RATE_LIMIT_PER_MINUTE per client address
    (scaled to PUBLIC_AGENT_REGISTRATION_WINDOW_SECONDS), on top of the default limit; a refused attempt is audited.
    Also with RATE_LIMIT_PER_MINUTE=0 (no default limit): then a limiter is made for this route alone."""
    view = app.view_functions.get(REGISTRATION_ENDPOINT)
    if view is None:
        return
    if limiter is None:
        limiter = _limiter(app, settings, [])
    window = settings.public_agent_registration_window_seconds
    amount = per_window(settings.public_agent_registration_rate_limit_per_minute, window)

    def audit_breach(_limit) -> None:
        from app import runtime
        from app.services import agents

        client = agents.ClientInfo(request.remote_addr, request.headers.get("User-Agent"), g.get("request_id"))
        agents.record_refusal(runtime.current().engine, client, "RATE_LIMIT_EXCEEDED")

    app.view_functions[REGISTRATION_ENDPOINT] = limiter.limit(
        f"{amount} per {window} seconds", key_func=lambda: "register:" + (request.remote_addr or "unknown"),
        on_breach=audit_breach)(view)
