"""Tenant schemas evaluated in bounded time: regular expressions run on RE2 (linear time), validation has a deadline.

A tenant's schema is untrusted input. Python's `re` backtracks, so `pattern: "^(a+)+$"` against 40 characters would
pin a worker for longer than gunicorn's timeout. Here:

- every regular expression of a schema — `pattern`, the keys of `patternProperties` (also where `additionalProperties`
  and `unevaluatedProperties` consult them), and the `regex` format — is compiled and run by RE2 (google-re2), which
  matches in time linear in the input. A schema whose patterns RE2 cannot run (backreferences, lookaround) is refused
  at registration: 400 `SCHEMA_PATTERN_UNSUPPORTED`, naming the pattern and where it is (`unsupported_patterns`).
- validation of one request's payloads stops at `SCHEMA_VALIDATION_TIMEOUT_MS`: an event still unchecked then is
  answered as failing its schema (`ValidationTimedOut`), never held past the deadline. `uniqueItems` runs in linear
  time (jsonschema's own falls back to comparing every pair).

jsonschema calls `re.search` from its keyword and utility modules; those two modules' `re` is replaced by `_RegexShim`,
which uses RE2 only inside `linear_validation()` on this thread and is the standard `re` everywhere else (other users
of jsonschema in the process, such as OpenAPI tooling, are unaffected).
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time

import jsonschema
import jsonschema._keywords
import jsonschema._utils
import re2
from jsonschema import Draft202012Validator
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = 8 << 20
_state = threading.local()


class ValidationTimedOut(Exception):
    """Schema validation passed its deadline."""


class UnsupportedPattern(Exception):
    """A pattern RE2 cannot compile (only in schemas stored before registration refused them)."""


@functools.lru_cache(maxsize=4096)
def compile_linear(pattern: str):
    """The RE2 program for `pattern`. :raise re2.error: a pattern RE2 cannot run."""
    return re2.compile(pattern, _OPTIONS)


def _search(pattern, string, flags=0):
    if not getattr(_state, "active", False):
        return re.search(pattern, string, flags)
    _check_deadline()
    try:
        program = compile_linear(pattern)
    except re2.error:
        raise UnsupportedPattern(pattern) from None
    return program.search(string)


class _RegexShim:
    """What `jsonschema._keywords` and `jsonschema._utils` see as `re`."""

    search = staticmethod(_search)

    def __getattr__(self, name):
        return getattr(re, name)


jsonschema._keywords.re = _RegexShim()
jsonschema._utils.re = _RegexShim()


def _check_deadline() -> None:
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise ValidationTimedOut()


@contextlib.contextmanager
def linear_validation(seconds: float):
    """Within the block (on this thread): regexes run on RE2 and validation raises `ValidationTimedOut` after
    `seconds`."""
    previous = (getattr(_state, "active", False), getattr(_state, "deadline", None))
    _state.active, _state.deadline = True, time.monotonic() + seconds
    try:
        yield
    finally:
        _state.active, _state.deadline = previous


def _with_deadline(keyword):
    def check(validator, value, instance, schema):
        _check_deadline()
        return keyword(validator, value, instance, schema)

    return check


def _hashable(value):
    """A key equal for values JSON Schema calls equal (1 and 1.0; never true and 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, list):
        return ("l", tuple(_hashable(item) for item in value))
    if isinstance(value, dict):
        return ("o", frozenset((key, _hashable(item)) for key, item in value.items()))
    return ("v", value)


def _unique_items(validator, unique, instance, schema):
    _check_deadline()
    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for index, item in enumerate(instance):
        key = _hashable(item)
        if key in seen:
            yield ValidationError(f"{instance[:3]!r}... has non-unique elements (the first repeat at [{index}])")
            return
        seen.add(key)


def _is_linear_regex(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    compile_linear(instance)
    return True


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
FORMAT_CHECKER.checks("regex", raises=re2.error)(_is_linear_regex)

LinearValidator = jsonschema.validators.extend(
    Draft202012Validator,
    {**{name: _with_deadline(fn) for name, fn in Draft202012Validator.VALIDATORS.items()},
     "uniqueItems": _unique_items},
)
"""Draft 2020-12, with every keyword checking the deadline and a linear `uniqueItems`; build it with
`format_checker=FORMAT_CHECKER` and run it inside `linear_validation()`."""

# Keywords whose value is a subschema, a list of subschemas, or an object of subschemas (draft 2020-12).
_ONE = ("additionalProperties", "items", "contains", "not", "if", "then", "else", "propertyNames",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema", "additionalItems")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "dependentSchemas", "$defs", "definitions")


def unsupported_patterns(schema: object) -> list[tuple[str, str]]:
    """`(location, pattern)` for each regular expression in `schema` RE2 cannot run (`pattern` values,
    `patternProperties` keys), walking subschema positions only (not `const`, `enum`, `default` or `examples`)."""
    found = []
    stack = [(schema, "")]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        candidates = []
        if isinstance(node.get("pattern"), str):
            candidates.append((f"{where}/pattern", node["pattern"]))
        if isinstance(node.get("patternProperties"), dict):
            candidates.extend((f"{where}/patternProperties", key) for key in node["patternProperties"])
        for location, pattern in candidates:
            try:
                compile_linear(pattern)
            except re2.error:
                found.append((location or "/", pattern))
        for keyword in _ONE:
            if keyword in node:
                stack.append((node[keyword], f"{where}/{keyword}"))
        for keyword in _LIST:
            if isinstance(node.get(keyword), list):
                stack.extend((child, f"{where}/{keyword}/{i}") for i, child in enumerate(node[keyword]))
        for keyword in _MAP:
            if isinstance(node.get(keyword), dict):
                stack.extend((child, f"{where}/{keyword}/{name}") for name, child in node[keyword].items())
    return found



def evaluation_problem(schema: dict) -> str | None:
    """Why the schema cannot be evaluated, found by validating small instances of every type under the deadline: a
    `$ref` loop that never consumes the instance (`{"$ref": "#"}` recurses until RecursionError), or a `$ref` that
    resolves to nothing. None when it evaluates."""
    validator = LinearValidator(schema, format_checker=FORMAT_CHECKER)
    try:
        with linear_validation(1.0):
            for instance in (None, {}, [], "", 0, {"a": [{}]}):
                for _ in validator.iter_errors(instance):
                    pass
    except RecursionError:
        return "it refers to itself without consuming the instance (a $ref loop); validation would never end"
    except (ValidationTimedOut, UnsupportedPattern):
        return None
    except Exception as exc:  # noqa: BLE001 - referencing's Unresolvable and kin: report, never raise
        return f"it cannot be evaluated ({type(exc).__name__}: {str(exc)[:160]})"
    return None
