"""Deeply nested JSON never reaches a recursive parser, and no import leaves the worker's recursion limit raised.

The attack: `[` × 100000 + `]` × 100000 (200 KB) sent with any valid key to a JSON endpoint made the worker die with
SIGSEGV, because py_ecc (imported through eth_account) raises the recursion limit to 100000, so the parser's guard
never fired before the C stack overflowed. Both halves of the fix are tested: the raw-body depth scan (the code
JSON_TOO_DEEP proves the scan answered, not the parser) on every JSON endpoint of the served document through a real
gunicorn, with worker PIDs unchanged; and the recursion limit of a process built the way a worker is built.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import requests

from app.api.operations import MAX_JSON_DEPTH
from app.api.operations import parse_json
from app.api.operations import raw_nesting_depth
from app.errors import InvalidRequest
from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import ROOT
from tests.support.servers import base_env
from tests.support.servers import start_gunicorn

ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
DEEP_BODIES = {
    "arrays_100000": b"[" * 100_000 + b"]" * 100_000,
    "objects_50000": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "inside_events": b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "unterminated": b"[" * 100_000,
    "depth_65": b'{"events": [' + b'{"a":' * 64 + b"1" + b"}" * 64 + b"]}",
}


@pytest.mark.parametrize(("raw", "depth"), [
    (b"{}", 1), (b"[[], [[]]]", 3), (b'{"a": "[[[[{{{{"}', 1), (b'["\\"[[[["]', 1), (b'["\\\\", [[]]]', 3),
    (b'"unterminated [[[[', 0), (b"1", 0), (b"", 0), (b"[" * 100 + b"]" * 100, 100),
])
def test_raw_depth_counts_brackets_outside_strings(raw, depth):
    assert raw_nesting_depth(raw) == depth


def test_the_depth_bound_is_checked_before_parsing_and_answers_json_too_deep():
    ok = b'{"a":' * (MAX_JSON_DEPTH - 1) + b"[]" + b"}" * (MAX_JSON_DEPTH - 1)
    assert parse_json(ok)
    for raw in DEEP_BODIES.values():
        with pytest.raises(InvalidRequest) as caught:
            parse_json(raw)
        assert caught.value.code == "JSON_TOO_DEEP"


def test_the_scan_is_linear_on_hostile_strings():
    """No input makes the scan quadratic (an unterminated string of escaped quotes is the worst case of a naive
    string-skipping regex)."""
    import time

    for raw in (b'"\\"' * 1_000_000, b'"' * 3_000_000, b"[" * 3_000_000):
        started = time.perf_counter()
        raw_nesting_depth(raw)
        assert time.perf_counter() - started < 10.0  # quadratic: ~1e12 steps


def test_a_worker_built_like_gunicorn_builds_it_keeps_the_default_recursion_limit(database_url):
    """Import what raises the limit (py_ecc via eth_account and web3), then build the app as `wsgi.py` does: the limit
    is CPython's default again, and a request that imports py_ecc lazily cannot leave it raised either."""
    script = (
        "import sys\n"
        "import eth_account, py_ecc\n"
        "assert sys.getrecursionlimit() >= 100000, sys.getrecursionlimit()\n"
        "import wsgi\n"
        "print('after_app', sys.getrecursionlimit())\n"
        "sys.setrecursionlimit(100000)\n"
        "client = wsgi.app.test_client()\n"
        "client.get('/api/v1/ves/head')\n"
        "print('after_request', sys.getrecursionlimit())\n"
    )
    env = base_env(database_url, BOOTSTRAP_ADMIN_API_KEY=BOOTSTRAP_KEY, DB_MIGRATE_ON_STARTUP="0")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["after_app", "1000", "after_request", "1000"], out.stdout


def json_operations(document: dict) -> list[tuple[str, str]]:
    """Every (method, path) of the served document whose operation takes a JSON request body."""
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete") and "application/json" in (
                    op.get("requestBody", {}).get("content", {})):
                found.append((method.upper(), path))
    return found


def concrete(path: str) -> str:
    """The path with each `{parameter}` replaced by a plausible value (a UUID, or 1 for versions/numbers)."""
    parts = []
    for segment in path.split("/"):
        if segment.startswith("{"):
            name = segment.strip("{}")
            segment = "1" if name in ("version", "key_id", "sequence_number") else str(uuid.uuid4())
        parts.append(segment)
    return "/".join(parts)


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "LOG_LEVEL": "warning"}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


def test_deep_json_on_every_json_endpoint_is_a_4xx_and_kills_no_worker(server):
    document = requests.get(f"{server.url}/api/openapi.json", timeout=10).json()
    operations = json_operations(document)
    assert ("POST", "/api/v1/ves/events/ingest") in operations and len(operations) >= 5, operations
    tenant = uuid.uuid4()
    created = requests.post(f"{server.url}/api/v1/admin/api-keys", headers=ADMIN, timeout=10,
                            json={"tenant_id": str(tenant), "permissions": "read"})
    assert created.status_code == 201, created.text
    keys = {"read": {"Authorization": f"ApiKey {created.json()['api_key']}"}, "bootstrap_admin": ADMIN}
    workers_before = sorted(server.worker_pids())
    wrong = []
    session = requests.Session()
    for method, path in operations:
        for key_name, headers in keys.items():
            for body_name, raw in DEEP_BODIES.items():
                try:
                    response = session.request(method, server.url + concrete(path), data=raw, timeout=20,
                                               headers={**headers, "Content-Type": "application/json"})
                except requests.ConnectionError as exc:
                    wrong.append((method, path, key_name, body_name, f"connection lost: {exc}"))
                    session = requests.Session()
                    continue
                body = response.json() if response.headers.get("Content-Type", "").startswith(
                    "application/json") else None
                if not (400 <= response.status_code < 500 and body and "code" in body):
                    wrong.append((method, path, key_name, body_name, response.status_code, response.text[:200]))
                elif key_name == "bootstrap_admin" and response.status_code == 400 and body["code"] != "JSON_TOO_DEEP":
                    wrong.append((method, path, key_name, body_name, body["code"]))
    assert not wrong, "\n".join(map(str, wrong))
    assert sorted(server.worker_pids()) == workers_before, "a worker died and was replaced"
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
    log = server.log_text()
    assert "Traceback" not in log and "SIGSEGV" not in log and "Worker exiting" not in log, log[-3000:]
