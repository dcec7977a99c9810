"""Request parsing shared by the blueprints: strict JSON bodies, marshmallow loading, typed query parameters.

Every failure is a `BadRequest` / `UnsupportedMediaType` with a message naming the offending field.
"""

from __future__ import annotations

import json
import re
import uuid

from flask import request
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields

from app import runtime
from app.errors import BadRequest
from app.errors import PayloadTooLarge
from app.errors import UnsupportedMediaType
from app.services.envelopes import is_storable_text

_ASCII_INTEGER = re.compile(r"-?[0-9]{1,20}")

MAX_JSON_DEPTH = 64


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


def _depth_exceeds(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def parse_json(raw: bytes):
    """Parse a request body strictly: UTF-8, no NaN/Infinity, no duplicate object keys, nesting at most 64 deep."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request body is not valid UTF-8.", code="INVALID_JSON") from None
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        raise BadRequest(f"The request body repeats the object key {str(exc)[:64]!r}.", code="INVALID_JSON") from None
    except RecursionError:
        raise BadRequest("The request body is nested too deeply.", code="INVALID_JSON") from None
    except ValueError as exc:
        raise BadRequest(f"The request body is not valid JSON ({str(exc)[:120]}).", code="INVALID_JSON") from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise BadRequest(f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.", code="INVALID_JSON")
    return value


def json_body() -> dict:
    """The request's JSON object. 415 unless `Content-Type: application/json`; 400 unless a JSON object."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Request bodies must be JSON (Content-Type: application/json).")
    value = parse_json(_read_body())
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.", code="INVALID_REQUEST")
    return value


def _read_body() -> bytes:
    """The raw body, never more than MAX_BODY_SIZE_BYTES. A declared Content-Length over the limit was refused before
    the view ran; a chunked body (no Content-Length) is read up to the limit + 1 byte and refused if it is longer,
    rather than silently cut off."""
    if request.content_length is not None:
        return request.get_data(cache=False)
    limit = runtime.current().settings.max_body_size_bytes
    data = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"Request body is larger than MAX_BODY_SIZE_BYTES ({limit} bytes).")
    return data


class StorableString(fields.String):
    """A marshmallow string that PostgreSQL can store (no U+0000, no lone surrogates)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_storable_text(text):
            raise ValidationError("Must not contain U+0000 or lone surrogates.")
        return text


def text_arg(name: str, max_length: int) -> str | None:
    """An optional free-text query parameter that PostgreSQL can store; 400 otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length or not is_storable_text(raw):
        raise BadRequest(f"Query parameter {name!r} is too long or contains U+0000.", code="INVALID_REQUEST")
    return raw


def check_path_text(value: str, name: str, max_length: int) -> str:
    if not 1 <= len(value) <= max_length or not is_storable_text(value):
        raise BadRequest(f"{name} must be 1 to {max_length} characters without U+0000.", code="INVALID_REQUEST")
    return value


def parse_int_value(raw: str, name: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    """An integer written with ASCII digits only (`str.isdigit` also admits '²' and '１')."""
    if not _ASCII_INTEGER.fullmatch(raw):
        raise BadRequest(f"{name} must be an integer.", code="INVALID_REQUEST")
    value = int(raw)
    if value < minimum or value > maximum:
        raise BadRequest(f"{name} must be between {minimum} and {maximum}.", code="INVALID_REQUEST")
    return value


def format_validation_errors(messages, prefix: str = "") -> str:
    parts = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            parts.append(format_validation_errors(value, path))
    elif isinstance(messages, list):
        texts = [m for m in messages if isinstance(m, str)]
        nested = [m for m in messages if not isinstance(m, str)]
        if texts:
            parts.append(f"{prefix or 'body'}: {' '.join(texts)}")
        parts.extend(format_validation_errors(m, prefix) for m in nested)
    else:
        parts.append(f"{prefix or 'body'}: {messages}")
    return "; ".join(p for p in parts if p)


def load(schema: Schema, data) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest(f"Invalid request ({format_validation_errors(exc.messages)}).",
                         code="INVALID_REQUEST") from None


def uuid_arg(name: str, required: bool = True) -> uuid.UUID | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"Query parameter {name!r} is required.", code="INVALID_REQUEST")
        return None
    return parse_uuid_value(raw, name)


def parse_uuid_value(raw: str, name: str) -> uuid.UUID:
    try:
        if len(raw) > 64:
            raise ValueError
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        raise BadRequest(f"{name} must be a UUID.", code="INVALID_REQUEST") from None


def int_arg(name: str, default: int | None, minimum: int = 0, maximum: int = 2**63 - 1) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    return parse_int_value(raw, f"Query parameter {name!r}", minimum, maximum)


def float_arg(name: str, default: float | None, minimum: float, maximum: float) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        if len(raw) > 20:
            raise ValueError
        value = float(raw)
    except ValueError:
        raise BadRequest(f"Query parameter {name!r} must be a number.", code="INVALID_REQUEST") from None
    if not (minimum <= value <= maximum):
        raise BadRequest(f"Query parameter {name!r} must be between {minimum} and {maximum}.", code="INVALID_REQUEST")
    return value


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadRequest(f"Query parameter {name!r} must be true or false.", code="INVALID_REQUEST")
