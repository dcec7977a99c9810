"""schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS in the `st` process).

`positive_data_acceptance_or_rule`: schemathesis's own `positive_data_acceptance` (a schema-valid request must not be
refused), except for a 400 whose request really breaks one of the rules JSON Schema cannot state, each checked
against the request itself here (never by trusting the server's answer). Every rule is also stated in the document,
in the operation's or the parameter's description.
"""

from __future__ import annotations

import datetime
import json

import schemathesis
from jsonschema import Draft202012Validator
from jsonschema import SchemaError
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _int(value):
    """A JSON integer as the server reads it (`41` or `41.0`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _range_rules(code: str, body: dict, query: dict) -> bool:
    """INVALID_RANGE: sequence_end before sequence_start. RANGE_PAST_HEAD: sequence_end beyond the stream head, which
    is stored state (the fuzzed streams are empty, so any sequence_end is past their head)."""
    start = _int(body.get("sequence_start", body.get("sequenceStart")))
    end = _int(body.get("sequence_end", body.get("sequenceEnd")))
    if code == "INVALID_RANGE":
        return start is not None and end is not None and end < start
    return code == "RANGE_PAST_HEAD" and end is not None


def _validity_rules(code: str, body: dict, query: dict) -> bool:
    """validTo before validFrom (compared as instants), or either outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z
    (a date-time of year 1 with a positive offset, say)."""
    if code != "INVALID_REQUEST":
        return False
    moments = []
    for snake, camel in (("valid_from", "validFrom"), ("valid_to", "validTo")):
        text = body.get(snake, body.get(camel))
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            moment.astimezone(datetime.timezone.utc)
        except OverflowError:
            return True
        except (AttributeError, ValueError):
            moment = None
        moments.append(moment)
    start, end = moments
    return start is not None and end is not None and end < start


def _strings(value):
    """Every string of a JSON value, object keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _not_a_json_schema(code: str, body: dict, query: dict) -> bool:
    """INVALID_SCHEMA: `schema` is an object but not a valid draft 2020-12 JSON Schema, or holds text PostgreSQL
    cannot store (U+0000, lone surrogates)."""
    if code != "INVALID_SCHEMA":
        return False
    schema = next((body[name] for name in ("schema", "schema_json", "schemaJson") if name in body), None)
    if any("\x00" in text or not _encodable(text) for text in _strings(schema)):
        return True
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return True
    return False


def _start_given_twice(code: str, body: dict, query: dict) -> bool:
    """Both `from` and `after`."""
    return code == "INVALID_REQUEST" and "from" in query and "after" in query


def _batch_id_given_twice(code: str, body: dict, query: dict) -> bool:
    """Both `batch_id` and its alias `batchId`."""
    return code == "INVALID_REQUEST" and "batch_id" in query and "batchId" in query


def _first_after_second(code: str, body: dict, query: dict, path: dict | None = None) -> bool:
    """LOG_RANGE: a consistency proof with `first > second`."""
    first, second = _query_int(query.get("first")), _query_int(query.get("second"))
    return code == "LOG_RANGE" and first is not None and second is not None and first > second


def _beyond_tree_size(code: str, body: dict, query: dict, path: dict | None = None) -> bool:
    """LOG_RANGE: `sequence_number > tree_size`; without `tree_size` the default is the latest checkpoint's size,
    stored state (the fuzzed streams are empty, so their size is 0)."""
    number = _query_int((path or {}).get("sequence_number"))
    size = _query_int(query.get("tree_size"))
    return code == "LOG_RANGE" and number is not None and (size is None or number > size)


def _query_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


RULES = {
    ("POST", "/api/v1/ves/commitments"): _range_rules,
    ("POST", "/api/v1/ves/commitments/anchor"): _range_rules,
    ("POST", "/api/v1/agents/keys"): _validity_rules,
    ("POST", "/api/v1/schemas"): _not_a_json_schema,
    ("GET", "/api/v1/ves/events"): _start_given_twice,
    ("GET", "/api/v1/events"): _start_given_twice,
    ("GET", "/api/v1/ves/entities/{entity_type}/{entity_id}"): _start_given_twice,
    ("GET", "/api/v1/ves/proofs/{sequence_number}"): _batch_id_given_twice,
    ("POST", "/api/v1/commitments"): _range_rules,
    ("GET", "/api/v1/proofs/{sequence_number}"): _batch_id_given_twice,
    ("GET", "/api/v1/ves/log/consistency"): _first_after_second,
    ("GET", "/api/v1/ves/log/public/{stream_id}/consistency"): _first_after_second,
    ("GET", "/api/v1/ves/log/inclusion/{sequence_number}"): _beyond_tree_size,
}
PATH_RULES = {_beyond_tree_size}
"""Rules that also read the path parameters."""


@schemathesis.check
def positive_data_acceptance_or_rule(ctx, response, case):
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rule = RULES.get((case.method.upper(), case.path))
        if response.status_code == 400 and rule is not None:
            try:
                code = json.loads(response.content)["code"]
            except (ValueError, KeyError, TypeError):
                raise
            body = case.body if isinstance(case.body, dict) else {}
            extra = (dict(case.path_parameters or {}),) if rule in PATH_RULES else ()
            if rule(code, body, dict(case.query or {}), *extra):
                return None
        raise
