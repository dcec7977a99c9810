"""`GET /api/openapi.json`: this server's OpenAPI 3.1 document (public, not rate limited), generated on first
request by `app/api/document.py` from the routes, their `@operation` declarations and the wire schemas."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import jsonify

from app.api import wire
from app.api.document import served_document
from app.api.operations import operation
from app.auth import public

bp = Blueprint("openapi", __name__)


@bp.get("/api/openapi.json")
@public
@operation(tags="operations", responses={200: wire.OpenApiDocumentOut}, touches_database=False, rate_limited=False)
def openapi():
    """This document."""
    return jsonify(served_document(current_app))
