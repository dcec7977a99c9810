"""The operator console (`/console`): static files only, served with a strict Content-Security-Policy.

The page holds no secret and no data of its own: it asks for an API key, keeps it in `sessionStorage`, and calls the
public HTTP API with it, so a key sees in the console exactly what its scope allows through the API (docs/CONSOLE.md).
Files are read from `app/console/static/`; a name outside that directory's own files is a 404.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint
from flask import Response
from flask import redirect

from app import runtime
from app.api import wire
from app.api.operations import operation
from app.api.operations import path
from app.auth import public
from app.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""No inline script or style, no eval, no framing; the page may talk only to its own origin."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Cross-Origin-Opener-Policy": "same-origin",
}

bp = Blueprint("console", __name__)


@bp.before_request
def _only_when_enabled():
    """CONSOLE_ENABLED=0 turns the console's files into 404s (the API is unaffected)."""
    if not runtime.current().settings.console_enabled:
        raise NotFound("The console is disabled on this server (CONSOLE_ENABLED=0).")


def static_file(name: str, media_type: str) -> Response:
    """`name` from STATIC_DIR with the security headers; NotFound for anything that is not one of its files."""
    candidates = {entry.name: entry for entry in STATIC_DIR.iterdir() if entry.is_file()}
    entry = candidates.get(name)
    if entry is None:
        raise NotFound("No such console file.")
    return Response(entry.read_bytes(), mimetype=media_type, headers=SECURITY_HEADERS)


@bp.get("/console")
@public
@operation(tags="console", responses={308: None}, headers={308: {"Location": {"schema": {"type": "string"}}}},
           touches_database=False, rate_limited=False)
def console_root():
    """Redirects to `console/` (relative, so it works under a path prefix)."""
    response = redirect("console/", code=308)
    response.autocorrect_location_header = False
    return response


@bp.get("/console/")
@public
@operation(tags="console", responses={200: "text/html"}, touches_database=False, rate_limited=False)
def console_page():
    """The console's page (it asks for an API key; nothing is shown without one)."""
    return static_file("index.html", "text/html")


@bp.get("/console/<name>.js")
@public
@operation(tags="console", path=wire.ConsoleAssetPath, responses={200: "text/javascript"}, errors=(404,),
           touches_database=False, rate_limited=False)
def console_script(name: str):
    """One of the console's scripts (ES modules)."""
    return static_file(path(name=name)["name"] + ".js", "text/javascript")


@bp.get("/console/<name>.css")
@public
@operation(tags="console", path=wire.ConsoleAssetPath, responses={200: "text/css"}, errors=(404,),
           touches_database=False, rate_limited=False)
def console_stylesheet(name: str):
    """The console's stylesheet."""
    return static_file(path(name=name)["name"] + ".css", "text/css")
