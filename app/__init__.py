"""StateSet Sequencer: a verifiable, multi-tenant event sequencer (Flask app factory)."""

from __future__ import annotations

import importlib
import re
import sys
import uuid

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from app.config import Settings

__version__ = "0.1.0"

BLUEPRINTS = (
    "app.api.health",
    "app.api.admin",
    "app.api.metrics",
    "app.api.sequencer",
    "app.api.agents",
    "app.api.ingest",
    "app.api.query",
    "app.api.schema_registry",
    "app.api.commitments",
    "app.api.anchoring",
    "app.api.log",
    "app.api.openapi",
    "app.api.legacy_commitments",
    "app.api.legacy_agents",
    "app.api.legacy_schemas",
    "app.api.legacy_admin",
    "app.api.streams",
    "app.console",
)
PUBLIC_LOG_BLUEPRINT = "app.api.log_public"
"""Registered only with LOG_PUBLIC=1 (LOG.md): the served document then lists its paths too."""

DEFAULT_RECURSION_LIMIT = 1000
"""CPython's default. py_ecc (imported by eth_account, web3) raises the process-wide limit to 100000 at import, which
would let a recursive parser overflow the C stack (a SIGSEGV, not a RecursionError) long before the guard fires."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def create_app(settings: "Settings | None" = None) -> "Flask":
    """Build the WSGI app. `settings` defaults to `Settings.from_env()`; the engine is created here, so call this
    after gunicorn forks (never with `preload_app`).

    Flask is imported here, not at package import, so that `app.client` and `app.ves` stay usable without it.
    """
    from flask import Flask
    from flask import g
    from flask import request

    from app import runtime
    from app.api.errors import register_error_handlers
    from app.auth import authenticate
    from app.config import Settings
    from app.errors import TooLarge
    from app.limits import init_limiter
    from app.limits import limit_public_registration
    from app.logging import configure_logging
    from app.metrics import init_metrics

    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size_bytes
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    runtime.init_app(app, settings)

    if settings.trust_proxy_headers:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0, x_port=0)

    @app.before_request
    def _keep_recursion_limit():
        if sys.getrecursionlimit() != DEFAULT_RECURSION_LIMIT:  # a module imported lazily raised it again
            restore_recursion_limit()

    @app.before_request
    def _assign_request_id():
        supplied = request.headers.get("X-Request-ID", "")
        g.request_id = supplied if _REQUEST_ID.match(supplied) else str(uuid.uuid4())

    @app.before_request
    def _reject_oversized_body():
        if request.content_length is not None and request.content_length > settings.max_body_size_bytes:
            raise TooLarge(
                f"Request body is larger than MAX_BODY_SIZE_BYTES ({settings.max_body_size_bytes} bytes)."
            )

    limiter = init_limiter(app, settings)

    @app.before_request
    def _authenticate_unless_public():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        if view is not None and not getattr(view, "is_public", False):
            authenticate()

    @app.after_request
    def _drain_unread_body(response):
        drain_request_body(settings.max_body_size_bytes)
        return response

    @app.after_request
    def _echo_request_id(response):
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        return response

    register_error_handlers(app)
    init_metrics(app, settings, app.extensions["sequencer"].engine)
    register_routes(app, BLUEPRINTS + ((PUBLIC_LOG_BLUEPRINT,) if settings.log_public else ()))
    limit_public_registration(app, limiter, settings)
    restore_recursion_limit()
    return app


def drain_request_body(limit: int) -> None:
    """Read and drop what the view left unread of the request body (at most `limit` bytes), before the answer goes
    out. A view that refuses a request before reading its body (401, 403, 404) would otherwise leave the client
    still sending while gunicorn closes the connection: the client gets a reset instead of the answer."""
    from flask import request

    try:
        stream = request.stream
        left = limit
        while left > 0:
            chunk = stream.read(min(65536, left))
            if not chunk:
                return
            left -= len(chunk)
    except Exception:  # noqa: BLE001 - a malformed or cut body: the answer goes out regardless
        return


def restore_recursion_limit() -> None:
    """Put the process-wide recursion limit back to CPython's default after imports that raise it (py_ecc). The
    web worker never needs deep recursion: request bodies are bounded to MAX_JSON_DEPTH before they are parsed."""
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)


def register_routes(app: "Flask", blueprint_modules: tuple[str, ...]) -> None:
    """The path converters (`id`, and `path` matching line breaks), then every blueprint of `blueprint_modules`
    (each module's `bp`)."""
    from app.api.operations import ResourceIdConverter
    from app.api.operations import TextPathConverter

    app.url_map.converters["id"] = ResourceIdConverter
    app.url_map.converters["path"] = TextPathConverter
    for module_name in blueprint_modules:
        app.register_blueprint(importlib.import_module(module_name).bp)
