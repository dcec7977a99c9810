"""The OpenAPI 3.1 document served at `GET /api/openapi.json` (app/api/openapi.py), generated.

Built with apispec's marshmallow plugin from what the app really does: every route in the URL map, each view's
`@operation` declaration (app/api/operations.py) and the `app/api/wire.py` schemas that parse and render it. The
error statuses every operation of a kind can answer are added here (401 unless public, 400 with parameters or a body,
413/415 with a body, 429 when rate limited, 503 when it touches the database). tests/test_openapi.py checks both
directions (no undocumented route, no documented route the app lacks); tests/test_schemathesis.py fuzzes the served
document against a real gunicorn.
"""

from __future__ import annotations

import copy
import functools
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

from app import __version__
from app.api import wire
from app.api.operations import Operation

IMPLICIT_METHODS = {"HEAD", "OPTIONS"}
_FLASK_PARAMETER = re.compile(r"<(?:[a-z_]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
ERROR_DESCRIPTIONS = {
    400: "Malformed request: not JSON, a field of the wrong type or out of range, a bad parameter, or a field given "
         "under both its snake_case and camelCase names.",
    401: "No API key, an unknown key or a revoked key (`WWW-Authenticate: ApiKey`).",
    403: "The key lacks the permission, or may not touch that tenant or store.",
    404: "Not found (also answered for another tenant's resource, so existence is not revealed).",
    405: "The path does not support the method; `Allow` lists the ones it does.",
    409: "Conflict with the stored state.",
    413: "Body over MAX_BODY_SIZE_BYTES, or more than MAX_EVENTS_PER_BATCH events.",
    415: "A request body that is not `Content-Type: application/json`.",
    429: "Rate limit exceeded; retry after `Retry-After` seconds.",
    503: "The database (or, for anchoring, the chain) is unreachable or busy; retry after `Retry-After` seconds when "
         "given. On writes (ingest, commitments, anchoring) also `STREAM_FENCED`: after a restore the stream's "
         "head is behind what was published, and writes wait until an operator heals it or declares the loss; "
         "`STREAM_DIVERGED`: the restored stream disagrees with what was published (docs/RESTORE.md).",
}
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    405: {"Allow": {"schema": {"type": "string"}, "required": True}},
    429: {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    503: {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
}
STRING_FIELDS = (wire.Hex, wire.EnvelopeHex)


def hex_pattern_property(converter, field, **kwargs) -> dict:
    """The `pattern` of a Hex/EnvelopeHex field, derived when the document is built from the prefix in force (an
    apispec attribute function, so `converter` is the field converter)."""
    return {"pattern": field.pattern} if isinstance(field, STRING_FIELDS) else {}


def openapi_path(rule: str) -> str:
    return _FLASK_PARAMETER.sub(r"{\1}", rule)


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__
    return name[:-3] if name.endswith("Out") else name


def _status_set(op: Operation, is_public: bool) -> set[int]:
    statuses = set(op.errors)
    if not is_public:
        statuses.add(401)
    if op.path or op.query or op.body:
        statuses.add(400)
    if op.body:
        statuses.update((413, 415))
    if op.rate_limited:
        statuses.add(429)
    if op.touches_database:
        statuses.add(503)
    return statuses


def _summary_and_description(view) -> tuple[str, str | None]:
    lines = [line.strip() for line in (view.__doc__ or "").strip().splitlines()]
    summary = lines[0] if lines else view.__name__
    rest = " ".join(line for line in lines[1:] if line)
    return summary, rest or None


def _operation_object(view, op: Operation) -> dict:
    summary, description = _summary_and_description(view)
    is_public = getattr(view, "is_public", False)
    responses = {}
    for status, body in op.responses.items():
        if body is None:
            responses[str(status)] = {"description": "No body."}
        elif isinstance(body, str):
            responses[str(status)] = {"description": "Text.", "content": {body: {"schema": {"type": "string"}}}}
        else:
            responses[str(status)] = {"description": _schema_name(body) + ".",
                                      "content": {"application/json": {"schema": body}}}
        if status in op.headers:
            responses[str(status)]["headers"] = op.headers[status]
    for status in sorted(_status_set(op, is_public)):
        responses[str(status)] = f"Error{status}"
    result = {"summary": summary, "tags": list(op.tags), "responses": responses}
    if description:
        result["description"] = description
    parameters = []
    if op.path:
        parameters.append({"in": "path", "schema": op.path})
    if op.query:
        parameters.append({"in": "query", "schema": op.query})
    if parameters:
        result["parameters"] = parameters
    if op.body:
        result["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    if is_public:
        result["security"] = []
    return result


def _document_aliases(document: dict, schemas: dict[str, type[Schema]]) -> None:
    """Add each body schema's `CONSTRAINTS` and camelCase aliases: the same property under the other name, at least
    one spelling of each required field, never both spellings of one field."""
    components = document["components"]["schemas"]
    for name, cls in schemas.items():
        aliases = getattr(cls, "ALIASES", ())
        component = components.get(name)
        if component is not None and getattr(cls, "CONSTRAINTS", ()):
            component.setdefault("allOf", []).extend(copy.deepcopy(cls.CONSTRAINTS))
        if not aliases or component is None:
            continue
        properties = component["properties"]
        required = set(component.get("required", ()))
        constraints = []
        for snake in aliases:
            camel = wire.camel_case(snake)
            properties[camel] = copy.deepcopy(properties[snake])
            constraints.append({"not": {"required": [snake, camel]}})
            if snake in required:
                required.discard(snake)
                constraints.append({"anyOf": [{"required": [snake]}, {"required": [camel]}]})
        if required:
            component["required"] = sorted(required)
        else:
            component.pop("required", None)
        component.setdefault("allOf", []).extend(constraints)


def _document_query_aliases(document: dict, app_operations: list[tuple[str, str, Operation]]) -> None:
    """A query alias is a second parameter with the same schema (giving both is a 400)."""
    for path, method, op in app_operations:
        if op.query is None or not op.query.ALIASES:
            continue
        parameters = document["paths"][path][method]["parameters"]
        for snake in op.query.ALIASES:
            original = next(p for p in parameters if p["in"] == "query" and p["name"] == snake)
            alias = {**copy.deepcopy(original), "name": wire.camel_case(snake),
                     "description": f"Alias of `{snake}`; giving both is a 400."}
            parameters.append(alias)


def _describe_schemas(document: dict, schemas: dict[str, type[Schema]]) -> None:
    for name, cls in schemas.items():
        component = document["components"]["schemas"].get(name)
        if component is not None and cls.__doc__ and cls.__doc__ != Schema.__doc__:
            component["description"] = " ".join(cls.__doc__.split())


def build_document(app: Flask) -> dict:
    """The whole document for `app`'s routes (callers may mutate it)."""
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="StateSet Sequencer",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": "Multi-tenant verifiable event sequencer (VES v1). The machine-readable form of API.md. "
                             "Every response carries X-Request-ID (echoed when the client sent a valid one). A method "
                             "a path does not list is answered 405 with `Allow`."},
        jsonSchemaDialect="https://json-schema.org/draft/2020-12/schema",
        servers=[{"url": "/"}],
        security=[{"ApiKeyHeader": []}, {"BearerAuth": []}],
    )
    for field_class in STRING_FIELDS:
        plugin.map_to_openapi_type(field_class, "string", None)
    plugin.converter.add_attribute_function(hex_pattern_property)
    spec.components.security_scheme("ApiKeyHeader", {"type": "apiKey", "in": "header", "name": "Authorization",
                                                     "description": "`Authorization: ApiKey <key>`."})
    spec.components.security_scheme("BearerAuth", {"type": "http", "scheme": "bearer",
                                                  "description": "`Authorization: Bearer <key>`."})
    spec.components.schema("Error", schema=wire.ErrorOut)
    for status, description in ERROR_DESCRIPTIONS.items():
        response = {"description": description, "content": {"application/json": {"schema": "Error"}}}
        if status in ERROR_HEADERS:
            response["headers"] = ERROR_HEADERS[status]
        spec.components.response(f"Error{status}", response)

    paths: dict[str, dict[str, dict]] = {}
    declared: list[tuple[str, str, Operation]] = []
    bodies: dict[str, type[Schema]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        op: Operation = view.operation
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - IMPLICIT_METHODS):
            paths.setdefault(path, {})[method.lower()] = _operation_object(view, op)
            declared.append((path, method.lower(), op))
        for schema in (op.body, *[s for s in op.responses.values() if isinstance(s, type)]):
            if schema is not None:
                bodies[_schema_name(schema)] = schema
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)

    document = spec.to_dict()
    _document_aliases(document, bodies)
    _document_query_aliases(document, declared)
    _describe_schemas(document, _all_component_classes(bodies))
    return document


def _all_component_classes(schemas: dict[str, type[Schema]]) -> dict[str, type[Schema]]:
    """The schema classes behind every component, including nested ones."""
    found = dict(schemas)
    stack = list(schemas.values())
    while stack:
        cls = stack.pop()
        for field in cls._declared_fields.values():
            inner = getattr(field, "inner", field)
            nested = getattr(inner, "nested", None)
            if isinstance(nested, type) and issubclass(nested, Schema) and _schema_name(nested) not in found:
                found[_schema_name(nested)] = nested
                stack.append(nested)
    return found


@functools.cache
def routes_only_document() -> dict:
    """The document of an app with every blueprint registered and nothing else (no settings, no database)."""
    from app import BLUEPRINTS
    from app import register_routes

    routes = Flask("openapi-routes", static_folder=None)
    register_routes(routes, BLUEPRINTS)
    return build_document(routes)


def served_document(app: Flask) -> dict:
    """`app`'s document, built once per process (the routes do not change after start-up)."""
    document = app.extensions.get("openapi_document")
    if document is None:
        document = app.extensions["openapi_document"] = build_document(app)
    return document


def openapi_document(app: Flask | None = None) -> dict:
    """The document of `app` (default: `routes_only_document()`), freshly copied."""
    return copy.deepcopy(build_document(app) if app is not None else routes_only_document())
