"""Payload schemas (JSON Schema draft 2020-12) and `SCHEMA_VALIDATION_MODE`.

`disabled`: no checks. `warn`: log and count failures, accept. `enforce`: reject payloads that fail the latest
registered schema of their event type. `required`: also reject event types with no schema. Encrypted payloads
cannot be read by the sequencer and are never schema-checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Callable

import jsonschema
from jsonschema import Draft202012Validator
from sqlalchemy import Connection
from sqlalchemy import Engine

from app import metrics
from app.db import schemas as store
from app.db.locks import lock_transaction
from app.db.schemas import SchemaRecord
from app.errors import InvalidRequest
from app.errors import NotFound
from app.services.envelopes import EventRejected
from app.services.envelopes import ParsedEvent
from app.services.envelopes import is_storable_json
from app.services.schema_patterns import FORMAT_CHECKER
from app.services.schema_patterns import LinearValidator
from app.services.schema_patterns import UnsupportedPattern
from app.services.schema_patterns import ValidationTimedOut
from app.services.schema_patterns import linear_validation
from app.services.schema_patterns import evaluation_problem
from app.services.schema_patterns import unsupported_patterns

log = logging.getLogger("stateset_sequencer.schemas")
audit = logging.getLogger("stateset_sequencer.audit")


def register_schema(engine: Engine, tenant_id: uuid.UUID, event_type: str, schema: object,
                    description: str | None = None, compatibility: str = "backward") -> SchemaRecord:
    """Store a new version of the schema for `event_type`, with the original's `description` and `compatibility`
    (stored, not enforced, as there).

    :raise InvalidRequest INVALID_SCHEMA: not an object, not storable (U+0000, lone surrogates, 1e400) or not a
        valid JSON Schema (the message names the problem).
    :raise InvalidRequest SCHEMA_PATTERN_UNSUPPORTED: a regular expression RE2 cannot run.
    :raise InvalidRequest INVALID_SCHEMA: also a `$ref` loop that never consumes the instance, or an unresolvable
        `$ref` (`evaluation_problem`).
    """
    if not isinstance(schema, dict):
        raise InvalidRequest("schema must be a JSON object (a JSON Schema, draft 2020-12).", code="INVALID_SCHEMA")
    if not is_storable_json(schema):
        raise InvalidRequest("schema must not contain U+0000, lone surrogates or numbers beyond the double range "
                             "(such as 1e400).", code="INVALID_SCHEMA")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise InvalidRequest(f"schema is not a valid JSON Schema (at {where}: {exc.message[:200]}).",
                         code="INVALID_SCHEMA") from None
    problem = evaluation_problem(schema)
    if problem is not None:
        raise InvalidRequest(f"schema is refused: {problem}.", code="INVALID_SCHEMA")
    unsupported = unsupported_patterns(schema)
    if unsupported:
        where, pattern = unsupported[0]
        raise InvalidRequest(
            f"schema uses a regular expression the sequencer cannot evaluate in linear time (RE2 syntax: no "
            f"backreferences or lookaround): {pattern[:100]!r} at {where[:200]}.", code="SCHEMA_PATTERN_UNSUPPORTED")
    lock_key = int.from_bytes(hashlib.sha256(b"SEQ_SCHEMA_LOCK_V1" + tenant_id.bytes + event_type.encode()).digest()[:8],
                              "big", signed=True)
    with engine.begin() as conn:
        lock_transaction(conn, lock_key)
        return store.insert_schema_version(conn, tenant_id, event_type, schema, description, compatibility)


def list_schemas(engine: Engine, tenant_id: uuid.UUID, event_type: str | None) -> list[SchemaRecord]:
    with engine.connect() as conn:
        return store.list_schemas(conn, tenant_id, event_type)


def schemas_in_batches(engine: Engine, tenant_id: uuid.UUID, event_type: str | None, max_bytes: int
                       ) -> tuple[int, Iterator[list[SchemaRecord]]]:
    """Every version of a tenant's schemas (as `list_schemas`), as a count and batches of at most `max_bytes` of
    schema text each (at least one schema): the caller writes each batch out before the next is read, so a list of
    any size holds one batch in memory. Each batch is its own short read (no connection is held in between)."""
    with engine.connect() as conn:
        sizes = store.list_schema_sizes(conn, tenant_id, event_type)

    def batches() -> Iterator[list[SchemaRecord]]:
        batch, total = [], 0
        for event_type_, version, size in sizes:
            if batch and total + size > max_bytes:
                yield _read_batch(engine, tenant_id, batch)
                batch, total = [], 0
            batch.append((event_type_, version))
            total += size
        if batch:
            yield _read_batch(engine, tenant_id, batch)

    return len(sizes), batches()


def _read_batch(engine: Engine, tenant_id: uuid.UUID, keys: list[tuple[str, int]]) -> list[SchemaRecord]:
    with engine.connect() as conn:
        return store.schemas_by_key(conn, tenant_id, keys)


def get_schema(engine: Engine, tenant_id: uuid.UUID, event_type: str, version: int) -> SchemaRecord:
    with engine.connect() as conn:
        record = store.get_schema(conn, tenant_id, event_type, version)
    if record is None:
        raise NotFound("No such schema version.")
    return record


def describe_error(error: jsonschema.ValidationError) -> str:
    """`payload.items[0].qty: -1 is less than the minimum of 0` — the failing path, then the reason."""
    path = "payload"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"{path}: {error.message[:300]}"


class SchemaValidator:
    """Validates payloads against the latest schema of their event type, caching compiled validators per worker."""

    def __init__(self, engine: Engine, mode: str, timeout_seconds: float = 1.0):
        self.engine = engine
        self.mode = mode
        self.timeout_seconds = timeout_seconds
        self._compiled: dict[tuple[uuid.UUID, str, int], Draft202012Validator] = {}
        self._lock = threading.Lock()

    def wanted(self, events: list[ParsedEvent]) -> set[tuple[uuid.UUID, str]]:
        """The `(tenant_id, event_type)`s whose latest schema version `validate_batch` needs (none when disabled)."""
        if self.mode == "disabled":
            return set()
        return {(e.tenant_id, e.fields.event_type) for e in events if e.fields.payload_kind == 0}

    def validate_batch(self, events: list[ParsedEvent], conn: Connection | None = None,
                       latest: dict[tuple[uuid.UUID, str], int] | None = None) -> list:
        """Each event back, or `(event, EventRejected)` for one that the mode rejects. `latest`: the latest version
        of each of `wanted(events)` that has a schema, if the caller read them (ingest, with its agent keys);
        otherwise they are read through `conn` when given (ingest's transaction), else a connection of the
        engine's."""
        if self.mode == "disabled" or not events:
            return list(events)
        pairs = self.wanted(events)
        if not pairs:
            return list(events)
        if latest is None:
            with (contextlib.nullcontext(conn) if conn is not None else self.engine.connect()) as reading:
                latest = store.latest_versions(reading, pairs)
        with linear_validation(self.timeout_seconds):
            return self._validate_each(events, latest)

    def _validate_each(self, events: list[ParsedEvent], latest: dict) -> list:
        results = []
        timed_out = False
        for event in events:
            if event.fields.payload_kind != 0:
                results.append(event)
                continue
            version = latest.get((event.tenant_id, event.fields.event_type))
            if version is None:
                if self.mode == "required":
                    results.append((event, EventRejected(
                        "SchemaMissing", f"No schema is registered for event type {event.fields.event_type!r}.",
                        str(event.event_id))))
                else:
                    results.append(event)
                continue
            if timed_out:
                error = "payload: not checked, the request's SCHEMA_VALIDATION_TIMEOUT_MS had passed"
            else:
                try:
                    error = self._first_error(event.tenant_id, event.fields.event_type, version, event.payload)
                except ValidationTimedOut:
                    timed_out = True
                    log.warning("schema validation passed SCHEMA_VALIDATION_TIMEOUT_MS",
                                extra={"event_type": event.fields.event_type[:64], "schema_version": version})
                    error = "payload: validation took longer than SCHEMA_VALIDATION_TIMEOUT_MS"
                except UnsupportedPattern as exc:
                    error = f"payload: the schema's pattern {str(exc)[:100]!r} cannot be evaluated (not RE2 syntax)"
            if error is None:
                results.append(event)
            elif self.mode == "warn":
                metrics.SCHEMA_WARNINGS.labels(event_type=event.fields.event_type[:64]).inc()
                log.warning("payload failed its schema (accepted in warn mode)",
                            extra={"event_id": str(event.event_id), "event_type": event.fields.event_type,
                                   "schema_version": version, "path": error.split(":", 1)[0]})
                results.append(event)
            else:
                results.append((event, EventRejected(
                    "SchemaValidationFailed", f"Payload does not match schema version {version} ({error}).",
                    str(event.event_id))))
        return results

    def _first_error(self, tenant_id: uuid.UUID, event_type: str, version: int, payload: object) -> str | None:
        validator = self._validator(tenant_id, event_type, version)
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
        except (ValidationTimedOut, UnsupportedPattern):
            raise
        except Exception as exc:  # noqa: BLE001 - a stored schema registration would now refuse ($ref loop, ...)
            return f"payload: the schema cannot be evaluated ({type(exc).__name__})"
        return describe_error(error) if error is not None else None

    def _validator(self, tenant_id: uuid.UUID, event_type: str, version: int) -> Draft202012Validator:
        key = (tenant_id, event_type, version)
        with self._lock:
            compiled = self._compiled.get(key)
        if compiled is None:
            with self.engine.connect() as conn:
                record = store.get_schema(conn, tenant_id, event_type, version)
            if record is None:  # deleted since latest_versions() was read: judged by no schema
                return LinearValidator({})
            compiled = LinearValidator(record.schema, format_checker=FORMAT_CHECKER)
            with self._lock:
                if len(self._compiled) > 1000:
                    self._compiled.clear()
                self._compiled[key] = compiled
        return compiled


# --- The original's schema routes (issue 18): by id, status, deletion, latest, validation --------------------------

SCHEMA_STATUSES = ("active", "deprecated", "archived")
COMPATIBILITY_MODES = ("forward", "backward", "full", "none")
"""Stored and returned as the original does; not enforced between versions (neither does the original)."""


@dataclass(frozen=True)
class PayloadIssue:
    path: str
    message: str


@dataclass(frozen=True)
class PayloadVerdict:
    """`valid` True with no schema (the original's "no schema means validation is skipped")."""

    valid: bool
    schema_id: uuid.UUID | None
    schema_version: int | None
    errors: list[PayloadIssue]


@dataclass(frozen=True)
class SchemaStatusChange:
    schema_id: uuid.UUID
    new_status: str


@dataclass(frozen=True)
class SchemaDeletion:
    deleted_schema_id: uuid.UUID


def schema_by_id(engine: Engine, schema_id: uuid.UUID, may_see: Callable[[uuid.UUID], bool]) -> SchemaRecord:
    """The schema `schema_id` when `may_see(its tenant_id)`.

    :raise NotFound: unknown, or of a tenant the caller may not see (the same answer, so existence is not revealed).
    """
    with engine.connect() as conn:
        record = store.get_schema_by_id(conn, schema_id)
    if record is None or not may_see(record.tenant_id):
        raise NotFound("Schema not found.", code="SCHEMA_NOT_FOUND")
    return record


def latest_active_schema(engine: Engine, tenant_id: uuid.UUID, event_type: str) -> SchemaRecord:
    """The highest version whose status is `active` (as the original's `get_latest`)."""
    with engine.connect() as conn:
        record = store.latest_schema(conn, tenant_id, event_type, active_only=True)
    if record is None:
        raise NotFound(f"No schema found for event type: {event_type[:256]}.", code="SCHEMA_NOT_FOUND")
    return record


def set_schema_status(engine: Engine, record: SchemaRecord, status: str) -> SchemaStatusChange:
    with engine.begin() as conn:
        if not store.update_schema_status(conn, record.id, status):
            raise NotFound("Schema not found.", code="SCHEMA_NOT_FOUND")
    audit.info("schema status changed", extra={"tenant_id": str(record.tenant_id), "schema_id": str(record.id),
                                               "event_type": record.event_type[:256], "version": record.version,
                                               "new_status": status})
    return SchemaStatusChange(record.id, status)


def delete_schema(engine: Engine, record: SchemaRecord) -> SchemaDeletion:
    with engine.begin() as conn:
        if not store.delete_schema(conn, record.id):
            raise NotFound("Schema not found.", code="SCHEMA_NOT_FOUND")
    audit.info("schema deleted", extra={"tenant_id": str(record.tenant_id), "schema_id": str(record.id),
                                        "event_type": record.event_type[:256], "version": record.version})
    return SchemaDeletion(record.id)


def validate_payload(engine: Engine, tenant_id: uuid.UUID, event_type: str, payload: object,
                     schema_version: int | None = None, timeout_seconds: float = 1.0) -> PayloadVerdict:
    """Check `payload` against version `schema_version` (404 when absent) or the latest active schema (valid when
    none). Every error is reported, each with its JSON Pointer (`/items/0/qty`) as the original does."""
    with engine.connect() as conn:
        if schema_version is not None:
            record = store.get_schema(conn, tenant_id, event_type, schema_version)
            if record is None:
                raise NotFound(f"Schema version {schema_version} not found.", code="SCHEMA_NOT_FOUND")
        else:
            record = store.latest_schema(conn, tenant_id, event_type, active_only=True)
    if record is None:
        return PayloadVerdict(True, None, None, [])
    validator = LinearValidator(record.schema, format_checker=FORMAT_CHECKER)
    issues = []
    try:
        with linear_validation(timeout_seconds):  # RE2 for the schema's regexes, bounded time: as at ingest
            for error in itertools.islice(validator.iter_errors(payload), MAX_REPORTED_ERRORS):
                pointer = "".join("/" + str(part).replace("~", "~0").replace("/", "~1")
                                  for part in error.absolute_path)
                issues.append(PayloadIssue(pointer, error.message[:300]))
    except ValidationTimedOut:
        issues.append(PayloadIssue("", "validation took longer than SCHEMA_VALIDATION_TIMEOUT_MS"))
    except Exception as exc:  # noqa: BLE001 - a stored schema that cannot be evaluated ($ref loop, RE2-only regex)
        issues.append(PayloadIssue("", f"the schema cannot be evaluated ({type(exc).__name__})"))
    return PayloadVerdict(not issues, record.id, record.version, issues)


MAX_REPORTED_ERRORS = 100
