"""An operation's contract, declared on its view and applied by it: `@operation(...)`, then `body()`, `query()`,
`path()` to parse and `render()` to answer, all with the schemas the declaration names (from `app/api/wire.py`).

`app/api/document.py` builds the document from the same declarations, so a view cannot parse, render or answer with a
status other than the documented ones without the document saying so. Parse failures are 400 `INVALID_REQUEST` (415
for a body that is not JSON) with a message naming the offending field.
"""

from __future__ import annotations

import itertools
import json
import threading
import re
from dataclasses import dataclass
from dataclasses import field

from flask import Response
from flask import current_app
from flask import g
from flask import jsonify
from flask import request
from flask import stream_with_context
from werkzeug.routing import BaseConverter
from werkzeug.routing import PathConverter
from marshmallow import Schema
from marshmallow import ValidationError

from app import runtime
from app.api.wire import UnsupportedMediaType
from app.api.wire import camel_case
from app.errors import InvalidRequest
from app.errors import TooLarge

MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class Operation:
    """What a view reads and answers.

    `responses`: status → the JSON body's schema, None for no body, or a media type (a text body); `headers`:
    status → the OpenAPI header objects of that response (headers `render` may be given). `errors`: error
    statuses the view itself can answer besides those every operation of its kind can (see app/api/document.py):
    401 unless public, 400 with parameters or a body, 413/415 with a body, 429 when rate limited, 503 when it
    touches the database.
    """

    tags: tuple[str, ...]
    responses: dict[int, type[Schema] | str | None]
    errors: tuple[int, ...] = ()
    headers: dict[int, dict] = field(default_factory=dict)
    path: type[Schema] | None = None
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    touches_database: bool = True
    rate_limited: bool = True


def operation(*, tags: tuple[str, ...] | str, responses: dict[int, type[Schema] | None], **kwargs):
    """Declare the view's contract (stored as `view.operation`)."""

    def declare(view):
        view.operation = Operation(tags=(tags,) if isinstance(tags, str) else tags, responses=responses, **kwargs)
        return view

    return declare


class ResourceIdConverter(BaseConverter):
    """A path segment naming one resource (`<id:batch_id>`), never the literal segment of a sibling route (`anchor`,
    `ingest`, `verify`, and the original's `keys`, `register`, `pending`, `validate`, `event-type`): so
    `/ves/commitments/anchor` is only the anchor operation, and answers any other method 405 with an exact `Allow`,
    instead of reaching `GET /ves/commitments/{batch_id}`."""

    regex = r"(?!(?:anchor|ingest|verify|keys|register|pending|validate|event-type)$)[^/]+"


class TextPathConverter(PathConverter):
    """Flask's `path` converter, matching line breaks too: an entity id may contain any text but U+0000."""

    regex = "(?s:[^/].*?)"


def current_operation() -> Operation:
    return current_app.view_functions[request.endpoint].operation


_schemas = threading.local()


def instance(schema_class: type[Schema]) -> Schema:
    """This thread's instance of `schema_class`. Building a schema costs more than loading a small body with it
    (~50 us each, four per ingest request; docs/PERFORMANCE.md); instances hold no per-call state, and one per
    thread is never shared between concurrent requests."""
    cache = _schemas.__dict__.setdefault("by_class", {})
    schema = cache.get(schema_class)
    if schema is None:
        schema = cache[schema_class] = schema_class()
    return schema


def body() -> dict:
    """The request body, loaded with the operation's body schema."""
    return load(instance(current_operation().body), json_body())


def query() -> dict:
    """The query parameters, loaded with the operation's query schema (first value of a repeated parameter)."""
    schema = instance(current_operation().query)
    names = {f.data_key or name for name, f in schema.fields.items()} | {camel_case(n) for n in schema.ALIASES}
    return load(schema, {name: request.args[name] for name in names if name in request.args})


def path(**view_args: str) -> dict:
    """The path parameters (as Flask matched them), loaded with the operation's path schema."""
    return load(instance(current_operation().path), view_args)


def render(value=None, status: int = 200, headers: dict[str, str] | None = None) -> Response | tuple[str, int]:
    """`value` dumped with the schema the operation declares for `status`, with `headers` (declared in `headers`;
    kept on `g.view_headers` so later response hooks, the rate limiter's, leave them as the view set them)."""
    operation = current_operation()
    schema = operation.responses[status]
    if schema is None:
        return "", status
    response = jsonify((instance(schema) if isinstance(schema, type) else schema).dump(value))
    response.status_code = status
    for name, value_text in (headers or {}).items():
        assert name in operation.headers.get(status, {}), f"undeclared response header {name}"
        response.headers[name] = value_text
    g.view_headers = dict(headers or {})
    return response


def render_listing(batches) -> Response:
    """A listing (`{key: [items], "count": n}`, the operation's 200 schema made by `wire.listing`) written out batch
    by batch as the batches are read, so the worker holds one batch, not the whole list; `count` is the number of
    items written. Same body as `render`."""
    key, item_schema = current_operation().responses[200].LISTING
    dump, dumps = item_schema().dump, current_app.json.dumps

    def body():
        yield ("{" + dumps(key) + ":[").encode()
        count = 0
        for batch in batches:
            for item in batch:
                yield (("," if count else "") + dumps(dump(item))).encode()
                count += 1
        yield ("]," + dumps("count") + ":" + str(count) + "}\n").encode()

    return Response(stream_with_context(body()), status=200, mimetype="application/json")


def render_text(text: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A text body of the media type the operation declares for `status`, with declared `headers`."""
    operation = current_operation()
    media_type = operation.responses[status]
    assert isinstance(media_type, str), "render_text needs a media type response"
    response = Response(text, status=status, mimetype=media_type)
    for name, value_text in (headers or {}).items():
        assert name in operation.headers.get(status, {}), f"undeclared response header {name}"
        response.headers[name] = value_text
    g.view_headers = dict(headers or {})
    return response


def load(schema: Schema, data) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise InvalidRequest(f"Invalid request ({format_validation_errors(exc.messages)}).",
                             code="INVALID_REQUEST") from None


def format_validation_errors(messages, prefix: str = "") -> str:
    """`proof_path[1]: Not a valid hash.; leaf_index: ...` from marshmallow's nested messages."""
    parts = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                location = f"{prefix}[{key}]"
            else:
                location = f"{prefix}.{key}" if prefix else str(key)
            parts.append(format_validation_errors(value, location))
    elif isinstance(messages, list):
        texts = [m for m in messages if isinstance(m, str)]
        nested = [m for m in messages if not isinstance(m, str)]
        if texts:
            parts.append(f"{prefix or 'body'}: {' '.join(texts)}")
        parts.extend(format_validation_errors(m, prefix) for m in nested)
    else:
        parts.append(f"{prefix or 'body'}: {messages}")
    return "; ".join(p for p in parts if p)


# --- Strict JSON bodies --------------------------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _reject_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
"""A string literal, or an unterminated one up to the end: every match starts at a quote and always succeeds, so
the substitution is one linear pass (no retry from each quote of an unterminated string)."""
_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = [0] * 256
_BRACKET_STEP[ord("[")] = _BRACKET_STEP[ord("{")] = 1
_BRACKET_STEP[ord("]")] = _BRACKET_STEP[ord("}")] = -1


def raw_nesting_depth(raw: bytes) -> int:
    """The deepest `[`/`{` nesting of a raw JSON text, counted outside strings, in one linear pass and without
    recursion (string literals are cut out, then the brackets left are summed). Run before any parser sees the body,
    so no input can drive a recursive parser (or the C stack under it) deeper than MAX_JSON_DEPTH, whatever the
    process's recursion limit is. Malformed text may count brackets inside an unterminated string: it is refused
    either way."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _BRACKETS)
    return max(itertools.accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def parse_json(raw: bytes):
    """Parse a request body strictly: nesting at most MAX_JSON_DEPTH deep (checked on the raw bytes first: 400
    `JSON_TOO_DEEP`), UTF-8, no NaN/Infinity, no duplicate object keys."""
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and raw_nesting_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.",
                             code="JSON_TOO_DEEP")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not valid UTF-8.", code="INVALID_JSON") from None
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        raise InvalidRequest(f"The request body repeats the object key {str(exc)[:64]!r}.",
                             code="INVALID_JSON") from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.", code="JSON_TOO_DEEP") from None
    except ValueError as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({str(exc)[:120]}).", code="INVALID_JSON") from None
    return value


def json_body() -> dict:
    """The request's JSON object (read once per request). 415 unless `Content-Type: application/json`; 400 unless a
    JSON object."""
    if "json_body" in g:
        return g.json_body
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Request bodies must be JSON (Content-Type: application/json).")
    value = parse_json(_read_body())
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="INVALID_REQUEST")
    g.json_body = value
    return value


def _read_body() -> bytes:
    """The raw body, never more than MAX_BODY_SIZE_BYTES. A declared Content-Length over the limit was refused before
    the view ran; a chunked body (no Content-Length) is read up to the limit + 1 byte and refused if it is longer,
    rather than silently cut off. A body the server cannot decode (an invalid chunk size such as `ZZ`, a missing
    chunk terminator, a connection closed mid-body) is 400 `MALFORMED_BODY`, not an internal error."""
    try:
        if request.content_length is not None:
            return request.get_data(cache=False)
        limit = runtime.current().settings.max_body_size_bytes
        data = request.environ["wsgi.input"].read(limit + 1)
    except _BODY_READ_ERRORS as exc:
        raise InvalidRequest(f"The request body could not be read ({type(exc).__name__}: malformed chunked encoding "
                             "or a body shorter than declared).", code="MALFORMED_BODY") from None
    if len(data) > limit:
        raise TooLarge(f"Request body is larger than MAX_BODY_SIZE_BYTES ({limit} bytes).")
    return data


def _body_read_errors() -> tuple[type[BaseException], ...]:
    """What reading `wsgi.input` raises for a malformed body: gunicorn's parse errors (`InvalidChunkSize`, ...) and
    `NoMoreData` (an OSError); other servers raise OSError or ValueError."""
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # not under gunicorn (tests' in-process client, embedded use)
        return (OSError, ValueError)
    return (ParseException, OSError, ValueError)


_BODY_READ_ERRORS = _body_read_errors()
